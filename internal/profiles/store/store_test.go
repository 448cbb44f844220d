package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
	"github.com/marquee-tv/marquee/internal/profiles/store"
)

// changes records the changes a store reports, as the hook sees them.
type changes struct {
	mu   sync.Mutex
	got  []string
	fail error
}

func (c *changes) hook(ctx context.Context, tx *storage.Tx, ch domain.Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	entry := string(ch.Kind) + " " + ch.Profile.ID
	if ch.TitleID != "" {
		entry += " " + ch.TitleID
	}
	c.got = append(c.got, entry)
	return nil
}

func (c *changes) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.got
	c.got = nil
	return out
}

// The contract every domain.Repository implementation meets, run on SQLite
// and on PostgreSQL (MARQUEE_TEST_POSTGRES).
var contract = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, s *store.Store, ch *changes)
}{
	{"CreateAndGet", testCreateAndGet},
	{"ProfileLimit", testProfileLimit},
	{"ConcurrentCreatesKeepTheLimit", testConcurrentCreatesKeepTheLimit},
	{"NamesUniqueCaseInsensitively", testNamesUnique},
	{"ListProfilesOldestFirstAndPaged", testListProfiles},
	{"UpdateIsPartialAndOwned", testUpdate},
	{"DeleteTakesTheMyListAndKeepsOne", testDelete},
	{"MyListIdempotentNewestFirst", testMyList},
	{"MyListHidesTitlesAboveTheLevel", testMyListMaturity},
	{"MyListOwned", testMyListOwned},
	{"MyListCheckRunsOnTheLockedProfile", testMyListCheck},
	{"HookFailureRollsBack", testHookFailureRollsBack},
	{"SeedAccountOnce", testSeedAccountOnce},
}

// TestStoreContract runs each case on one database per backend, emptied
// between cases (creating a PostgreSQL database takes about a second).
func TestStoreContract(t *testing.T) {
	storagetest.ForEach(t, "profiles", store.Migrations, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for _, c := range contract {
			t.Run(c.name, func(t *testing.T) {
				for _, table := range []string{"my_list", "profiles", "profile_accounts"} {
					if _, err := db.Exec(ctx, "DELETE FROM "+table); err != nil {
						t.Fatalf("empty %s: %v", table, err)
					}
				}
				ch := &changes{}
				s := store.New(db, store.Options{OnChange: ch.hook})
				if err := s.CheckSchema(ctx); err != nil {
					t.Fatalf("CheckSchema: %v", err)
				}
				c.fn(t, ctx, s, ch)
			})
		}
	})
}

func TestCheckSchemaRefusesAnUnmigratedDatabase(t *testing.T) {
	db := storagetest.OpenSQLite(t, "profiles", storage.Migrations{})
	if err := store.New(db, store.Options{}).CheckSchema(context.Background()); err == nil {
		t.Error("CheckSchema on a database without the profiles tables = nil, want an error")
	}
}

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 123456000, time.UTC)

func profile(id, account, name string) domain.Profile {
	return domain.Profile{ID: id, AccountID: account, Name: name, Maturity: catalog.LevelAdult, Language: "en", CreatedAt: t0, UpdatedAt: t0}
}

func mustCreate(t *testing.T, ctx context.Context, s *store.Store, p domain.Profile) domain.Profile {
	t.Helper()
	got, err := s.CreateProfile(ctx, p)
	if err != nil {
		t.Fatalf("CreateProfile(%s %q): %v", p.ID, p.Name, err)
	}
	return got
}

func ids(ps []domain.Profile) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func titles(items []domain.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.TitleID
	}
	return out
}

