// Package store keeps the identity service's state in its own database,
// SQLite or PostgreSQL, in portable SQL: accounts, sessions (refresh-token
// families) and refresh tokens, login failures, API keys and signing keys.
//
// Operations that must be atomic run in one transaction each, and decide
// races in the database, not in memory, so that several identity replicas
// can share it: a refresh token is rotated by a conditional update (of two
// concurrent rotations one wins and the other counts as reuse); signing-key
// state changes are conditional on the state read (ErrConflict otherwise),
// and unique indexes allow one current and one next key.
//
// Events that must be atomic with a change are written by hooks
// (Options) inside the change's transaction: account creation and session
// revocation.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is the identity schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// Options configure a Store. The zero value is usable.
type Options struct {
	// OnAccountCreated runs in the transaction that created an account;
	// an error rolls the creation back.
	OnAccountCreated func(ctx context.Context, tx *storage.Tx, a domain.Account) error
	// OnSessionRevoked runs in the transaction that revoked a session, once
	// per session actually revoked (not for one already revoked); an error
	// rolls the revocation back.
	OnSessionRevoked func(ctx context.Context, tx *storage.Tx, r domain.Revocation) error
}

// Store is the SQL repository of the identity service.
type Store struct {
	db   *storage.DB
	opts Options
}

// New returns a Store over db, which must have been opened with
// Migrations.
func New(db *storage.DB, opts Options) *Store { return &Store{db: db, opts: opts} }

// CheckSchema reports an error unless the identity tables exist.
func (s *Store) CheckSchema(ctx context.Context) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM signing_keys LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("store: identity schema missing (open the database with store.Migrations): %w", err)
	}
	return nil
}

// ts puts a time in the form every time column holds: UTC (no monotonic
// reading), microsecond precision. On SQLite times are stored as text of
// one fixed layout, so comparisons in SQL order them correctly only when
// every time went through ts.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTS is ts for a nullable column: the zero time is NULL.
func nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

func fromNull(t sql.NullTime) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func joinRoles(roles []string) string { return strings.Join(roles, ",") }

