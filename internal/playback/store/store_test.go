package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/playback/domain"
	"github.com/marquee-tv/marquee/internal/playback/store"
)

// t0 has a microsecond part, to check times round-trip exactly.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 123456000, time.UTC)

// The contract of the playback store, run on SQLite and on PostgreSQL
// (MARQUEE_TEST_POSTGRES).
var contract = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store)
}{
	{"GrantRoundTrip", testGrantRoundTrip},
	{"GrantPlanSupersedesRevokeRestores", testGrantPlanSupersedesRevokeRestores},
	{"RevokeSupersededPlanUnlinksIt", testRevokeSupersededPlanUnlinksIt},
	{"RevokeRental", testRevokeRental},
	{"GrantRefusesReusedKey", testGrantRefusesReusedKey},
	{"ListEntitlementsPaging", testListEntitlementsPaging},
	{"SessionsActiveAndStale", testSessionsActiveAndStale},
	{"UpdateSessionOnlyWhileActive", testUpdateSessionOnlyWhileActive},
	{"LockAccountSerialisesStarts", testLockAccountSerialisesStarts},
	{"ProgressAndContinueWatching", testProgressAndContinueWatching},
	{"SigningKeyIsShared", testSigningKeyIsShared},
}

// TestStoreContract runs every case on one fresh database per backend
// (creating a PostgreSQL database costs seconds), emptying the tables
// before each case.
func TestStoreContract(t *testing.T) {
	storagetest.ForEach(t, "playback", store.Migrations, func(t *testing.T, db *storage.DB) {
		s := store.New()
		ctx := context.Background()
		if err := s.CheckSchema(ctx, db); err != nil {
			t.Fatal(err)
		}
		for _, c := range contract {
			t.Run(c.name, func(t *testing.T) {
				for _, table := range []string{"entitlements", "sessions", "stream_locks", "progress", "signing_keys"} {
					if _, err := db.Exec(ctx, "DELETE FROM "+table); err != nil {
						t.Fatalf("empty %s: %v", table, err)
					}
				}
				c.fn(t, ctx, db, s)
			})
		}
	})
}

func TestCheckSchemaWithoutMigrations(t *testing.T) {
	db := storagetest.OpenSQLite(t, "playback", storage.Migrations{})
	if err := store.New().CheckSchema(context.Background(), db); err == nil {
		t.Fatal("CheckSchema on a database without playback's tables = nil, want an error")
	}
}

func plan(key, account, planID string, at time.Time) domain.Entitlement {
	return domain.Grant{IdempotencyKey: key, AccountID: account, OrderID: "o-" + key, SagaID: "s-" + key, PlanID: planID}.Entitlement("e-"+key, at)
}

func rental(key, account, title string, at time.Time) domain.Entitlement {
	return domain.Grant{IdempotencyKey: key, AccountID: account, OrderID: "o-" + key, TitleID: title}.Entitlement("e-"+key, at)
}

func grant(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, e domain.Entitlement) domain.Entitlement {
	t.Helper()
	var out domain.Entitlement
	err := db.InTx(ctx, func(tx *storage.Tx) error {
		var err error
		out, err = s.Grant(ctx, tx, e)
		return err
	})
	if err != nil {
		t.Fatalf("Grant(%s): %v", e.IdempotencyKey, err)
	}
	return out
}

func revoke(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, key string, at time.Time) domain.Entitlement {
	t.Helper()
	var out domain.Entitlement
	err := db.InTx(ctx, func(tx *storage.Tx) error {
		var err error
		out, err = s.Revoke(ctx, tx, key, at)
		return err
	})
	if err != nil {
		t.Fatalf("Revoke(%s): %v", key, err)
	}
	return out
}

// statuses returns the stored status of each entitlement key.
func statuses(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, keys ...string) []domain.Status {
	t.Helper()
	var out []domain.Status
	for _, k := range keys {
		e, err := s.EntitlementByKey(ctx, db, k)
		if err != nil {
			t.Fatalf("EntitlementByKey(%s): %v", k, err)
		}
		out = append(out, e.Status)
	}
	return out
}