func testCreateAndGet(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	in := profile("p-1", "acct-a", "Zoë")
	in.Maturity, in.Language, in.Avatar = catalog.LevelTeen, "pt-BR", "fox"
	created := mustCreate(t, ctx, s, in)
	if created.Seq <= 0 {
		t.Errorf("CreateProfile Seq = %d, want > 0", created.Seq)
	}
	got, err := s.Profile(ctx, "p-1")
	if err != nil {
		t.Fatalf("Profile(p-1): %v", err)
	}
	if got != created {
		t.Errorf("Profile(p-1) = %+v, want %+v", got, created)
	}
	in.Seq = created.Seq
	if got != in {
		t.Errorf("Profile(p-1) = %+v, want what was created %+v", got, in)
	}
	if _, err := s.Profile(ctx, "p-nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Profile(p-nope) = %v, want ErrNotFound", err)
	}
	if got, want := ch.take(), []string{"profile_created p-1"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

func testProfileLimit(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	for i := range domain.MaxProfiles {
		mustCreate(t, ctx, s, profile(fmt.Sprintf("a-%d", i), "acct-a", fmt.Sprintf("P%d", i)))
	}
	if _, err := s.CreateProfile(ctx, profile("a-6", "acct-a", "Six")); !errors.Is(err, domain.ErrProfileLimit) {
		t.Fatalf("sixth CreateProfile = %v, want ErrProfileLimit", err)
	}
	if _, err := s.Profile(ctx, "a-6"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Profile(a-6) after the refusal = %v, want ErrNotFound", err)
	}
	// Another account is not limited by this one.
	mustCreate(t, ctx, s, profile("b-1", "acct-b", "Six"))
	// Deleting one makes room again.
	if err := s.DeleteProfile(ctx, "acct-a", "a-0", t0); err != nil {
		t.Fatalf("DeleteProfile(a-0): %v", err)
	}
	mustCreate(t, ctx, s, profile("a-6", "acct-a", "Six"))
	if _, err := s.CreateProfile(ctx, profile("a-7", "acct-a", "Seven")); !errors.Is(err, domain.ErrProfileLimit) {
		t.Fatalf("CreateProfile after refilling = %v, want ErrProfileLimit", err)
	}
}

func testConcurrentCreatesKeepTheLimit(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateProfile(ctx, profile(fmt.Sprintf("c-%d", i), "acct-c", fmt.Sprintf("N%d", i)))
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, domain.ErrProfileLimit):
			t.Errorf("concurrent CreateProfile %d = %v, want nil or ErrProfileLimit", i, err)
		}
	}
	ps, _, err := s.ListProfiles(ctx, "acct-c", domain.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ok != domain.MaxProfiles || len(ps) != domain.MaxProfiles {
		t.Errorf("%d concurrent creates: %d succeeded, %d stored; want %d", n, ok, len(ps), domain.MaxProfiles)
	}
}

func testNamesUnique(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	mustCreate(t, ctx, s, profile("p-2", "acct-a", "Sam"))
	ch.take()
	for _, name := range []string{"Alex", "ALEX", "alex"} {
		if _, err := s.CreateProfile(ctx, profile("p-x", "acct-a", name)); !errors.Is(err, domain.ErrNameTaken) {
			t.Errorf("CreateProfile(%q) = %v, want ErrNameTaken", name, err)
		}
	}
	// The same name in another account is fine.
	mustCreate(t, ctx, s, profile("p-3", "acct-b", "alex"))
	// Renaming onto another profile's name is refused; changing one's own
	// case is not.
	_, err := s.UpdateProfile(ctx, "acct-a", "p-2", func(p *domain.Profile) (bool, error) { p.Name = "aLEX"; return true, nil })
	if !errors.Is(err, domain.ErrNameTaken) {
		t.Errorf("rename Sam to aLEX = %v, want ErrNameTaken", err)
	}
	if _, err := s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) { p.Name = "ALEX"; return true, nil }); err != nil {
		t.Errorf("rename Alex to ALEX = %v", err)
	}
	// A refused creation did not use up a slot.
	for i := range 3 {
		mustCreate(t, ctx, s, profile(fmt.Sprintf("p-f%d", i), "acct-a", fmt.Sprintf("F%d", i)))
	}
	if got, want := ch.take(), []string{"profile_created p-3", "profile_updated p-1", "profile_created p-f0", "profile_created p-f1", "profile_created p-f2"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

func testListProfiles(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	want := []string{"z", "a", "m", "b"} // creation order, not id or name order
	for _, id := range want {
		mustCreate(t, ctx, s, profile(id, "acct-a", "Name "+id))
	}
	mustCreate(t, ctx, s, profile("other", "acct-b", "Other"))
	var got []string
	after := int64(0)
	for pages := 0; ; pages++ {
		ps, more, err := s.ListProfiles(ctx, "acct-a", domain.Page{Limit: 3, After: after})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(ps)...)
		if !more {
			if pages != 1 {
				t.Errorf("pages = %d, want 2", pages+1)
			}
			break
		}
		after = ps[len(ps)-1].Seq
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListProfiles(acct-a) = %v, want %v", got, want)
	}
	ps, more, err := s.ListProfiles(ctx, "acct-none", domain.Page{Limit: 10})
	if err != nil || len(ps) != 0 || more {
		t.Errorf("ListProfiles(acct-none) = %v, %v, %v; want empty", ps, more, err)
	}
	ps, _, _ = s.ListProfiles(ctx, "acct-a", domain.Page{Limit: 4})
	if !slices.Equal(ids(ps), want) {
		t.Errorf("ListProfiles exactly one page = %v, want %v", ids(ps), want)
	}
}