func splitRoles(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ---- Accounts ----

const accountColumns = "id, email, name, roles, password_hash, created_at"

func scanAccount(row interface{ Scan(...any) error }) (domain.Account, error) {
	var a domain.Account
	var roles string
	if err := row.Scan(&a.ID, &a.Email, &a.Name, &roles, &a.PasswordHash, &a.CreatedAt); err != nil {
		return domain.Account{}, err
	}
	a.Roles = splitRoles(roles)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, nil
}

// CreateAccount inserts a (with its id, normalised email, roles, hash and
// creation time set) and, when first is given, its first session and
// refresh token, in one transaction with OnAccountCreated. It fails with
// domain.ErrEmailTaken when the email is registered and
// domain.ErrAccountExists when the id is.
func (s *Store) CreateAccount(ctx context.Context, a domain.Account, first *domain.Session, tok *domain.RefreshToken) error {
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, email, name, roles, password_hash, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $6)`, a.ID, a.Email, a.Name, joinRoles(a.Roles), a.PasswordHash, ts(a.CreatedAt)); err != nil {
			return err
		}
		if s.opts.OnAccountCreated != nil {
			if err := s.opts.OnAccountCreated(ctx, tx, a); err != nil {
				return fmt.Errorf("store: account created hook: %w", err)
			}
		}
		if first != nil {
			return insertSession(ctx, tx, *first, *tok)
		}
		return nil
	})
	if storage.IsUniqueViolation(err) {
		var n int
		if qerr := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM accounts WHERE email = $1", a.Email).Scan(&n); qerr != nil {
			return fmt.Errorf("store: create account: %w", qerr)
		}
		if n > 0 {
			return domain.ErrEmailTaken
		}
		return fmt.Errorf("store: account %s: %w", a.ID, domain.ErrAccountExists)
	}
	if err != nil {
		return fmt.Errorf("store: create account: %w", err)
	}
	return nil
}

// Account returns the account with id, or domain.ErrNotFound.
func (s *Store) Account(ctx context.Context, id string) (domain.Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, "SELECT "+accountColumns+" FROM accounts WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: account: %w", err)
	}
	return a, nil
}

// AccountByEmail returns the account with the normalised email, or
// domain.ErrNotFound.
func (s *Store) AccountByEmail(ctx context.Context, email string) (domain.Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, "SELECT "+accountColumns+" FROM accounts WHERE email = $1", email))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account by email: %w", domain.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("store: account by email: %w", err)
	}
	return a, nil
}

// ReplacePasswordHash sets the account's hash to newHash if it is still
// oldHash (a rehash must not undo a concurrent password change); it reports
// whether it did.
func (s *Store) ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string, now time.Time) (bool, error) {
	res, err := s.db.Exec(ctx, "UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4",
		newHash, ts(now), id, oldHash)
	if err != nil {
		return false, fmt.Errorf("store: replace password hash: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ---- Sessions and refresh tokens ----

func insertSession(ctx context.Context, tx *storage.Tx, sess domain.Session, tok domain.RefreshToken) error {
	if _, err := tx.Exec(ctx, "INSERT INTO sessions (id, account_id, created_at) VALUES ($1, $2, $3)",
		sess.ID, sess.AccountID, ts(sess.CreatedAt)); err != nil {
		return fmt.Errorf("store: insert session: %w", err)
	}
	tok.SessionID = sess.ID
	return insertRefreshToken(ctx, tx, tok)
}

func insertRefreshToken(ctx context.Context, tx *storage.Tx, tok domain.RefreshToken) error {
	if _, err := tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
		tok.Hash, tok.SessionID, ts(tok.IssuedAt), ts(tok.ExpiresAt)); err != nil {
		return fmt.Errorf("store: insert refresh token: %w", err)
	}
	return nil
}

// CreateSession starts a session with its first refresh token.
func (s *Store) CreateSession(ctx context.Context, sess domain.Session, tok domain.RefreshToken) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error { return insertSession(ctx, tx, sess, tok) })
}

// Session returns the session with id, or domain.ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (domain.Session, error) {
	var sess domain.Session
	var revoked sql.NullTime
	err := s.db.QueryRow(ctx, "SELECT id, account_id, created_at, revoked_at, revoke_reason FROM sessions WHERE id = $1", id).
		Scan(&sess.ID, &sess.AccountID, &sess.CreatedAt, &revoked, &sess.RevokeReason)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, fmt.Errorf("session: %w", domain.ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("store: session: %w", err)
	}
	sess.CreatedAt = sess.CreatedAt.UTC()
	sess.RevokedAt = fromNull(revoked)
	return sess, nil
}

// SessionOfRefreshToken returns the session of the refresh token with
// hash, or domain.ErrNotFound.
func (s *Store) SessionOfRefreshToken(ctx context.Context, hash string) (domain.Session, error) {
	var id string
	err := s.db.QueryRow(ctx, "SELECT session_id FROM refresh_tokens WHERE hash = $1", hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Session{}, fmt.Errorf("refresh token: %w", domain.ErrNotFound)
	}
	if err != nil {
		return domain.Session{}, fmt.Errorf("store: refresh token: %w", err)
	}
	return s.Session(ctx, id)
}

// revokeSession revokes one session in tx unless it already is, running
// the hook when it changed it.
func (s *Store) revokeSession(ctx context.Context, tx *storage.Tx, id, accountID, reason string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, "UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
		ts(now), reason, id)
	if err != nil {
		return false, fmt.Errorf("store: revoke session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if s.opts.OnSessionRevoked != nil {
		r := domain.Revocation{SessionID: id, AccountID: accountID, Reason: reason, RevokedAt: ts(now)}
		if err := s.opts.OnSessionRevoked(ctx, tx, r); err != nil {
			return false, fmt.Errorf("store: session revoked hook: %w", err)
		}
	}
	return true, nil
}

// RevokeSession revokes the account's session id (doing nothing when it is
// already revoked) and reports whether it changed anything. A session that
// does not exist or is another account's is domain.ErrNotFound.
func (s *Store) RevokeSession(ctx context.Context, id, accountID, reason string, now time.Time) (bool, error) {
	var changed bool
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM sessions WHERE id = $1 AND account_id = $2", id, accountID).Scan(&n); err != nil {
			return fmt.Errorf("store: revoke session: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("session: %w", domain.ErrNotFound)
		}
		var err error
		changed, err = s.revokeSession(ctx, tx, id, accountID, reason, now)
		return err
	})
	return changed, err
}

// RevokeAccountSessions revokes every active session of the account and
// returns how many it revoked.
func (s *Store) RevokeAccountSessions(ctx context.Context, accountID, reason string, now time.Time) (int, error) {
	var n int
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, "SELECT id FROM sessions WHERE account_id = $1 AND revoked_at IS NULL ORDER BY id", accountID)
		if err != nil {
			return fmt.Errorf("store: revoke sessions: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("store: revoke sessions: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("store: revoke sessions: %w", err)
		}
		for _, id := range ids {
			changed, err := s.revokeSession(ctx, tx, id, accountID, reason, now)
			if err != nil {
				return err
			}
			if changed {
				n++
			}
		}
		return nil
	})
	return n, err
}

// RotateRefreshToken uses the refresh token with oldHash at now: it marks
// it used and adds next (whose SessionID it sets) to the same session, and
// returns the session. It fails with domain.ErrInvalidRefreshToken when the
// token is unknown or expired or its session revoked, and with
// domain.ErrRefreshTokenReused when the token was already used (by an
// earlier or a concurrent rotation): then the session has been revoked,
// with reason reuseReason, and that revocation is committed.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next domain.RefreshToken, now time.Time, reuseReason string) (domain.Session, error) {
	var sess domain.Session
	var outcome error
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		outcome = nil
		var expires time.Time
		var used, revoked sql.NullTime
		err := tx.QueryRow(ctx, `SELECT s.id, s.account_id, s.created_at, t.expires_at, t.used_at, s.revoked_at
FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = $1`, oldHash).
			Scan(&sess.ID, &sess.AccountID, &sess.CreatedAt, &expires, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			outcome = fmt.Errorf("unknown refresh token: %w", domain.ErrInvalidRefreshToken)
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: rotate refresh token: %w", err)
		}
		reuse := func() error {
			if _, err := s.revokeSession(ctx, tx, sess.ID, sess.AccountID, reuseReason, now); err != nil {
				return err
			}
			outcome = domain.ErrRefreshTokenReused
			return nil
		}
		switch {
		case used.Valid:
			return reuse()
		case revoked.Valid:
			outcome = fmt.Errorf("session revoked: %w", domain.ErrInvalidRefreshToken)
			return nil
		case !now.Before(expires):
			outcome = fmt.Errorf("refresh token expired: %w", domain.ErrInvalidRefreshToken)
			return nil
		}
		res, err := tx.Exec(ctx, "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL", ts(now), oldHash)
		if err != nil {
			return fmt.Errorf("store: rotate refresh token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return reuse() // a concurrent rotation won
		}
		next.SessionID = sess.ID
		return insertRefreshToken(ctx, tx, next)
	})
	if err != nil {
		return domain.Session{}, err
	}
	if outcome != nil {
		return domain.Session{}, outcome
	}
	sess.CreatedAt = sess.CreatedAt.UTC()
	return sess, nil
}

// ---- Login throttling ----

// BeginLogin starts login attempt attemptID at now against keys: when any
// key is over its limit it fails with a *domain.ThrottledError (the longest
// wait of them) and records nothing; otherwise it records the attempt as a
// failure of every key, so that concurrent attempts count against each
// other. CompleteLogin clears it when the password turns out right.
func (s *Store) BeginLogin(ctx context.Context, attemptID string, keys []domain.ThrottleKey, now time.Time) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		if err := lockThrottleKeys(ctx, tx, keys); err != nil {
			return err
		}
		var wait time.Duration
		for _, k := range keys {
			times, err := failures(ctx, tx, k, now)
			if err != nil {
				return err
			}
			if d, over := k.RetryAfter(times, now); over {
				wait = max(wait, d)
			}
		}
		if wait > 0 {
			return &domain.ThrottledError{RetryAfter: wait}
		}
		for _, k := range keys {
			if _, err := tx.Exec(ctx, "INSERT INTO login_failures (attempt_id, key_hash, failed_at) VALUES ($1, $2, $3)",
				attemptID, k.Hash, ts(now)); err != nil {
				return fmt.Errorf("store: record login attempt: %w", err)
			}
		}
		return nil
	})
}

// lockThrottleKeys serialises the attempts on the same keys until the
// transaction ends. Without it, PostgreSQL's read committed lets parallel
// attempts all count the failures below the limit and all go through,
// which is what a brute-force run in parallel would do. (SQLite allows one
// writer at a time, which serialises them already.) Keys are locked in
// order, so two attempts never wait for each other.
func lockThrottleKeys(ctx context.Context, tx *storage.Tx, keys []domain.ThrottleKey) error {
	if tx.Dialect() != storage.Postgres {
		return nil
	}
	hashes := make([]string, len(keys))
	for i, k := range keys {
		hashes[i] = k.Hash
	}
	slices.Sort(hashes)
	for _, h := range slices.Compact(hashes) {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", "login:"+h); err != nil {
			return fmt.Errorf("store: lock login attempts: %w", err)
		}
	}
	return nil
}

// failures returns the times of k's failures within its window, newest
// first, at most k.Limit of them.
func failures(ctx context.Context, tx *storage.Tx, k domain.ThrottleKey, now time.Time) ([]time.Time, error) {
	rows, err := tx.Query(ctx, "SELECT failed_at FROM login_failures WHERE key_hash = $1 AND failed_at > $2 ORDER BY failed_at DESC LIMIT $3",
		k.Hash, ts(now.Add(-k.Window)), k.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: login failures: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("store: login failures: %w", err)
		}
		out = append(out, t.UTC())
	}
	return out, rows.Err()
}

// CompleteLogin ends a successful attempt: it removes the attempt's
// failure records, clears every failure of resetKey (the account's key),
// and starts the session with its first refresh token, in one transaction.
func (s *Store) CompleteLogin(ctx context.Context, attemptID, resetKey string, sess domain.Session, tok domain.RefreshToken) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM login_failures WHERE attempt_id = $1 OR key_hash = $2", attemptID, resetKey); err != nil {
			return fmt.Errorf("store: clear login failures: %w", err)
		}
		return insertSession(ctx, tx, sess, tok)
	})
}

// ---- API keys ----

const apiKeyColumns = "id, account_id, name, hash, roles, created_at, expires_at, last_used_at, revoked_at"

func scanAPIKey(row interface{ Scan(...any) error }) (domain.APIKey, error) {
	var k domain.APIKey
	var roles string
	var expires, used, revoked sql.NullTime
	if err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Hash, &roles, &k.CreatedAt, &expires, &used, &revoked); err != nil {
		return domain.APIKey{}, err
	}
	k.Roles = splitRoles(roles)
	k.CreatedAt = k.CreatedAt.UTC()
	k.ExpiresAt, k.LastUsedAt, k.RevokedAt = fromNull(expires), fromNull(used), fromNull(revoked)
	return k, nil
}

// CreateAPIKey stores k unless its account already has
// domain.MaxActiveAPIKeys keys active at now (domain.ErrTooManyAPIKeys).
func (s *Store) CreateAPIKey(ctx context.Context, k domain.APIKey, now time.Time) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys WHERE account_id = $1 AND revoked_at IS NULL
AND (expires_at IS NULL OR expires_at > $2)`, k.AccountID, ts(now)).Scan(&n); err != nil {
			return fmt.Errorf("store: count API keys: %w", err)
		}
		if n >= domain.MaxActiveAPIKeys {
			return domain.ErrTooManyAPIKeys
		}
		if _, err := tx.Exec(ctx, "INSERT INTO api_keys ("+apiKeyColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)",
			k.ID, k.AccountID, k.Name, k.Hash, joinRoles(k.Roles), ts(k.CreatedAt), nullTS(k.ExpiresAt)); err != nil {
			return fmt.Errorf("store: insert API key: %w", err)
		}
		return nil
	})
}