func testGrantRoundTrip(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	want := rental("k1", "a1", "t-1", t0)
	grant(t, ctx, db, s, want)
	got, err := s.Entitlement(ctx, db, "e-k1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Entitlement(e-k1) = %+v, want %+v", got, want)
	}
	byKey, err := s.EntitlementByKey(ctx, db, "k1")
	if err != nil || byKey != want {
		t.Errorf("EntitlementByKey(k1) = %+v, %v, want %+v", byKey, err, want)
	}
	if _, err := s.Entitlement(ctx, db, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Entitlement(nope) = %v, want ErrNotFound", err)
	}
	if _, err := s.EntitlementByKey(ctx, db, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("EntitlementByKey(nope) = %v, want ErrNotFound", err)
	}
}

func testGrantPlanSupersedesRevokeRestores(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	grant(t, ctx, db, s, plan("basic", "a1", "basic", t0))
	grant(t, ctx, db, s, plan("other-account", "a2", "standard", t0))
	premium := grant(t, ctx, db, s, plan("premium", "a1", "premium", t0.Add(time.Minute)))
	if premium.SupersedesID != "e-basic" {
		t.Errorf("premium.SupersedesID = %q, want e-basic", premium.SupersedesID)
	}
	if got, want := statuses(t, ctx, db, s, "basic", "premium", "other-account"), []domain.Status{"superseded", "active", "active"}; !slices.Equal(got, want) {
		t.Errorf("after the second plan: statuses %v, want %v", got, want)
	}
	active, err := s.StoredActive(ctx, db, "a1")
	if err != nil || len(active) != 1 || active[0].ID != "e-premium" {
		t.Errorf("StoredActive(a1) = %v, %v, want only premium", active, err)
	}
	revoked := revoke(t, ctx, db, s, "premium", t0.Add(time.Hour))
	if revoked.Status != domain.StatusRevoked || !revoked.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("Revoke(premium) = %+v, want revoked at +1h", revoked)
	}
	if got, want := statuses(t, ctx, db, s, "basic", "premium", "other-account"), []domain.Status{"active", "revoked", "active"}; !slices.Equal(got, want) {
		t.Errorf("after revoking it: statuses %v, want %v (the previous plan restored)", got, want)
	}
	// Revoking again changes nothing.
	again := revoke(t, ctx, db, s, "premium", t0.Add(2*time.Hour))
	if !again.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("second Revoke(premium) revoked at %v, want the first time", again.RevokedAt)
	}
	if got, want := statuses(t, ctx, db, s, "basic"), []domain.Status{"active"}; !slices.Equal(got, want) {
		t.Errorf("after revoking twice: basic %v, want %v", got, want)
	}
	// Revoking the first plan leaves no plan.
	revoke(t, ctx, db, s, "basic", t0.Add(3*time.Hour))
	if active, _ := s.StoredActive(ctx, db, "a1"); len(active) != 0 {
		t.Errorf("StoredActive after revoking both = %v, want none", active)
	}
	if _, err := s.Revoke(ctx, db, "nope", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Revoke(nope) = %v, want ErrNotFound", err)
	}
}

func testRevokeSupersededPlanUnlinksIt(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	grant(t, ctx, db, s, plan("a", "acc", "basic", t0))
	grant(t, ctx, db, s, plan("b", "acc", "standard", t0.Add(time.Minute)))
	grant(t, ctx, db, s, plan("c", "acc", "premium", t0.Add(2*time.Minute)))
	// b's order is compensated after c was granted: b leaves the chain.
	revoke(t, ctx, db, s, "b", t0.Add(time.Hour))
	if got, want := statuses(t, ctx, db, s, "a", "b", "c"), []domain.Status{"superseded", "revoked", "active"}; !slices.Equal(got, want) {
		t.Errorf("after revoking b: %v, want %v", got, want)
	}
	c, _ := s.EntitlementByKey(ctx, db, "c")
	if c.SupersedesID != "e-a" {
		t.Errorf("c.SupersedesID = %q, want e-a", c.SupersedesID)
	}
	revoke(t, ctx, db, s, "c", t0.Add(2*time.Hour))
	if got, want := statuses(t, ctx, db, s, "a", "b", "c"), []domain.Status{"active", "revoked", "revoked"}; !slices.Equal(got, want) {
		t.Errorf("after revoking c: %v, want %v (a restored, b stays revoked)", got, want)
	}
}