func testUpdate(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	created := mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	ch.take()
	t1 := t0.Add(time.Hour)
	got, err := s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) {
		p.Maturity, p.Language, p.UpdatedAt = catalog.LevelKids, "fr", t1
		p.ID, p.AccountID = "hijack", "acct-x" // ignored
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := created
	want.Maturity, want.Language, want.UpdatedAt = catalog.LevelKids, "fr", t1
	if got != want {
		t.Errorf("UpdateProfile = %+v, want %+v", got, want)
	}
	if read, _ := s.Profile(ctx, "p-1"); read != want {
		t.Errorf("Profile after update = %+v, want %+v", read, want)
	}
	// No change: nothing written, no change reported.
	got, err = s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) { return false, nil })
	if err != nil || got != want {
		t.Errorf("no-op UpdateProfile = %+v, %v; want %+v", got, err, want)
	}
	// The update function's error is returned and nothing is written.
	boom := errors.New("boom")
	if _, err := s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) { p.Name = "X"; return true, boom }); !errors.Is(err, boom) {
		t.Errorf("UpdateProfile with a failing update = %v, want boom", err)
	}
	// Another account's profile is not found, and unchanged.
	if _, err := s.UpdateProfile(ctx, "acct-b", "p-1", func(p *domain.Profile) (bool, error) { p.Name = "Mallory"; return true, nil }); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("UpdateProfile by acct-b = %v, want ErrNotFound", err)
	}
	if read, _ := s.Profile(ctx, "p-1"); read != want {
		t.Errorf("Profile after refused updates = %+v, want %+v", read, want)
	}
	if got, want := ch.take(), []string{"profile_updated p-1"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

func testDelete(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	mustCreate(t, ctx, s, profile("p-2", "acct-a", "Sam"))
	add(t, ctx, s, "acct-a", "p-1", "t-1", catalog.RatingG)
	add(t, ctx, s, "acct-a", "p-2", "t-2", catalog.RatingG)
	ch.take()
	if err := s.DeleteProfile(ctx, "acct-b", "p-1", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("DeleteProfile by acct-b = %v, want ErrNotFound", err)
	}
	if err := s.DeleteProfile(ctx, "acct-a", "p-1", t0); err != nil {
		t.Fatalf("DeleteProfile(p-1): %v", err)
	}
	if _, err := s.Profile(ctx, "p-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Profile(p-1) after delete = %v, want ErrNotFound", err)
	}
	if err := s.DeleteProfile(ctx, "acct-a", "p-1", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("second DeleteProfile(p-1) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteProfile(ctx, "acct-a", "p-2", t0); !errors.Is(err, domain.ErrLastProfile) {
		t.Errorf("DeleteProfile of the last profile = %v, want ErrLastProfile", err)
	}
	// A profile created again with the old id starts with an empty list.
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	items, _, err := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10})
	if err != nil || len(items) != 0 {
		t.Errorf("My List of a re-created profile = %v, %v; want empty", titles(items), err)
	}
	if items, _, _ := s.ListMyList(ctx, "acct-a", "p-2", domain.Page{Limit: 10}); !slices.Equal(titles(items), []string{"t-2"}) {
		t.Errorf("My List of p-2 = %v, want [t-2]", titles(items))
	}
	if got, want := ch.take(), []string{"profile_deleted p-1", "profile_created p-1"}; !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

func add(t *testing.T, ctx context.Context, s *store.Store, account, profileID, titleID string, r catalog.Rating) domain.Item {
	t.Helper()
	it, err := s.AddToMyList(ctx, account, profileID, domain.Item{TitleID: titleID, Rating: r, AddedAt: t0}, nil)
	if err != nil {
		t.Fatalf("AddToMyList(%s, %s): %v", profileID, titleID, err)
	}
	return it
}

