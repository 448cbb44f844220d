package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 123456000, time.UTC)

// recorder collects what the hooks saw, and can make them fail.
type recorder struct {
	mu       sync.Mutex
	created  []string
	revoked  []domain.Revocation
	failNext bool
}

func (r *recorder) options() store.Options {
	return store.Options{
		OnAccountCreated: func(ctx context.Context, tx *storage.Tx, a domain.Account) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM accounts WHERE id = $1", a.ID).Scan(&n); err != nil || n != 1 {
				return fmt.Errorf("account %s not visible in the hook's transaction: %d, %v", a.ID, n, err)
			}
			if r.failNext {
				r.failNext = false
				return errors.New("outbox full")
			}
			r.created = append(r.created, a.ID)
			return nil
		},
		OnSessionRevoked: func(ctx context.Context, tx *storage.Tx, rv domain.Revocation) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.revoked = append(r.revoked, rv)
			return nil
		},
	}
}

func (r *recorder) revokedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rv := range r.revoked {
		out = append(out, rv.SessionID)
	}
	return out
}

// The contract of the identity store, run on SQLite and PostgreSQL
// (MARQUEE_TEST_POSTGRES).
var contract = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, s *store.Store, rec *recorder)
}{
	{"Accounts", testAccounts},
	{"AccountHookRollsBack", testAccountHookRollsBack},
	{"ReplacePasswordHash", testReplacePasswordHash},
	{"RotateRefreshToken", testRotateRefreshToken},
	{"ExpiredRefreshToken", testExpiredRefreshToken},
	{"ConcurrentRotationsOneWins", testConcurrentRotationsOneWins},
	{"RevokeSessions", testRevokeSessions},
	{"Throttle", testThrottle},
	{"ConcurrentAttemptsCount", testConcurrentAttemptsCount},
	{"APIKeys", testAPIKeys},
	{"APIKeyLimit", testAPIKeyLimit},
	{"SigningKeys", testSigningKeys},
	{"SigningKeyRaces", testSigningKeyRaces},
	{"Prune", testPrune},
}

// TestStoreContract runs every case on one database per backend, emptied
// between cases (creating a PostgreSQL database per case would be slow).
func TestStoreContract(t *testing.T) {
	storagetest.ForEach(t, "identity", store.Migrations, func(t *testing.T, db *storage.DB) {
		for _, c := range contract {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				for _, table := range []string{"api_keys", "refresh_tokens", "sessions", "login_failures", "signing_keys", "accounts", "marquee_outbox"} {
					if _, err := db.Exec(ctx, "DELETE FROM "+table); err != nil {
						t.Fatalf("empty %s: %v", table, err)
					}
				}
				rec := &recorder{}
				s := store.New(db, rec.options())
				if err := s.CheckSchema(ctx); err != nil {
					t.Fatal(err)
				}
				c.fn(t, ctx, s, rec)
			})
		}
	})
}

func TestCheckSchemaWithoutMigrations(t *testing.T) {
	db := storagetest.OpenSQLite(t, "identity", storage.Migrations{})
	if err := store.New(db, store.Options{}).CheckSchema(context.Background()); err == nil {
		t.Error("CheckSchema on an empty database = nil, want an error")
	}
}

func account(id, email string) domain.Account {
	return domain.Account{ID: id, Email: email, Name: "N " + id, Roles: []string{domain.RoleViewer}, PasswordHash: "$hash$" + id, CreatedAt: t0}
}

func mustAccount(t *testing.T, ctx context.Context, s *store.Store, id string) domain.Account {
	t.Helper()
	a := account(id, id+"@example.com")
	if err := s.CreateAccount(ctx, a, nil, nil); err != nil {
		t.Fatalf("CreateAccount(%s): %v", id, err)
	}
	return a
}