func testRevokeRental(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	grant(t, ctx, db, s, plan("p", "acc", "basic", t0))
	grant(t, ctx, db, s, rental("r", "acc", "t-5", t0))
	grant(t, ctx, db, s, rental("r2", "acc", "t-6", t0))
	if got, want := statuses(t, ctx, db, s, "p", "r", "r2"), []domain.Status{"active", "active", "active"}; !slices.Equal(got, want) {
		t.Errorf("a rental supersedes nothing: %v, want %v", got, want)
	}
	revoke(t, ctx, db, s, "r", t0.Add(time.Hour))
	if got, want := statuses(t, ctx, db, s, "p", "r", "r2"), []domain.Status{"active", "revoked", "active"}; !slices.Equal(got, want) {
		t.Errorf("after revoking the rental: %v, want %v", got, want)
	}
}

func testGrantRefusesReusedKey(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	grant(t, ctx, db, s, plan("k", "acc", "basic", t0))
	again := plan("k", "acc", "premium", t0.Add(time.Minute))
	again.ID = "e-other"
	err := db.InTx(ctx, func(tx *storage.Tx) error {
		_, err := s.Grant(ctx, tx, again)
		return err
	})
	if !errors.Is(err, domain.ErrIdempotencyKeyReused) {
		t.Fatalf("Grant with a used key = %v, want ErrIdempotencyKeyReused", err)
	}
	// The failed grant rolled back: the first plan is still active.
	if got := statuses(t, ctx, db, s, "k"); got[0] != domain.StatusActive {
		t.Errorf("after the refused grant, the plan is %s, want active", got[0])
	}
}

func testListEntitlementsPaging(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	for i := 0; i < 7; i++ {
		// Two share each instant, so the id breaks ties.
		grant(t, ctx, db, s, rental(fmt.Sprintf("k%d", i), "acc", "t-1", t0.Add(time.Duration(i/2)*time.Second)))
	}
	grant(t, ctx, db, s, rental("x", "other", "t-1", t0))
	var got []string
	var after *domain.Cursor
	for pages := 0; pages < 10; pages++ {
		page, err := s.ListEntitlements(ctx, db, store.EntitlementFilter{AccountID: "acc"}, 3, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			got = append(got, e.ID)
		}
		if len(page) < 3 {
			break
		}
		last := page[len(page)-1]
		after = &domain.Cursor{At: last.CreatedAt, ID: last.ID}
	}
	// Newest first, ties by id descending.
	if want := []string{"e-k6", "e-k5", "e-k4", "e-k3", "e-k2", "e-k1", "e-k0"}; !slices.Equal(got, want) {
		t.Errorf("paged ListEntitlements(acc) = %v, want %v", got, want)
	}
	byOrder, err := s.ListEntitlements(ctx, db, store.EntitlementFilter{OrderID: "o-x"}, 10, nil)
	if err != nil || len(byOrder) != 1 || byOrder[0].ID != "e-x" {
		t.Errorf("ListEntitlements(order o-x) = %v, %v, want e-x", byOrder, err)
	}
	all, err := s.ListEntitlements(ctx, db, store.EntitlementFilter{}, 100, nil)
	if err != nil || len(all) != 8 {
		t.Errorf("ListEntitlements() = %d, %v, want 8", len(all), err)
	}
}

func session(id, account, profile, title string, heartbeat time.Time) domain.Session {
	return domain.Session{
		ID: id, AccountID: account, ProfileID: profile, TitleID: title, AssetID: "demo-1",
		Genres: []string{"drama", "sci-fi"}, Duration: 5400, Position: 60, EventPosition: 60,
		State: domain.SessionActive, StartedAt: heartbeat, LastHeartbeatAt: heartbeat,
	}
}

func insert(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, x domain.Session) {
	t.Helper()
	if err := s.InsertSession(ctx, db, x); err != nil {
		t.Fatalf("InsertSession(%s): %v", x.ID, err)
	}
}

func ids(xs []domain.Session) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID)
	}
	return out
}