func testMyList(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	ch.take()
	first, err := s.AddToMyList(ctx, "acct-a", "p-1", domain.Item{TitleID: "t-1", Rating: catalog.RatingR, AddedAt: t0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.TitleID != "t-1" || !first.AddedAt.Equal(t0) || first.Seq <= 0 {
		t.Errorf("AddToMyList = %+v", first)
	}
	// Adding again keeps the original added_at and position.
	again, err := s.AddToMyList(ctx, "acct-a", "p-1", domain.Item{TitleID: "t-1", Rating: catalog.RatingR, AddedAt: t0.Add(time.Hour)}, nil)
	if err != nil || again != first {
		t.Errorf("second AddToMyList = %+v, %v; want %+v", again, err, first)
	}
	for i := 2; i <= 5; i++ {
		add(t, ctx, s, "acct-a", "p-1", fmt.Sprintf("t-%d", i), catalog.RatingPG)
	}
	var got []string
	after := int64(0)
	for {
		items, more, err := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 2, After: after})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, titles(items)...)
		if !more {
			break
		}
		after = items[len(items)-1].Seq
	}
	if want := []string{"t-5", "t-4", "t-3", "t-2", "t-1"}; !slices.Equal(got, want) {
		t.Errorf("ListMyList = %v, want newest first %v", got, want)
	}
	if err := s.RemoveFromMyList(ctx, "acct-a", "p-1", "t-3", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveFromMyList(ctx, "acct-a", "p-1", "t-3", t0); err != nil {
		t.Errorf("removing a title not on the list = %v, want nil", err)
	}
	// Re-adding a removed title puts it first.
	add(t, ctx, s, "acct-a", "p-1", "t-1", catalog.RatingR)
	add(t, ctx, s, "acct-a", "p-1", "t-3", catalog.RatingPG)
	items, _, _ := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10})
	if want := []string{"t-3", "t-5", "t-4", "t-2", "t-1"}; !slices.Equal(titles(items), want) {
		t.Errorf("ListMyList after remove and re-add = %v, want %v", titles(items), want)
	}
	want := []string{"my_list_added p-1 t-1", "my_list_added p-1 t-2", "my_list_added p-1 t-3", "my_list_added p-1 t-4",
		"my_list_added p-1 t-5", "my_list_removed p-1 t-3", "my_list_added p-1 t-3"}
	if got := ch.take(); !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
}

func testMyListMaturity(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	add(t, ctx, s, "acct-a", "p-1", "t-g", catalog.RatingG)
	add(t, ctx, s, "acct-a", "p-1", "t-r", catalog.RatingR)
	add(t, ctx, s, "acct-a", "p-1", "t-14", catalog.RatingTV14)
	level := func(l catalog.Level) {
		t.Helper()
		if _, err := s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) { p.Maturity = l; return true, nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		level catalog.Level
		want  []string
	}{
		{catalog.LevelKids, []string{"t-g"}},
		{catalog.LevelTeen, []string{"t-14", "t-g"}},
		{catalog.LevelAdult, []string{"t-14", "t-r", "t-g"}},
	} {
		level(tt.level)
		items, _, err := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10})
		if err != nil || !slices.Equal(titles(items), tt.want) {
			t.Errorf("ListMyList at %s = %v, %v; want %v", tt.level, titles(items), err, tt.want)
		}
	}
}

func testMyListOwned(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	add(t, ctx, s, "acct-a", "p-1", "t-1", catalog.RatingG)
	ch.take()
	if _, err := s.AddToMyList(ctx, "acct-b", "p-1", domain.Item{TitleID: "t-2", Rating: catalog.RatingG, AddedAt: t0}, nil); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("AddToMyList by acct-b = %v, want ErrNotFound", err)
	}
	if err := s.RemoveFromMyList(ctx, "acct-b", "p-1", "t-1", t0); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("RemoveFromMyList by acct-b = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ListMyList(ctx, "acct-b", "p-1", domain.Page{Limit: 10}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("ListMyList by acct-b = %v, want ErrNotFound", err)
	}
	if _, _, err := s.ListMyList(ctx, "acct-a", "p-none", domain.Page{Limit: 10}); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("ListMyList of a missing profile = %v, want ErrNotFound", err)
	}
	if items, _, _ := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10}); !slices.Equal(titles(items), []string{"t-1"}) {
		t.Errorf("My List after foreign attempts = %v, want [t-1]", titles(items))
	}
	if got := ch.take(); len(got) != 0 {
		t.Errorf("changes = %q, want none", got)
	}
}

func testMyListCheck(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	p := profile("p-1", "acct-a", "Kid")
	p.Maturity = catalog.LevelKids
	mustCreate(t, ctx, s, p)
	var seen catalog.Level
	_, err := s.AddToMyList(ctx, "acct-a", "p-1", domain.Item{TitleID: "t-r", Rating: catalog.RatingR, AddedAt: t0}, func(p domain.Profile) error {
		seen = p.Maturity
		return domain.CheckTitleAllowed(p.Maturity, catalog.RatingR)
	})
	if !errors.Is(err, domain.ErrMaturityRestricted) || seen != catalog.LevelKids {
		t.Errorf("AddToMyList refused by check = %v (check saw %q), want ErrMaturityRestricted", err, seen)
	}
	items, _, _ := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10})
	if len(items) != 0 {
		t.Errorf("My List after a refused add = %v, want empty", titles(items))
	}
}