// session starts a session of accountID and returns it with its token.
func session(t *testing.T, ctx context.Context, s *store.Store, accountID string, at time.Time) (domain.Session, domain.RefreshToken) {
	t.Helper()
	_, hash := domain.NewRefreshToken()
	sess := domain.Session{ID: "s-" + hash[:12], AccountID: accountID, CreatedAt: at}
	tok := domain.RefreshToken{Hash: hash, SessionID: sess.ID, IssuedAt: at, ExpiresAt: at.Add(domain.RefreshTokenTTL)}
	if err := s.CreateSession(ctx, sess, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return sess, tok
}

func nextToken(at time.Time) domain.RefreshToken {
	_, hash := domain.NewRefreshToken()
	return domain.RefreshToken{Hash: hash, IssuedAt: at, ExpiresAt: at.Add(domain.RefreshTokenTTL)}
}

func testAccounts(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	a := account("a1", "ann@example.com")
	a.Roles = []string{domain.RoleAdmin, domain.RoleViewer}
	_, hash := domain.NewRefreshToken()
	sess := domain.Session{ID: "s1", AccountID: "a1", CreatedAt: t0}
	tok := domain.RefreshToken{Hash: hash, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateAccount(ctx, a, &sess, &tok); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	for _, get := range []func() (domain.Account, error){
		func() (domain.Account, error) { return s.Account(ctx, "a1") },
		func() (domain.Account, error) { return s.AccountByEmail(ctx, "ann@example.com") },
	} {
		got, err := get()
		if err != nil || got.ID != a.ID || got.Email != a.Email || got.Name != a.Name || !slices.Equal(got.Roles, a.Roles) ||
			got.PasswordHash != a.PasswordHash || !got.CreatedAt.Equal(t0) {
			t.Errorf("read account = %+v, %v; want %+v", got, err, a)
		}
	}
	if got, err := s.SessionOfRefreshToken(ctx, hash); err != nil || got.ID != "s1" || got.AccountID != "a1" || !got.RevokedAt.IsZero() {
		t.Errorf("SessionOfRefreshToken(first token) = %+v, %v; want s1 of a1, active", got, err)
	}
	if err := s.CreateAccount(ctx, account("a2", "ann@example.com"), nil, nil); !errors.Is(err, domain.ErrEmailTaken) {
		t.Errorf("CreateAccount(same email) = %v, want ErrEmailTaken", err)
	}
	if err := s.CreateAccount(ctx, account("a1", "other@example.com"), nil, nil); !errors.Is(err, domain.ErrAccountExists) {
		t.Errorf("CreateAccount(same id) = %v, want ErrAccountExists", err)
	}
	for _, err := range []error{
		func() error { _, err := s.Account(ctx, "nobody"); return err }(),
		func() error { _, err := s.AccountByEmail(ctx, "nobody@example.com"); return err }(),
		func() error { _, err := s.SessionOfRefreshToken(ctx, "nohash"); return err }(),
		func() error { _, err := s.Session(ctx, "nosession"); return err }(),
	} {
		if !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("read of a missing row = %v, want ErrNotFound", err)
		}
	}
	if !slices.Equal(rec.created, []string{"a1"}) {
		t.Errorf("account_created hooks = %v, want [a1]", rec.created)
	}
}

func testAccountHookRollsBack(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	rec.failNext = true
	if err := s.CreateAccount(ctx, account("a1", "ann@example.com"), nil, nil); err == nil {
		t.Fatal("CreateAccount with a failing hook = nil, want error")
	}
	if _, err := s.Account(ctx, "a1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("account after a failed hook = %v, want ErrNotFound (rolled back)", err)
	}
	if err := s.CreateAccount(ctx, account("a1", "ann@example.com"), nil, nil); err != nil {
		t.Errorf("CreateAccount after the rollback = %v", err)
	}
}

func testReplacePasswordHash(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	a := mustAccount(t, ctx, s, "a1")
	if ok, err := s.ReplacePasswordHash(ctx, "a1", "stale", "new", t0); ok || err != nil {
		t.Errorf("ReplacePasswordHash(stale old hash) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.ReplacePasswordHash(ctx, "a1", a.PasswordHash, "new", t0); !ok || err != nil {
		t.Errorf("ReplacePasswordHash(current hash) = %v, %v; want true, nil", ok, err)
	}
	if got, _ := s.Account(ctx, "a1"); got.PasswordHash != "new" {
		t.Errorf("hash after replace = %q, want new", got.PasswordHash)
	}
}

func testRotateRefreshToken(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	mustAccount(t, ctx, s, "a1")
	sess, first := session(t, ctx, s, "a1", t0)
	second := nextToken(t0.Add(time.Minute))
	got, err := s.RotateRefreshToken(ctx, first.Hash, second, t0.Add(time.Minute), "reuse")
	if err != nil || got.ID != sess.ID || got.AccountID != "a1" {
		t.Fatalf("RotateRefreshToken(first) = %+v, %v; want session %s", got, err, sess.ID)
	}
	third := nextToken(t0.Add(2 * time.Minute))
	if _, err := s.RotateRefreshToken(ctx, second.Hash, third, t0.Add(2*time.Minute), "reuse"); err != nil {
		t.Fatalf("RotateRefreshToken(second) = %v", err)
	}
	// The first token again: reuse. The family is revoked, once.
	if _, err := s.RotateRefreshToken(ctx, first.Hash, nextToken(t0), t0.Add(3*time.Minute), "reuse"); !errors.Is(err, domain.ErrRefreshTokenReused) {
		t.Fatalf("RotateRefreshToken(first again) = %v, want ErrRefreshTokenReused", err)
	}
	if got, _ := s.Session(ctx, sess.ID); got.RevokedAt.IsZero() || got.RevokeReason != "reuse" {
		t.Errorf("session after reuse = %+v, want revoked for reuse", got)
	}
	// The newest token of the family is dead too; reusing again does not
	// revoke twice.
	if _, err := s.RotateRefreshToken(ctx, third.Hash, nextToken(t0), t0.Add(4*time.Minute), "reuse"); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("RotateRefreshToken(newest after reuse) = %v, want ErrInvalidRefreshToken", err)
	}
	if _, err := s.RotateRefreshToken(ctx, second.Hash, nextToken(t0), t0.Add(4*time.Minute), "reuse"); !errors.Is(err, domain.ErrRefreshTokenReused) {
		t.Errorf("RotateRefreshToken(second again) = %v, want ErrRefreshTokenReused", err)
	}
	if got := rec.revokedIDs(); !slices.Equal(got, []string{sess.ID}) {
		t.Errorf("session_revoked hooks = %v, want exactly [%s]", got, sess.ID)
	}
	if _, err := s.RotateRefreshToken(ctx, "unknown", nextToken(t0), t0, "reuse"); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("RotateRefreshToken(unknown) = %v, want ErrInvalidRefreshToken", err)
	}
}

