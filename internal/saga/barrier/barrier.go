// Package barrier is the participant side of a saga: it makes a
// participant's action and its compensation run at most once each, inside
// the participant's own local transaction, whatever order, duplication or
// absence the network delivers them in.
//
// Every call is keyed by (saga id, step). A barrier keeps, in the platform
// table marquee_barrier (present in every service database), one row per
// (saga id, step, op):
//
//   - op "action", outcome "done": the action ran and committed; result holds
//     the bytes its fn returned, answered again to every duplicate;
//   - op "action", outcome "cancelled": the compensation arrived first (or
//     without its action); a later action is refused with ErrCompensated;
//   - op "compensation", outcome "done": the compensation ran; result holds
//     what its fn returned;
//   - op "compensation", outcome "skipped": the compensation arrived when no
//     action had run, so there was nothing to undo.
//
// The row is inserted before fn runs, in the same transaction, so that two
// concurrent identical calls serialise on the primary key: on PostgreSQL
// the second insert waits for the first transaction and then sees its row;
// on SQLite transactions begin IMMEDIATE and so take turns. If fn fails,
// the transaction rolls back with the row, and a retry runs fn again.
package barrier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// ErrCompensated is returned by Action when the compensation of the same
// (saga id, step) already ran or was recorded: the action is refused and
// its fn never runs.
var ErrCompensated = errors.New("barrier: action refused: its compensation already ran")

// The op and outcome values stored in marquee_barrier.
const (
	opAction       = "action"
	opCompensation = "compensation"

	outcomeDone      = "done"
	outcomeCancelled = "cancelled"
	outcomeSkipped   = "skipped"
)

// Action runs fn at most once per (sagaID, step), in one local transaction
// together with the barrier record. A duplicate call returns the result
// bytes the first call's fn returned, without running fn. If the
// compensation of (sagaID, step) already ran or was recorded, Action
// returns ErrCompensated without running fn. If fn returns an error, the
// transaction rolls back, nothing is recorded, and a later call runs fn
// again.
func Action(ctx context.Context, db *storage.DB, sagaID, step string, fn func(tx *storage.Tx) ([]byte, error)) ([]byte, error) {
	if err := checkKey(sagaID, step); err != nil {
		return nil, err
	}
	var out []byte
	err := db.InTx(ctx, func(tx *storage.Tx) error {
		out = nil
		won, err := insert(ctx, tx, sagaID, step, opAction, outcomeDone)
		if err != nil {
			return err
		}
		if !won {
			outcome, result, err := load(ctx, tx, sagaID, step, opAction)
			if err != nil {
				return err
			}
			if outcome == outcomeCancelled {
				return ErrCompensated
			}
			out = result
			return nil
		}
		res, err := fn(tx)
		if err != nil {
			return err
		}
		if err := store(ctx, tx, sagaID, step, opAction, res); err != nil {
			return err
		}
		out = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Compensate runs fn at most once per (sagaID, step), and only if the
// action of (sagaID, step) ran, in one local transaction together with the
// barrier record. If the action never ran, Compensate records that (so a
// late Action answers ErrCompensated) and returns (nil, nil) without
// calling fn. A duplicate call returns the first call's result. If fn
// returns an error, nothing is recorded and a later call runs fn again.
func Compensate(ctx context.Context, db *storage.DB, sagaID, step string, fn func(tx *storage.Tx) ([]byte, error)) ([]byte, error) {
	if err := checkKey(sagaID, step); err != nil {
		return nil, err
	}
	var out []byte
	err := db.InTx(ctx, func(tx *storage.Tx) error {
		out = nil
		// Taking the action row first serialises against a concurrent
		// Action of the same step and tells whether the action ran.
		cancelled, err := insert(ctx, tx, sagaID, step, opAction, outcomeCancelled)
		if err != nil {
			return err
		}
		if cancelled {
			// Null compensation: nothing to undo, and the action is now
			// refused for good.
			_, err := insert(ctx, tx, sagaID, step, opCompensation, outcomeSkipped)
			return err
		}
		won, err := insert(ctx, tx, sagaID, step, opCompensation, outcomeDone)
		if err != nil {
			return err
		}
		if !won {
			_, result, err := load(ctx, tx, sagaID, step, opCompensation)
			if err != nil {
				return err
			}
			out = result
			return nil
		}
		res, err := fn(tx)
		if err != nil {
			return err
		}
		if err := store(ctx, tx, sagaID, step, opCompensation, res); err != nil {
			return err
		}
		out = res
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func checkKey(sagaID, step string) error {
	if sagaID == "" || step == "" {
		return fmt.Errorf("barrier: saga id and step are required (got %q, %q)", sagaID, step)
	}
	return nil
}

// insert adds the (sagaID, step, op) row unless it exists, and reports
// whether this call added it. On PostgreSQL an insert racing an
// uncommitted insert of the same key waits for that transaction to end.
func insert(ctx context.Context, tx *storage.Tx, sagaID, step, op, outcome string) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO marquee_barrier (saga_id, step, op, outcome, result, created_at)
VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (saga_id, step, op) DO NOTHING`,
		sagaID, step, op, outcome, time.Now().UTC())
	if err != nil {
		return false, fmt.Errorf("barrier: record %s %s/%s: %w", op, sagaID, step, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("barrier: record %s %s/%s: %w", op, sagaID, step, err)
	}
	return n == 1, nil
}

func load(ctx context.Context, tx *storage.Tx, sagaID, step, op string) (string, []byte, error) {
	var outcome string
	var result []byte
	err := tx.QueryRow(ctx, `SELECT outcome, result FROM marquee_barrier WHERE saga_id = $1 AND step = $2 AND op = $3`,
		sagaID, step, op).Scan(&outcome, &result)
	if errors.Is(err, sql.ErrNoRows) {
		// Rows are never deleted, and an insert that conflicted saw a
		// committed row, so this is a broken table rather than a race.
		return "", nil, fmt.Errorf("barrier: %s %s/%s conflicted but is missing", op, sagaID, step)
	}
	if err != nil {
		return "", nil, fmt.Errorf("barrier: read %s %s/%s: %w", op, sagaID, step, err)
	}
	return outcome, result, nil
}

func store(ctx context.Context, tx *storage.Tx, sagaID, step, op string, result []byte) error {
	if result == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE marquee_barrier SET result = $1 WHERE saga_id = $2 AND step = $3 AND op = $4`,
		result, sagaID, step, op)
	if err != nil {
		return fmt.Errorf("barrier: store result of %s %s/%s: %w", op, sagaID, step, err)
	}
	return nil
}