// APIKey returns the key with id, or domain.ErrNotFound.
func (s *Store) APIKey(ctx context.Context, id string) (domain.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRow(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return k, fmt.Errorf("API key: %w", domain.ErrNotFound)
	}
	if err != nil {
		return k, fmt.Errorf("store: API key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns up to limit keys of the account, newest first,
// after the cursor (the zero cursor starts at the newest).
func (s *Store) ListAPIKeys(ctx context.Context, accountID string, after domain.Cursor, limit int) ([]domain.APIKey, error) {
	q := "SELECT " + apiKeyColumns + " FROM api_keys WHERE account_id = $1"
	args := []any{accountID}
	if !after.CreatedAt.IsZero() {
		q += " AND (created_at < $2 OR (created_at = $2 AND id < $3))"
		args = append(args, ts(after.CreatedAt), after.ID)
	}
	q += fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d", limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list API keys: %w", err)
	}
	defer rows.Close()
	var out []domain.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list API keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes the account's key id at now (a key already revoked
// keeps its first revocation time). Another account's key, or none, is
// domain.ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM api_keys WHERE id = $1 AND account_id = $2", id, accountID).Scan(&n); err != nil {
			return fmt.Errorf("store: revoke API key: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("API key: %w", domain.ErrNotFound)
		}
		if _, err := tx.Exec(ctx, "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", ts(now), id); err != nil {
			return fmt.Errorf("store: revoke API key: %w", err)
		}
		return nil
	})
}