func testExpiredRefreshToken(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	mustAccount(t, ctx, s, "a1")
	_, first := session(t, ctx, s, "a1", t0)
	if _, err := s.RotateRefreshToken(ctx, first.Hash, nextToken(t0), first.ExpiresAt, "reuse"); !errors.Is(err, domain.ErrInvalidRefreshToken) {
		t.Errorf("RotateRefreshToken at expiry = %v, want ErrInvalidRefreshToken", err)
	}
	if _, err := s.RotateRefreshToken(ctx, first.Hash, nextToken(t0), first.ExpiresAt.Add(-time.Microsecond), "reuse"); err != nil {
		t.Errorf("RotateRefreshToken just before expiry = %v, want nil", err)
	}
	if len(rec.revokedIDs()) != 0 {
		t.Errorf("expiry revoked sessions: %v", rec.revokedIDs())
	}
}

func testConcurrentRotationsOneWins(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	mustAccount(t, ctx, s, "a1")
	sess, first := session(t, ctx, s, "a1", t0)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.RotateRefreshToken(ctx, first.Hash, nextToken(t0), t0.Add(time.Second), "reuse")
		})
	}
	wg.Wait()
	wins, reused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, domain.ErrRefreshTokenReused):
			reused++
		default:
			t.Errorf("concurrent rotation: %v", err)
		}
	}
	if wins != 1 || reused != n-1 {
		t.Errorf("concurrent rotations: %d won, %d reused; want 1 and %d", wins, reused, n-1)
	}
	if got := rec.revokedIDs(); !slices.Equal(got, []string{sess.ID}) {
		t.Errorf("revocations = %v, want [%s] once", got, sess.ID)
	}
}