func testHookFailureRollsBack(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	mustCreate(t, ctx, s, profile("p-1", "acct-a", "Alex"))
	ch.fail = errors.New("outbox full")
	if _, err := s.CreateProfile(ctx, profile("p-2", "acct-a", "Sam")); !errors.Is(err, ch.fail) {
		t.Errorf("CreateProfile with a failing hook = %v", err)
	}
	if _, err := s.AddToMyList(ctx, "acct-a", "p-1", domain.Item{TitleID: "t-1", Rating: catalog.RatingG, AddedAt: t0}, nil); !errors.Is(err, ch.fail) {
		t.Errorf("AddToMyList with a failing hook = %v", err)
	}
	if _, err := s.UpdateProfile(ctx, "acct-a", "p-1", func(p *domain.Profile) (bool, error) { p.Name = "Lex"; return true, nil }); !errors.Is(err, ch.fail) {
		t.Errorf("UpdateProfile with a failing hook = %v", err)
	}
	ch.fail = nil
	if _, err := s.Profile(ctx, "p-2"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Profile(p-2) after a failed create = %v, want ErrNotFound", err)
	}
	if p, _ := s.Profile(ctx, "p-1"); p.Name != "Alex" {
		t.Errorf("name after a failed update = %q, want Alex", p.Name)
	}
	if items, _, _ := s.ListMyList(ctx, "acct-a", "p-1", domain.Page{Limit: 10}); len(items) != 0 {
		t.Errorf("My List after a failed add = %v, want empty", titles(items))
	}
	// The failed create did not use up a slot.
	for i := range domain.MaxProfiles - 1 {
		mustCreate(t, ctx, s, profile(fmt.Sprintf("p-f%d", i), "acct-a", fmt.Sprintf("F%d", i)))
	}
}

func testSeedAccountOnce(t *testing.T, ctx context.Context, s *store.Store, ch *changes) {
	kid := profile("s-2", "", "Kids")
	kid.Maturity = catalog.LevelKids
	seed := []domain.SeedProfile{
		{Profile: profile("s-1", "", "Alex"), MyList: []domain.Item{
			{TitleID: "t-old", Rating: catalog.RatingR, AddedAt: t0.Add(-time.Hour)},
			{TitleID: "t-new", Rating: catalog.RatingG, AddedAt: t0},
		}},
		{Profile: kid},
	}
	var wg sync.WaitGroup
	results := make([]bool, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.SeedAccount(ctx, "acct-demo", seed)
		}()
	}
	wg.Wait()
	seeded := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("SeedAccount: %v", errs[i])
		}
		if results[i] {
			seeded++
		}
	}
	if seeded != 1 {
		t.Errorf("concurrent SeedAccount seeded %d times, want 1", seeded)
	}
	ps, _, _ := s.ListProfiles(ctx, "acct-demo", domain.Page{Limit: 10})
	if !slices.Equal(ids(ps), []string{"s-1", "s-2"}) || ps[0].AccountID != "acct-demo" {
		t.Errorf("seeded profiles = %+v", ps)
	}
	items, _, _ := s.ListMyList(ctx, "acct-demo", "s-1", domain.Page{Limit: 10})
	if !slices.Equal(titles(items), []string{"t-new", "t-old"}) || !items[1].AddedAt.Equal(t0.Add(-time.Hour)) {
		t.Errorf("seeded My List = %+v", items)
	}
	want := []string{"profile_created s-1", "my_list_added s-1 t-old", "my_list_added s-1 t-new", "profile_created s-2"}
	if got := ch.take(); !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	// Once the account has had profiles, seeding leaves it alone, even
	// after the user deleted a seeded one.
	if err := s.DeleteProfile(ctx, "acct-demo", "s-2", t0); err != nil {
		t.Fatal(err)
	}
	if again, err := s.SeedAccount(ctx, "acct-demo", seed); again || err != nil {
		t.Errorf("SeedAccount again = %v, %v; want false, nil", again, err)
	}
	if _, err := s.Profile(ctx, "s-2"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("deleted seed profile came back: %v", err)
	}
	// An account with a profile made by hand is not seeded either.
	mustCreate(t, ctx, s, profile("h-1", "acct-hand", "Me"))
	if again, err := s.SeedAccount(ctx, "acct-hand", seed); again || err != nil {
		t.Errorf("SeedAccount of an account with profiles = %v, %v; want false, nil", again, err)
	}
}