// TouchAPIKey records that key id was used at now, unless that was already
// recorded less than every ago (so verification does not write on every
// request).
func (s *Store) TouchAPIKey(ctx context.Context, id string, now time.Time, every time.Duration) error {
	_, err := s.db.Exec(ctx, "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
		ts(now), id, ts(now.Add(-every)))
	if err != nil {
		return fmt.Errorf("store: touch API key: %w", err)
	}
	return nil
}

// ---- Signing keys ----

// SigningKeys returns every key not yet removed, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]domain.SigningKey, error) {
	rows, err := s.db.Query(ctx, `SELECT kid, state, x, y, private_key, created_at, activated_at, retired_at, remove_at
FROM signing_keys WHERE state <> 'removed' ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("store: signing keys: %w", err)
	}
	defer rows.Close()
	var out []domain.SigningKey
	for rows.Next() {
		var k domain.SigningKey
		var state string
		var activated, retired, removeAt sql.NullTime
		if err := rows.Scan(&k.ID, &state, &k.X, &k.Y, &k.Private, &k.CreatedAt, &activated, &retired, &removeAt); err != nil {
			return nil, fmt.Errorf("store: signing keys: %w", err)
		}
		k.State = domain.KeyState(state)
		k.CreatedAt = k.CreatedAt.UTC()
		k.ActivatedAt, k.RetiredAt, k.RemoveAt = fromNull(activated), fromNull(retired), fromNull(removeAt)
		out = append(out, k)
	}
	return out, rows.Err()
}

// ApplyKeyPlan carries out plan at now in one transaction: retired keys
// in plan.Remove are removed (their private half erased), plan.Retire goes
// from current to retired (published until removeAt), plan.Promote from
// next to current, and the fresh keys are inserted in the states they
// carry. When a key is no longer in the state the plan expects, or a fresh
// key would make a second current or next key, nothing changes and the
// error is domain.ErrConflict: another replica changed the keys first.
func (s *Store) ApplyKeyPlan(ctx context.Context, plan domain.KeyPlan, fresh []domain.SigningKey, now, removeAt time.Time) error {
	conflict := func(what string) error { return fmt.Errorf("store: %s: %w", what, domain.ErrConflict) }
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		for _, kid := range plan.Remove {
			if _, err := tx.Exec(ctx, "UPDATE signing_keys SET state = 'removed', private_key = '' WHERE kid = $1 AND state = 'retired'", kid); err != nil {
				return fmt.Errorf("store: remove signing key: %w", err)
			}
		}
		change := func(q string, args ...any) (bool, error) {
			res, err := tx.Exec(ctx, q, args...)
			if err != nil {
				return false, fmt.Errorf("store: change signing key: %w", err)
			}
			n, err := res.RowsAffected()
			return n == 1, err
		}
		if plan.Retire != "" {
			ok, err := change("UPDATE signing_keys SET state = 'retired', retired_at = $1, remove_at = $2 WHERE kid = $3 AND state = 'current'",
				ts(now), ts(removeAt), plan.Retire)
			if err != nil {
				return err
			}
			if !ok {
				return conflict("key to retire is no longer current")
			}
		}
		if plan.Promote != "" {
			ok, err := change("UPDATE signing_keys SET state = 'current', activated_at = $1 WHERE kid = $2 AND state = 'next'", ts(now), plan.Promote)
			if err != nil {
				return err
			}
			if !ok {
				return conflict("key to promote is no longer next")
			}
		}
		for _, k := range fresh {
			_, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, state, x, y, private_key, created_at, activated_at, retired_at, remove_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)`, k.ID, string(k.State), k.X, k.Y, k.Private, ts(k.CreatedAt), nullTS(k.ActivatedAt))
			if storage.IsUniqueViolation(err) {
				return conflict("another " + string(k.State) + " key exists")
			}
			if err != nil {
				return fmt.Errorf("store: insert signing key: %w", err)
			}
		}
		return nil
	})
	return err
}