func testRevokeSessions(t *testing.T, ctx context.Context, s *store.Store, rec *recorder) {
	mustAccount(t, ctx, s, "a1")
	mustAccount(t, ctx, s, "a2")
	s1, _ := session(t, ctx, s, "a1", t0)
	s2, _ := session(t, ctx, s, "a1", t0)
	s3, _ := session(t, ctx, s, "a1", t0)
	other, _ := session(t, ctx, s, "a2", t0)
	if changed, err := s.RevokeSession(ctx, s1.ID, "a1", "logout", t0); !changed || err != nil {
		t.Errorf("RevokeSession(s1) = %v, %v; want true, nil", changed, err)
	}
	if changed, err := s.RevokeSession(ctx, s1.ID, "a1", "logout", t0.Add(time.Minute)); changed || err != nil {
		t.Errorf("RevokeSession(s1 again) = %v, %v; want false, nil", changed, err)
	}
	if _, err := s.RevokeSession(ctx, other.ID, "a1", "logout", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RevokeSession(another account's) = %v, want ErrNotFound", err)
	}
	if _, err := s.RevokeSession(ctx, "missing", "a1", "logout", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RevokeSession(missing) = %v, want ErrNotFound", err)
	}
	n, err := s.RevokeAccountSessions(ctx, "a1", "logout_all", t0)
	if err != nil || n != 2 {
		t.Errorf("RevokeAccountSessions(a1) = %d, %v; want 2", n, err)
	}
	want := []string{s1.ID}
	want = append(want, slices.Sorted(slices.Values([]string{s2.ID, s3.ID}))...)
	if got := rec.revokedIDs(); !slices.Equal(got, want) {
		t.Errorf("revocations = %v, want %v", got, want)
	}
	if got, _ := s.Session(ctx, other.ID); !got.RevokedAt.IsZero() {
		t.Error("another account's session was revoked")
	}
	if got, _ := s.Session(ctx, s1.ID); !got.RevokedAt.Equal(t0) || got.RevokeReason != "logout" {
		t.Errorf("s1 = %+v, want revoked at t0 for logout (kept its first revocation)", got)
	}
}

func testThrottle(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	acct := domain.ThrottleKey{Hash: "acct", ThrottleRule: domain.ThrottleRule{Limit: 3, Window: 15 * time.Minute}}
	addr := domain.ThrottleKey{Hash: "addr", ThrottleRule: domain.ThrottleRule{Limit: 5, Window: 15 * time.Minute}}
	keys := []domain.ThrottleKey{acct, addr}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for i := range 3 {
		if err := s.BeginLogin(ctx, fmt.Sprintf("fail-%d", i), keys, at(i)); err != nil {
			t.Fatalf("BeginLogin #%d = %v, want nil", i, err)
		}
	}
	var thr *domain.ThrottledError
	err := s.BeginLogin(ctx, "blocked", keys, at(3))
	if !errors.As(err, &thr) || thr.RetryAfter != 12*time.Minute {
		t.Fatalf("BeginLogin over the account limit = %v, want throttled for 12m (until the first failure leaves the window)", err)
	}
	// Once the oldest failure leaves the window, one more try is allowed.
	if err := s.BeginLogin(ctx, "ok", keys, at(15).Add(time.Second)); err != nil {
		t.Fatalf("BeginLogin after the window = %v", err)
	}
	if err := s.CompleteLogin(ctx, "ok", acct.Hash, domain.Session{}, domain.RefreshToken{}); err == nil {
		t.Fatal("CompleteLogin with an empty session = nil, want the insert to fail (and roll back)")
	}
	// A success clears the account's failures, not the address's.
	mustAccount(t, ctx, s, "a1")
	_, hash := domain.NewRefreshToken()
	sess := domain.Session{ID: "s1", AccountID: "a1", CreatedAt: at(15)}
	if err := s.CompleteLogin(ctx, "ok", acct.Hash, sess, domain.RefreshToken{Hash: hash, IssuedAt: at(15), ExpiresAt: at(60)}); err != nil {
		t.Fatalf("CompleteLogin = %v", err)
	}
	for i := range 3 {
		if err := s.BeginLogin(ctx, fmt.Sprintf("again-%d", i), []domain.ThrottleKey{acct}, at(16)); err != nil {
			t.Fatalf("BeginLogin after a success #%d = %v, want the account counter reset", i, err)
		}
	}
	// The address keeps its failures: at 16 minutes only fail-2 (at 2m) is
	// in its window, plus none of the cleared successful attempt, so four
	// more failures reach its limit of 5 and the next is refused.
	other := domain.ThrottleKey{Hash: "acct2", ThrottleRule: domain.ThrottleRule{Limit: 100, Window: 15 * time.Minute}}
	for i := range 5 {
		err := s.BeginLogin(ctx, fmt.Sprintf("sweep-%d", i), []domain.ThrottleKey{other, addr}, at(16))
		if i < 4 && err != nil {
			t.Fatalf("BeginLogin from the address #%d = %v", i, err)
		}
		if i == 4 && !errors.As(err, &thr) {
			t.Fatalf("BeginLogin over the address limit = %v, want throttled", err)
		}
	}
}

func testConcurrentAttemptsCount(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	k := domain.ThrottleKey{Hash: "k", ThrottleRule: domain.ThrottleRule{Limit: 5, Window: time.Hour}}
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := range n {
		wg.Go(func() {
			err := s.BeginLogin(ctx, fmt.Sprintf("c-%d", i), []domain.ThrottleKey{k}, t0.Add(time.Duration(i)*time.Millisecond))
			if err == nil {
				mu.Lock()
				allowed++
				mu.Unlock()
			} else if !errors.Is(err, domain.ErrThrottled) {
				t.Errorf("BeginLogin: %v", err)
			}
		})
	}
	wg.Wait()
	// Attempts on one key are serialised (a lock per key on PostgreSQL,
	// the single writer on SQLite), so exactly the limit gets through.
	if allowed != k.Limit {
		t.Errorf("%d concurrent attempts let %d through, want %d", n, allowed, k.Limit)
	}
}

func apiKey(accountID string, at time.Time) domain.APIKey {
	id, _, hash := domain.NewAPIKeySecret()
	return domain.APIKey{ID: id, AccountID: accountID, Name: "k " + id[:4], Roles: []string{domain.RoleViewer}, Hash: hash, CreatedAt: at}
}

func testAPIKeys(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	mustAccount(t, ctx, s, "a1")
	mustAccount(t, ctx, s, "a2")
	var made []domain.APIKey
	for i := range 5 {
		k := apiKey("a1", t0.Add(time.Duration(i%3)*time.Second)) // equal times break ties by id
		if i == 0 {
			k.ExpiresAt = t0.Add(time.Hour)
		}
		if err := s.CreateAPIKey(ctx, k, t0); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		made = append(made, k)
	}
	if err := s.CreateAPIKey(ctx, apiKey("a2", t0), t0); err != nil {
		t.Fatal(err)
	}
	got, err := s.APIKey(ctx, made[0].ID)
	if err != nil || got.Hash != made[0].Hash || got.AccountID != "a1" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) ||
		!got.LastUsedAt.IsZero() || !got.RevokedAt.IsZero() || !slices.Equal(got.Roles, []string{"viewer"}) {
		t.Errorf("APIKey = %+v, %v; want %+v", got, err, made[0])
	}
	// Paging: newest first, ties by id descending, each key once.
	want := slices.Clone(made)
	slices.SortFunc(want, func(a, b domain.APIKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		if a.ID > b.ID {
			return -1
		}
		return 1
	})
	var all []string
	var cur domain.Cursor
	for range 10 {
		page, err := s.ListAPIKeys(ctx, "a1", cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page {
			all = append(all, k.ID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		cur = domain.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	var wantIDs []string
	for _, k := range want {
		wantIDs = append(wantIDs, k.ID)
	}
	if !slices.Equal(all, wantIDs) {
		t.Errorf("paged ListAPIKeys = %v, want %v", all, wantIDs)
	}
	// Revoke: only one's own; idempotent.
	if err := s.RevokeAPIKey(ctx, "a2", made[1].ID, t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RevokeAPIKey(another account's) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, "a1", made[1].ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "a1", made[1].ID, t0.Add(time.Hour)); err != nil {
		t.Errorf("RevokeAPIKey again = %v, want nil", err)
	}
	if got, _ := s.APIKey(ctx, made[1].ID); !got.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("revoked_at = %v, want the first revocation %v", got.RevokedAt, t0.Add(time.Minute))
	}
	// Touch writes at most once per period.
	for _, at := range []time.Duration{0, 30 * time.Second, 2 * time.Minute} {
		if err := s.TouchAPIKey(ctx, made[2].ID, t0.Add(at), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.APIKey(ctx, made[2].ID); !got.LastUsedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("last_used_at = %v, want %v", got.LastUsedAt, t0.Add(2*time.Minute))
	}
	if _, err := s.APIKey(ctx, "missing"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("APIKey(missing) = %v, want ErrNotFound", err)
	}
}

func testAPIKeyLimit(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	mustAccount(t, ctx, s, "a1")
	var first domain.APIKey
	for i := range domain.MaxActiveAPIKeys {
		k := apiKey("a1", t0)
		if i == 0 {
			first = k
		}
		if err := s.CreateAPIKey(ctx, k, t0); err != nil {
			t.Fatalf("CreateAPIKey #%d: %v", i, err)
		}
	}
	if err := s.CreateAPIKey(ctx, apiKey("a1", t0), t0); !errors.Is(err, domain.ErrTooManyAPIKeys) {
		t.Fatalf("CreateAPIKey over the limit = %v, want ErrTooManyAPIKeys", err)
	}
	if err := s.RevokeAPIKey(ctx, "a1", first.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIKey(ctx, apiKey("a1", t0), t0); err != nil {
		t.Errorf("CreateAPIKey after revoking one = %v", err)
	}
}

func sk(id string, state domain.KeyState, at time.Time) domain.SigningKey {
	k := domain.SigningKey{ID: id, State: state, X: "x-" + id, Y: "y-" + id, Private: "plain:secret-" + id, CreatedAt: at}
	if state == domain.KeyCurrent {
		k.ActivatedAt = at
	}
	return k
}

func states(t *testing.T, ctx context.Context, s *store.Store) map[string]domain.KeyState {
	t.Helper()
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]domain.KeyState{}
	for _, k := range keys {
		out[k.ID] = k.State
	}
	return out
}

func testSigningKeys(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	boot := domain.KeyPlan{NewCurrent: true, NewNext: true}
	if err := s.ApplyKeyPlan(ctx, boot, []domain.SigningKey{sk("k1", domain.KeyCurrent, t0), sk("k2", domain.KeyNext, t0)}, t0, time.Time{}); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	rot := domain.KeyPlan{Retire: "k1", Promote: "k2", NewNext: true}
	removeAt := t0.Add(time.Hour + 16*time.Minute)
	if err := s.ApplyKeyPlan(ctx, rot, []domain.SigningKey{sk("k3", domain.KeyNext, t0.Add(time.Hour))}, t0.Add(time.Hour), removeAt); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]domain.SigningKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	if k := byID["k1"]; k.State != domain.KeyRetired || !k.RetiredAt.Equal(t0.Add(time.Hour)) || !k.RemoveAt.Equal(removeAt) || k.Private == "" {
		t.Errorf("k1 after rotation = %+v, want retired until %v", k, removeAt)
	}
	if k := byID["k2"]; k.State != domain.KeyCurrent || !k.ActivatedAt.Equal(t0.Add(time.Hour)) || k.X != "x-k2" || k.Private != "plain:secret-k2" {
		t.Errorf("k2 after rotation = %+v, want current since %v", k, t0.Add(time.Hour))
	}
	if k := byID["k3"]; k.State != domain.KeyNext {
		t.Errorf("k3 = %+v, want next", k)
	}
	if keys[0].ID != "k3" {
		t.Errorf("SigningKeys order starts with %s, want the newest (k3)", keys[0].ID)
	}
	// Removal erases the key and hides it.
	if err := s.ApplyKeyPlan(ctx, domain.KeyPlan{Remove: []string{"k1"}}, nil, removeAt, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := states(t, ctx, s); len(got) != 2 || got["k1"] != "" {
		t.Errorf("keys after removal = %v, want k2 and k3", got)
	}
}

func testSigningKeyRaces(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	boot := domain.KeyPlan{NewCurrent: true, NewNext: true}
	if err := s.ApplyKeyPlan(ctx, boot, []domain.SigningKey{sk("k1", domain.KeyCurrent, t0), sk("k2", domain.KeyNext, t0)}, t0, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A second bootstrap (another replica that saw no keys) conflicts.
	if err := s.ApplyKeyPlan(ctx, boot, []domain.SigningKey{sk("x1", domain.KeyCurrent, t0), sk("x2", domain.KeyNext, t0)}, t0, time.Time{}); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("second bootstrap = %v, want ErrConflict", err)
	}
	// Two replicas rotate from the same view: one wins, one conflicts and
	// changes nothing.
	rot := domain.KeyPlan{Retire: "k1", Promote: "k2", NewNext: true}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			errs[i] = s.ApplyKeyPlan(ctx, rot, []domain.SigningKey{sk(fmt.Sprintf("n%d", i), domain.KeyNext, t0)}, t0, t0.Add(time.Hour))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, domain.ErrConflict) {
			t.Errorf("racing rotation: %v", err)
		}
	}
	got := states(t, ctx, s)
	if ok != 1 || len(got) != 3 || got["k1"] != domain.KeyRetired || got["k2"] != domain.KeyCurrent || (got["n0"] == "") == (got["n1"] == "") {
		t.Errorf("after racing rotations: %d won, keys %v; want one winner with k1 retired, k2 current, one new next", ok, got)
	}
}

func testPrune(t *testing.T, ctx context.Context, s *store.Store, _ *recorder) {
	mustAccount(t, ctx, s, "a1")
	old, _ := session(t, ctx, s, "a1", t0.Add(-domain.RefreshTokenTTL-48*time.Hour))
	live, _ := session(t, ctx, s, "a1", t0)
	k := domain.ThrottleKey{Hash: "k", ThrottleRule: domain.ThrottleRule{Limit: 10, Window: 15 * time.Minute}}
	if err := s.BeginLogin(ctx, "old", []domain.ThrottleKey{k}, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.BeginLogin(ctx, "new", []domain.ThrottleKey{k}, t0); err != nil {
		t.Fatal(err)
	}
	st, err := s.Prune(ctx, t0, 15*time.Minute)
	if err != nil || st.LoginFailures != 1 || st.RefreshTokens != 1 || st.Sessions != 1 {
		t.Errorf("Prune = %+v, %v; want 1 failure, 1 token, 1 session", st, err)
	}
	if _, err := s.Session(ctx, old.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("old session after prune: %v, want ErrNotFound", err)
	}
	if _, err := s.Session(ctx, live.ID); err != nil {
		t.Errorf("live session after prune: %v", err)
	}
}
