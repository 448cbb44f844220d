// Package store keeps playback's state in the service's own database,
// SQLite or PostgreSQL: entitlements, playback sessions, viewing progress
// and the media signing key.
//
// Methods take a storage.Queryer, so the service runs several of them, the
// saga barrier record and the outbox events of a change in one local
// transaction. Methods that must see a consistent picture across several
// statements (Grant, Revoke, LockAccount) are meant to run inside one.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is playback's schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// Store is playback's repository.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

// CheckSchema reports an error unless playback's tables exist (that is,
// unless the database was opened with Migrations).
func (s *Store) CheckSchema(ctx context.Context, q storage.Queryer) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM entitlements LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("playback store: schema missing (open the database with the playback migrations): %w", err)
	}
	return nil
}

// ts is a time as stored: UTC at microsecond precision (PostgreSQL's), or
// NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

type scanner interface{ Scan(dest ...any) error }

// ---- entitlements ----

const entitlementColumns = `id, account_id, kind, plan_id, title_id, max_streams, order_id, saga_id,
	idempotency_key, status, supersedes_id, starts_at, expires_at, revoked_at, created_at`

func scanEntitlement(sc scanner) (domain.Entitlement, error) {
	var (
		e                domain.Entitlement
		kind, status     string
		starts, created  time.Time
		expires, revoked sql.NullTime
	)
	if err := sc.Scan(&e.ID, &e.AccountID, &kind, &e.PlanID, &e.TitleID, &e.MaxStreams, &e.OrderID, &e.SagaID,
		&e.IdempotencyKey, &status, &e.SupersedesID, &starts, &expires, &revoked, &created); err != nil {
		return domain.Entitlement{}, err
	}
	e.Kind, e.Status = domain.Kind(kind), domain.Status(status)
	e.StartsAt, e.CreatedAt = starts.UTC(), created.UTC()
	e.ExpiresAt, e.RevokedAt = fromNull(expires), fromNull(revoked)
	return e, nil
}