// ---- Maintenance ----

// PruneStats counts what Prune deleted.
type PruneStats struct {
	LoginFailures, RefreshTokens, Sessions int64
}

// Prune deletes what can no longer matter at now: login failures older
// than loginWindow, refresh tokens expired for more than a day, and
// sessions left without any refresh token.
func (s *Store) Prune(ctx context.Context, now time.Time, loginWindow time.Duration) (PruneStats, error) {
	var st PruneStats
	steps := []struct {
		q    string
		arg  time.Time
		into *int64
	}{
		{"DELETE FROM login_failures WHERE failed_at <= $1", now.Add(-loginWindow), &st.LoginFailures},
		{"DELETE FROM refresh_tokens WHERE expires_at <= $1", now.Add(-24 * time.Hour), &st.RefreshTokens},
		{`DELETE FROM sessions WHERE created_at <= $1
AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.session_id = sessions.id)`, now.Add(-24 * time.Hour), &st.Sessions},
	}
	for _, step := range steps {
		res, err := s.db.Exec(ctx, step.q, ts(step.arg))
		if err != nil {
			return st, fmt.Errorf("store: prune: %w", err)
		}
		if *step.into, err = res.RowsAffected(); err != nil {
			return st, fmt.Errorf("store: prune: %w", err)
		}
	}
	return st, nil
}