func testSessionsActiveAndStale(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	now := t0.Add(time.Hour)
	insert(t, ctx, db, s, session("fresh", "acc", "p1", "t-1", now.Add(-10*time.Second)))
	insert(t, ctx, db, s, session("edge", "acc", "p2", "t-2", now.Add(-domain.SessionTimeout)))
	insert(t, ctx, db, s, session("stale", "acc", "p1", "t-3", now.Add(-domain.SessionTimeout-time.Second)))
	insert(t, ctx, db, s, session("other", "acc2", "p9", "t-1", now))
	ended := session("ended", "acc", "p1", "t-4", now)
	ended.State, ended.EndedAt = domain.SessionEnded, now
	insert(t, ctx, db, s, ended)

	got, err := s.Session(ctx, db, "fresh")
	if want := session("fresh", "acc", "p1", "t-1", now.Add(-10*time.Second)); err != nil || !sameSession(got, want) {
		t.Errorf("Session(fresh) = %+v, %v, want %+v", got, err, want)
	}
	if _, err := s.Session(ctx, db, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Session(nope) = %v, want ErrNotFound", err)
	}
	active, err := s.ActiveSessions(ctx, db, "acc", now)
	if err != nil || !slices.Equal(ids(active), []string{"edge", "fresh"}) {
		t.Errorf("ActiveSessions(acc) = %v, %v, want [edge fresh]", ids(active), err)
	}
	stale, err := s.StaleSessions(ctx, db, now, 10)
	if err != nil || !slices.Equal(ids(stale), []string{"stale"}) {
		t.Errorf("StaleSessions = %v, %v, want [stale]", ids(stale), err)
	}
	n, err := s.DeleteEndedSessions(ctx, db, now.Add(time.Second))
	if err != nil || n != 1 {
		t.Errorf("DeleteEndedSessions = %d, %v, want 1", n, err)
	}
	if _, err := s.Session(ctx, db, "ended"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Session(ended) after delete = %v, want ErrNotFound", err)
	}
}

func sameSession(a, b domain.Session) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.ProfileID == b.ProfileID && a.TitleID == b.TitleID &&
		a.EpisodeID == b.EpisodeID && a.AssetID == b.AssetID && slices.Equal(a.Genres, b.Genres) &&
		a.Duration == b.Duration && a.Position == b.Position && a.EventPosition == b.EventPosition &&
		a.Completed == b.Completed && a.State == b.State && a.StartedAt.Equal(b.StartedAt) &&
		a.LastHeartbeatAt.Equal(b.LastHeartbeatAt) && a.EndedAt.Equal(b.EndedAt)
}

func testUpdateSessionOnlyWhileActive(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	x := session("s1", "acc", "p1", "t-1", t0)
	insert(t, ctx, db, s, x)
	x.Report(700, t0.Add(30*time.Second))
	if ok, err := s.UpdateSession(ctx, db, x); !ok || err != nil {
		t.Fatalf("UpdateSession(heartbeat) = %v, %v, want true", ok, err)
	}
	ended := x
	ended.End(800, t0.Add(time.Minute))
	if ok, err := s.UpdateSession(ctx, db, ended); !ok || err != nil {
		t.Fatalf("UpdateSession(end) = %v, %v, want true", ok, err)
	}
	got, _ := s.Session(ctx, db, "s1")
	if !sameSession(got, ended) {
		t.Errorf("Session after end = %+v, want %+v", got, ended)
	}
	// A late heartbeat, or a second end, changes nothing.
	late := x
	late.Report(900, t0.Add(2*time.Minute))
	if ok, err := s.UpdateSession(ctx, db, late); ok || err != nil {
		t.Errorf("UpdateSession of an ended session = %v, %v, want false", ok, err)
	}
	if got, _ := s.Session(ctx, db, "s1"); got.Position != 800 || got.State != domain.SessionEnded {
		t.Errorf("after a late update: %+v, want ended at 800", got)
	}
}

// testLockAccountSerialisesStarts runs concurrent "start if fewer than 2
// are active" transactions; with the lock exactly 2 succeed.
func testLockAccountSerialisesStarts(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	const limit, tries = 2, 8
	var wg sync.WaitGroup
	errs := make(chan error, tries)
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.InTx(ctx, func(tx *storage.Tx) error {
				if err := s.LockAccount(ctx, tx, "acc"); err != nil {
					return err
				}
				active, err := s.ActiveSessions(ctx, tx, "acc", t0)
				if err != nil {
					return err
				}
				if len(active) >= limit {
					return domain.ErrTooManyStreams
				}
				time.Sleep(5 * time.Millisecond) // widen the window a race would need
				return s.InsertSession(ctx, tx, session(fmt.Sprintf("s%d", i), "acc", "p", "t", t0))
			})
		}()
	}
	wg.Wait()
	close(errs)
	ok, refused := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, domain.ErrTooManyStreams):
			refused++
		default:
			t.Errorf("start: %v", err)
		}
	}
	active, _ := s.ActiveSessions(ctx, db, "acc", t0)
	if ok != limit || refused != tries-limit || len(active) != limit {
		t.Errorf("%d concurrent starts: %d started, %d refused, %d active; want %d, %d, %d", tries, ok, refused, len(active), limit, tries-limit, limit)
	}
}

