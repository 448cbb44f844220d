package saga

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// sagaRow is one row of marquee_saga.
type sagaRow struct {
	id, definition string
	state, paused  State
	data           []byte
	step, attempts int
	stepStartedAt  time.Time // first attempt of the current step
	reason         string
	lastError      string
	owner          string
	leaseUntil     time.Time
	token          int64
	nextRunAt      time.Time
	createdAt      time.Time
	updatedAt      time.Time
	finishedAt     sql.NullTime
}

// kind is the kind of the invocation at the saga's position.
func (r *sagaRow) kind() Kind {
	st := r.state
	if st == StateNeedsAttention {
		st = r.paused
	}
	if st == StateCompensating {
		return KindCompensation
	}
	return KindAction
}

const sagaColumns = `id, definition, state, paused_state, data, step, attempts, step_started_at, reason, last_error, owner,
	lease_until, fencing_token, next_run_at, created_at, updated_at, finished_at`

func scanSaga(sc interface{ Scan(...any) error }) (*sagaRow, error) {
	var r sagaRow
	var state, paused string
	err := sc.Scan(&r.id, &r.definition, &state, &paused, &r.data, &r.step, &r.attempts, &r.stepStartedAt, &r.reason, &r.lastError, &r.owner,
		&r.leaseUntil, &r.token, &r.nextRunAt, &r.createdAt, &r.updatedAt, &r.finishedAt)
	if err != nil {
		return nil, err
	}
	r.state, r.paused = State(state), State(paused)
	r.leaseUntil, r.nextRunAt = r.leaseUntil.UTC(), r.nextRunAt.UTC()
	r.createdAt, r.updatedAt, r.stepStartedAt = r.createdAt.UTC(), r.updatedAt.UTC(), r.stepStartedAt.UTC()
	if r.finishedAt.Valid {
		r.finishedAt.Time = r.finishedAt.Time.UTC()
	}
	return &r, nil
}

func loadSaga(ctx context.Context, q storage.Queryer, id string) (*sagaRow, error) {
	r, err := scanSaga(q.QueryRow(ctx, `SELECT `+sagaColumns+` FROM marquee_saga WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("saga: load %s: %w", id, err)
	}
	return r, nil
}

// loadOutputs returns the outputs of the saga's succeeded actions by step
// index.
func loadOutputs(ctx context.Context, q storage.Queryer, id string) (map[int][]byte, error) {
	rows, err := q.Query(ctx, `SELECT step_index, output FROM marquee_saga_step
WHERE saga_id = $1 AND kind = 'action' AND state = 'succeeded'`, id)
	if err != nil {
		return nil, fmt.Errorf("saga: load outputs of %s: %w", id, err)
	}
	defer rows.Close()
	out := map[int][]byte{}
	for rows.Next() {
		var i int
		var b []byte
		if err := rows.Scan(&i, &b); err != nil {
			return nil, fmt.Errorf("saga: load outputs of %s: %w", id, err)
		}
		out[i] = b
	}
	return out, rows.Err()
}

// stepWrite is the row of an action or compensation that finished: it
// succeeded, was refused, or failed for good. (A step in progress is the
// saga row's position; it gets its row when it ends.) A step run again
// after an operator's Retry overwrites its row.
type stepWrite struct {
	index      int
	kind       Kind
	name       string
	state      StepState
	attempts   int
	output     []byte
	err        string
	startedAt  time.Time
	finishedAt time.Time
}

func upsertStep(ctx context.Context, tx *storage.Tx, sagaID string, w stepWrite) error {
	_, err := tx.Exec(ctx, `INSERT INTO marquee_saga_step
	(saga_id, step_index, kind, name, state, attempts, output, error, started_at, finished_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)
ON CONFLICT (saga_id, step_index, kind) DO UPDATE SET
	state = excluded.state, attempts = excluded.attempts, output = excluded.output, error = excluded.error,
	started_at = excluded.started_at, finished_at = excluded.finished_at`,
		sagaID, w.index, string(w.kind), w.name, string(w.state), w.attempts, w.output, w.err, w.startedAt, w.finishedAt)
	if err != nil {
		return fmt.Errorf("saga: write step %s/%d/%s: %w", sagaID, w.index, w.kind, err)
	}
	return nil
}

// logEntry is one row of marquee_saga_log.
type logEntry struct {
	event     string
	index     int
	kind      Kind
	attempt   int
	code      string
	message   string
	retryable bool
	actor     string
}

// The events of the saga log.
const (
	eventAttemptFailed      = "attempt_failed"
	eventNeedsAttention     = "needs_attention"
	eventOperatorRetry      = "operator_retry"
	eventOperatorCompensate = "operator_compensate"
)

func insertLog(ctx context.Context, tx *storage.Tx, sagaID string, at time.Time, e logEntry) error {
	retryable := 0
	if e.retryable {
		retryable = 1
	}
	_, err := tx.Exec(ctx, `INSERT INTO marquee_saga_log (saga_id, at, event, step_index, kind, attempt, code, message, retryable, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		sagaID, at, e.event, e.index, string(e.kind), e.attempt, e.code, truncate(e.message, 2000), retryable, e.actor)
	if err != nil {
		return fmt.Errorf("saga: write log of %s: %w", sagaID, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ts is how times are stored: UTC, microseconds (PostgreSQL's precision),
// without a monotonic reading, so that SQLite's text form compares in
// time order.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