func (s *Store) queryEntitlements(ctx context.Context, q storage.Queryer, query string, args ...any) ([]domain.Entitlement, error) {
	rows, err := q.Query(ctx, "SELECT "+entitlementColumns+" FROM entitlements "+query, args...)
	if err != nil {
		return nil, fmt.Errorf("playback store: entitlements: %w", err)
	}
	defer rows.Close()
	var out []domain.Entitlement
	for rows.Next() {
		e, err := scanEntitlement(rows)
		if err != nil {
			return nil, fmt.Errorf("playback store: entitlements: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("playback store: entitlements: %w", err)
	}
	return out, nil
}

func (s *Store) oneEntitlement(ctx context.Context, q storage.Queryer, what, query string, args ...any) (domain.Entitlement, error) {
	e, err := scanEntitlement(q.QueryRow(ctx, "SELECT "+entitlementColumns+" FROM entitlements "+query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Entitlement{}, fmt.Errorf("entitlement %s: %w", what, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Entitlement{}, fmt.Errorf("playback store: entitlement %s: %w", what, err)
	}
	return e, nil
}

// Entitlement returns the entitlement with id.
func (s *Store) Entitlement(ctx context.Context, q storage.Queryer, id string) (domain.Entitlement, error) {
	return s.oneEntitlement(ctx, q, id, "WHERE id = $1", id)
}

// EntitlementByKey returns the entitlement granted with idempotency key.
func (s *Store) EntitlementByKey(ctx context.Context, q storage.Queryer, key string) (domain.Entitlement, error) {
	return s.oneEntitlement(ctx, q, "of key "+key, "WHERE idempotency_key = $1", key)
}

// StoredActive returns the account's entitlements stored active, expired
// or not (see domain.NewRights for what they allow).
func (s *Store) StoredActive(ctx context.Context, q storage.Queryer, accountID string) ([]domain.Entitlement, error) {
	return s.queryEntitlements(ctx, q, "WHERE account_id = $1 AND status = 'active' ORDER BY created_at DESC, id DESC", accountID)
}

func (s *Store) insertEntitlement(ctx context.Context, q storage.Queryer, e domain.Entitlement) error {
	_, err := q.Exec(ctx, `INSERT INTO entitlements (`+entitlementColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		e.ID, e.AccountID, string(e.Kind), e.PlanID, e.TitleID, e.MaxStreams, e.OrderID, e.SagaID,
		e.IdempotencyKey, string(e.Status), e.SupersedesID, ts(e.StartsAt), ts(e.ExpiresAt), ts(e.RevokedAt), ts(e.CreatedAt))
	if storage.IsUniqueViolation(err) {
		return fmt.Errorf("entitlement key %s: %w", e.IdempotencyKey, domain.ErrIdempotencyKeyReused)
	}
	if err != nil {
		return fmt.Errorf("playback store: insert entitlement: %w", err)
	}
	return nil
}

func (s *Store) setStatus(ctx context.Context, q storage.Queryer, id string, st domain.Status, revokedAt time.Time) error {
	_, err := q.Exec(ctx, "UPDATE entitlements SET status = $1, revoked_at = $2 WHERE id = $3", string(st), ts(revokedAt), id)
	if err != nil {
		return fmt.Errorf("playback store: entitlement %s status: %w", id, err)
	}
	return nil
}

// Grant stores a new active entitlement e. A plan supersedes the account's
// active plans and remembers the newest of them in SupersedesID. An
// idempotency key already stored fails with domain.ErrIdempotencyKeyReused.
// Run it in a transaction.
func (s *Store) Grant(ctx context.Context, q storage.Queryer, e domain.Entitlement) (domain.Entitlement, error) {
	if e.Kind == domain.KindPlan {
		current, err := s.queryEntitlements(ctx, q,
			"WHERE account_id = $1 AND kind = 'plan' AND status = 'active' ORDER BY created_at DESC, id DESC", e.AccountID)
		if err != nil {
			return domain.Entitlement{}, err
		}
		for i, c := range current {
			if i == 0 {
				e.SupersedesID = c.ID
			}
			if err := s.setStatus(ctx, q, c.ID, domain.StatusSuperseded, time.Time{}); err != nil {
				return domain.Entitlement{}, err
			}
		}
	}
	if err := s.insertEntitlement(ctx, q, e); err != nil {
		return domain.Entitlement{}, err
	}
	return e, nil
}

// Revoke revokes the entitlement granted with idempotency key at now and
// returns it. Revoking the active plan makes the plan it superseded active
// again; revoking a plan that a newer one superseded takes it out of the
// chain, so that revoking the newer one later restores the older one.
// Revoking a revoked entitlement changes nothing. An unknown key is
// domain.ErrNotFound. Run it in a transaction.
func (s *Store) Revoke(ctx context.Context, q storage.Queryer, key string, now time.Time) (domain.Entitlement, error) {
	e, err := s.EntitlementByKey(ctx, q, key)
	if err != nil {
		return domain.Entitlement{}, err
	}
	if e.Status == domain.StatusRevoked {
		return e, nil
	}
	was := e.Status
	e.Status, e.RevokedAt = domain.StatusRevoked, now.UTC().Truncate(time.Microsecond)
	if err := s.setStatus(ctx, q, e.ID, e.Status, e.RevokedAt); err != nil {
		return domain.Entitlement{}, err
	}
	if e.Kind != domain.KindPlan {
		return e, nil
	}
	switch was {
	case domain.StatusActive:
		if e.SupersedesID == "" {
			return e, nil
		}
		prev, err := s.Entitlement(ctx, q, e.SupersedesID)
		if err != nil {
			return domain.Entitlement{}, err
		}
		if prev.Status == domain.StatusSuperseded {
			if err := s.setStatus(ctx, q, prev.ID, domain.StatusActive, time.Time{}); err != nil {
				return domain.Entitlement{}, err
			}
		}
	case domain.StatusSuperseded:
		if _, err := q.Exec(ctx, "UPDATE entitlements SET supersedes_id = $1 WHERE supersedes_id = $2", e.SupersedesID, e.ID); err != nil {
			return domain.Entitlement{}, fmt.Errorf("playback store: unlink %s: %w", e.ID, err)
		}
	}
	return e, nil
}

// EntitlementFilter selects entitlements to list; empty fields select all.
type EntitlementFilter struct {
	AccountID string
	OrderID   string
}

// ListEntitlements lists entitlements in every status, newest first, at
// most limit after the cursor (when after is set).
func (s *Store) ListEntitlements(ctx context.Context, q storage.Queryer, f EntitlementFilter, limit int, after *domain.Cursor) ([]domain.Entitlement, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, vs ...any) {
		for _, v := range vs {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.AccountID != "" {
		add("account_id = ?", f.AccountID)
	}
	if f.OrderID != "" {
		add("order_id = ?", f.OrderID)
	}
	if after != nil {
		at := ts(after.At)
		add("(created_at < ? OR (created_at = ? AND id < ?))", at, at, after.ID)
	}
	query := ""
	if len(where) > 0 {
		query = "WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit)
	return s.queryEntitlements(ctx, q, query+" ORDER BY created_at DESC, id DESC LIMIT $"+strconv.Itoa(len(args)), args...)
}

// ---- sessions ----

// LockAccount serialises session starts of an account until the end of
// the transaction q: the second of two concurrent starts waits for the
// first to commit, then sees its session.
func (s *Store) LockAccount(ctx context.Context, q storage.Queryer, accountID string) error {
	_, err := q.Exec(ctx, `INSERT INTO stream_locks (account_id, starts) VALUES ($1, 1)
ON CONFLICT (account_id) DO UPDATE SET starts = stream_locks.starts + 1`, accountID)
	if err != nil {
		return fmt.Errorf("playback store: lock account %s: %w", accountID, err)
	}
	return nil
}

const sessionColumns = `id, account_id, profile_id, title_id, episode_id, asset_id, genres, duration_seconds,
	position_seconds, event_position_seconds, completed, state, started_at, last_heartbeat_at, ended_at`

func scanSession(sc scanner) (domain.Session, error) {
	var (
		x                  domain.Session
		genres, state      string
		started, heartbeat time.Time
		ended              sql.NullTime
	)
	if err := sc.Scan(&x.ID, &x.AccountID, &x.ProfileID, &x.TitleID, &x.EpisodeID, &x.AssetID, &genres, &x.Duration,
		&x.Position, &x.EventPosition, &x.Completed, &state, &started, &heartbeat, &ended); err != nil {
		return domain.Session{}, err
	}
	if genres != "" {
		x.Genres = strings.Split(genres, ",")
	}
	x.State = domain.SessionState(state)
	x.StartedAt, x.LastHeartbeatAt, x.EndedAt = started.UTC(), heartbeat.UTC(), fromNull(ended)
	return x, nil
}

func (s *Store) querySessions(ctx context.Context, q storage.Queryer, query string, args ...any) ([]domain.Session, error) {
	rows, err := q.Query(ctx, "SELECT "+sessionColumns+" FROM sessions "+query, args...)
	if err != nil {
		return nil, fmt.Errorf("playback store: sessions: %w", err)
	}
	defer rows.Close()
	var out []domain.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("playback store: sessions: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("playback store: sessions: %w", err)
	}
	return out, nil
}

// InsertSession stores a new session.
func (s *Store) InsertSession(ctx context.Context, q storage.Queryer, x domain.Session) error {
	_, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		x.ID, x.AccountID, x.ProfileID, x.TitleID, x.EpisodeID, x.AssetID, strings.Join(x.Genres, ","), x.Duration,
		x.Position, x.EventPosition, x.Completed, string(x.State), ts(x.StartedAt), ts(x.LastHeartbeatAt), ts(x.EndedAt))
	if err != nil {
		return fmt.Errorf("playback store: insert session: %w", err)
	}
	return nil
}

// Session returns the session with id.
func (s *Store) Session(ctx context.Context, q storage.Queryer, id string) (domain.Session, error) {
	x, err := scanSession(q.QueryRow(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Session{}, fmt.Errorf("session %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Session{}, fmt.Errorf("playback store: session %s: %w", id, err)
	}
	return x, nil
}

// UpdateSession writes the mutable fields of x (position, event position,
// completed, state, last heartbeat, end) if the stored session is still
// active, and reports whether it was: an ended session never changes
// again, so of two concurrent updates that end it only one wins.
func (s *Store) UpdateSession(ctx context.Context, q storage.Queryer, x domain.Session) (bool, error) {
	res, err := q.Exec(ctx, `UPDATE sessions SET position_seconds = $1, event_position_seconds = $2, completed = $3,
	state = $4, last_heartbeat_at = $5, ended_at = $6 WHERE id = $7 AND state = 'active'`,
		x.Position, x.EventPosition, x.Completed, string(x.State), ts(x.LastHeartbeatAt), ts(x.EndedAt), x.ID)
	if err != nil {
		return false, fmt.Errorf("playback store: update session %s: %w", x.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("playback store: update session %s: %w", x.ID, err)
	}
	return n == 1, nil
}

// ActiveSessions returns the account's sessions active at now (not ended,
// heard from within domain.SessionTimeout), oldest first.
func (s *Store) ActiveSessions(ctx context.Context, q storage.Queryer, accountID string, now time.Time) ([]domain.Session, error) {
	return s.querySessions(ctx, q, "WHERE account_id = $1 AND state = 'active' AND last_heartbeat_at >= $2 ORDER BY started_at, id",
		accountID, ts(domain.HeartbeatCutoff(now)))
}

// StaleSessions returns at most limit sessions still marked active whose
// heartbeats stopped before now - domain.SessionTimeout, oldest first.
func (s *Store) StaleSessions(ctx context.Context, q storage.Queryer, now time.Time, limit int) ([]domain.Session, error) {
	return s.querySessions(ctx, q, "WHERE state = 'active' AND last_heartbeat_at < $1 ORDER BY last_heartbeat_at, id LIMIT $2",
		ts(domain.HeartbeatCutoff(now)), limit)
}

// DeleteEndedSessions deletes sessions that ended before cutoff and
// reports how many.
func (s *Store) DeleteEndedSessions(ctx context.Context, q storage.Queryer, cutoff time.Time) (int64, error) {
	res, err := q.Exec(ctx, "DELETE FROM sessions WHERE state = 'ended' AND ended_at < $1", ts(cutoff))
	if err != nil {
		return 0, fmt.Errorf("playback store: delete ended sessions: %w", err)
	}
	return res.RowsAffected()
}

// ---- progress ----

const progressColumns = `account_id, profile_id, title_id, episode_id, position_seconds, duration_seconds, finished, updated_at`

func scanProgress(sc scanner) (domain.Progress, error) {
	var (
		p       domain.Progress
		updated time.Time
	)
	if err := sc.Scan(&p.AccountID, &p.ProfileID, &p.TitleID, &p.EpisodeID, &p.Position, &p.Duration, &p.Finished, &updated); err != nil {
		return domain.Progress{}, err
	}
	p.UpdatedAt = updated.UTC()
	return p, nil
}

// Progress returns a profile's progress in a title; the zero Progress
// (and no error) when it never played it.
func (s *Store) Progress(ctx context.Context, q storage.Queryer, accountID, profileID, titleID string) (domain.Progress, error) {
	p, err := scanProgress(q.QueryRow(ctx, "SELECT "+progressColumns+" FROM progress WHERE account_id = $1 AND profile_id = $2 AND title_id = $3",
		accountID, profileID, titleID))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Progress{}, nil
	}
	if err != nil {
		return domain.Progress{}, fmt.Errorf("playback store: progress: %w", err)
	}
	return p, nil
}

// SaveProgress writes a profile's progress in a title, replacing what was
// there.
func (s *Store) SaveProgress(ctx context.Context, q storage.Queryer, p domain.Progress) error {
	_, err := q.Exec(ctx, `INSERT INTO progress (`+progressColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (account_id, profile_id, title_id) DO UPDATE SET episode_id = excluded.episode_id,
	position_seconds = excluded.position_seconds, duration_seconds = excluded.duration_seconds,
	finished = excluded.finished, updated_at = excluded.updated_at`,
		p.AccountID, p.ProfileID, p.TitleID, p.EpisodeID, p.Position, p.Duration, p.Finished, ts(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("playback store: save progress: %w", err)
	}
	return nil
}

// AddProgress writes p unless the profile has progress in the title, and
// reports whether it wrote.
func (s *Store) AddProgress(ctx context.Context, q storage.Queryer, p domain.Progress) (bool, error) {
	res, err := q.Exec(ctx, `INSERT INTO progress (`+progressColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (account_id, profile_id, title_id) DO NOTHING`,
		p.AccountID, p.ProfileID, p.TitleID, p.EpisodeID, p.Position, p.Duration, p.Finished, ts(p.UpdatedAt))
	if err != nil {
		return false, fmt.Errorf("playback store: add progress: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("playback store: add progress: %w", err)
	}
	return n == 1, nil
}

// ContinueWatching lists the titles a profile of the account started and
// has not finished, most recently watched first, at most limit after the
// cursor (when after is set).
func (s *Store) ContinueWatching(ctx context.Context, q storage.Queryer, accountID, profileID string, limit int, after *domain.Cursor) ([]domain.Progress, error) {
	query := "SELECT " + progressColumns + " FROM progress WHERE account_id = $1 AND profile_id = $2 AND finished = FALSE AND position_seconds > 0"
	args := []any{accountID, profileID}
	if after != nil {
		at := ts(after.At)
		query += " AND (updated_at < $3 OR (updated_at = $4 AND title_id < $5))"
		args = append(args, at, at, after.ID)
	}
	args = append(args, limit)
	query += " ORDER BY updated_at DESC, title_id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("playback store: continue watching: %w", err)
	}
	defer rows.Close()
	var out []domain.Progress
	for rows.Next() {
		p, err := scanProgress(rows)
		if err != nil {
			return nil, fmt.Errorf("playback store: continue watching: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("playback store: continue watching: %w", err)
	}
	return out, nil
}

// ---- signing key ----

// SigningKeySize is the size of a generated signing key, in bytes.
const SigningKeySize = 32

// SigningKey returns the secret named name, generating and storing a
// random one the first time. Concurrent first calls (several replicas
// starting at once) all return the one that was stored.
func (s *Store) SigningKey(ctx context.Context, q storage.Queryer, name string) ([]byte, error) {
	fresh := make([]byte, SigningKeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("playback store: generate key: %w", err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO signing_keys (name, secret, created_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO NOTHING`, name, fresh, ts(time.Now())); err != nil {
		return nil, fmt.Errorf("playback store: store key %s: %w", name, err)
	}
	var key []byte
	if err := q.QueryRow(ctx, "SELECT secret FROM signing_keys WHERE name = $1", name).Scan(&key); err != nil {
		return nil, fmt.Errorf("playback store: read key %s: %w", name, err)
	}
	if len(key) < SigningKeySize {
		return nil, fmt.Errorf("playback store: key %s is %d bytes, want at least %d", name, len(key), SigningKeySize)
	}
	return key, nil
}