func testProgressAndContinueWatching(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	if p, err := s.Progress(ctx, db, "acc", "p1", "t-1"); err != nil || p.TitleID != "" {
		t.Errorf("Progress of an unplayed title = %+v, %v, want zero", p, err)
	}
	save := func(p domain.Progress) {
		t.Helper()
		if err := s.SaveProgress(ctx, db, p); err != nil {
			t.Fatalf("SaveProgress(%s): %v", p.TitleID, err)
		}
	}
	pr := func(title string, pos, dur int, at time.Time) domain.Progress {
		return domain.Progress{AccountID: "acc", ProfileID: "p1", TitleID: title, Position: pos, Duration: dur, Finished: domain.Finished(pos, dur), UpdatedAt: at}
	}
	save(pr("t-1", 100, 5000, t0))
	save(pr("t-2", 200, 5000, t0.Add(time.Minute)))
	save(pr("t-3", 4900, 5000, t0.Add(2*time.Minute))) // finished
	save(pr("t-4", 0, 5000, t0.Add(3*time.Minute)))    // never really started
	save(pr("t-5", 300, 5000, t0.Add(4*time.Minute)))
	save(pr("t-6", 400, 5000, t0.Add(4*time.Minute))) // same instant as t-5
	other := pr("t-7", 100, 5000, t0.Add(time.Hour))
	other.ProfileID = "p2"
	save(other)
	foreign := pr("t-8", 100, 5000, t0.Add(time.Hour))
	foreign.AccountID = "acc2"
	save(foreign)
	// Saving again replaces: t-1 moves to the front with a new episode.
	series := pr("t-1", 150, 1500, t0.Add(5*time.Minute))
	series.EpisodeID = "t-1-s01e02"
	save(series)
	got, err := s.Progress(ctx, db, "acc", "p1", "t-1")
	if err != nil || got != series {
		t.Errorf("Progress(t-1) = %+v, %v, want %+v", got, err, series)
	}
	var titles []string
	var after *domain.Cursor
	for pages := 0; pages < 10; pages++ {
		page, err := s.ContinueWatching(ctx, db, "acc", "p1", 2, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			titles = append(titles, p.TitleID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		after = &domain.Cursor{At: last.UpdatedAt, ID: last.TitleID}
	}
	if want := []string{"t-1", "t-6", "t-5", "t-2"}; !slices.Equal(titles, want) {
		t.Errorf("ContinueWatching(p1) = %v, want %v", titles, want)
	}
	added, err := s.AddProgress(ctx, db, pr("t-2", 999, 5000, t0))
	if err != nil || added {
		t.Errorf("AddProgress over existing progress = %v, %v, want false", added, err)
	}
	if p, _ := s.Progress(ctx, db, "acc", "p1", "t-2"); p.Position != 200 {
		t.Errorf("AddProgress changed existing progress to %d", p.Position)
	}
	added, err = s.AddProgress(ctx, db, pr("t-9", 10, 5000, t0))
	if err != nil || !added {
		t.Errorf("AddProgress of a new title = %v, %v, want true", added, err)
	}
}

func testSigningKeyIsShared(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	var wg sync.WaitGroup
	keys := make([][]byte, 4)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.SigningKey(ctx, db, "media")
			if err != nil {
				t.Errorf("SigningKey: %v", err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if len(k) != store.SigningKeySize || !bytes.Equal(k, keys[0]) {
			t.Errorf("key %d = %x, want the same %d bytes as key 0 (%x)", i, k, store.SigningKeySize, keys[0])
		}
	}
	other, err := s.SigningKey(ctx, db, "other")
	if err != nil || bytes.Equal(other, keys[0]) {
		t.Errorf("SigningKey(other) = %x, %v, want a different key", other, err)
	}
}
