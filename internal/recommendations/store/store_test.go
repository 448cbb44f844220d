package store_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
	"github.com/marquee-tv/marquee/internal/recommendations/store"
)

// The contract of the projection's repository, run on SQLite and on
// PostgreSQL (MARQUEE_TEST_POSTGRES).
var contract = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store)
}{
	{"TitleRoundTrip", testTitleRoundTrip},
	{"OlderTitleEventIgnored", testOlderTitleEventIgnored},
	{"ViewingCounts", testViewingCounts},
	{"CoViewsMatchReferenceSimilarity", testCoViewsMatchReference},
	{"CoViewsPerSeedLimit", testCoViewsPerSeedLimit},
	{"HistoryNewestFirst", testHistoryNewestFirst},
	{"OutOfOrderProgressAndFinished", testOutOfOrderProgress},
	{"ActivityWindowAndPrune", testActivityWindowAndPrune},
	{"ConcurrentEventsOfOneProfile", testConcurrentEventsOfOneProfile},
}

func TestStoreContract(t *testing.T) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			storagetest.ForEach(t, "recommendations", store.Migrations, func(t *testing.T, db *storage.DB) {
				s := store.New(db)
				ctx := context.Background()
				if err := s.CheckSchema(ctx); err != nil {
					t.Fatal(err)
				}
				c.fn(t, ctx, db, s)
			})
		})
	}
}

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func saveTitle(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, ti domain.Title) bool {
	t.Helper()
	var wrote bool
	err := db.InTx(ctx, func(tx *storage.Tx) (err error) {
		wrote, err = s.ApplyTitle(ctx, tx, ti)
		return err
	})
	if err != nil {
		t.Fatalf("ApplyTitle(%s): %v", ti.ID, err)
	}
	return wrote
}

func apply(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store, ev domain.ViewingEvent) domain.Effect {
	t.Helper()
	var eff domain.Effect
	err := db.InTx(ctx, func(tx *storage.Tx) (err error) {
		_, eff, err = s.ApplyViewing(ctx, tx, ev)
		return err
	})
	if err != nil {
		t.Fatalf("ApplyViewing(%+v): %v", ev, err)
	}
	return eff
}

func testTitleRoundTrip(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	want := domain.Title{
		ID: "t-1", Name: "Night Train", Kind: "series", ArtworkURL: "/api/v1/titles/t-1/artwork",
		Rating: "TV-14", Genres: []string{"thriller", "drama"}, Year: 2024,
		AvailableFrom: t0.Add(-time.Hour), AvailableUntil: t0.Add(48 * time.Hour), Available: true,
		LastEpisodeID: "t-1-s2e8", Version: t0.Add(123456 * time.Microsecond),
	}
	if !saveTitle(t, ctx, db, s, want) {
		t.Fatal("ApplyTitle of a new title = false, want true")
	}
	got, ok, err := s.Title(ctx, "t-1")
	if err != nil || !ok {
		t.Fatalf("Title(t-1) = %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Title(t-1) = %+v, want %+v", got, want)
	}
	noWindow := domain.Title{ID: "t-2", Name: "Plain", Kind: "movie", Rating: "G", Version: t0}
	saveTitle(t, ctx, db, s, noWindow)
	all, err := s.Titles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("Titles() = %d titles, want 2", len(all))
	}
	for _, got := range all {
		if got.ID == "t-2" && !reflect.DeepEqual(got, noWindow) {
			t.Errorf("Titles() t-2 = %+v, want %+v", got, noWindow)
		}
	}
	if _, ok, err := s.Title(ctx, "nope"); ok || err != nil {
		t.Errorf("Title(nope) = %v, %v; want false, nil", ok, err)
	}
}

func testOlderTitleEventIgnored(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	newer := domain.Title{ID: "t-1", Name: "New name", Kind: "movie", Rating: "R", Version: t0.Add(time.Second)}
	older := domain.Title{ID: "t-1", Name: "Old name", Kind: "movie", Rating: "G", Version: t0}
	saveTitle(t, ctx, db, s, newer)
	if saveTitle(t, ctx, db, s, older) {
		t.Error("ApplyTitle(older event) = true, want false")
	}
	got, _, _ := s.Title(ctx, "t-1")
	if got.Name != "New name" || got.Rating != "R" {
		t.Errorf("after an older event, title = %q %s; want the newer one", got.Name, got.Rating)
	}
	same := newer
	same.Name = "Same time, later write"
	if !saveTitle(t, ctx, db, s, same) {
		t.Error("ApplyTitle(event of the same time) = false, want true")
	}
}

func testViewingCounts(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	ev := domain.ViewingEvent{Kind: domain.Started, AccountID: "a", ProfileID: "p1", TitleID: "x", At: t0}
	if eff := apply(t, ctx, db, s, ev); eff != (domain.Effect{NewViewer: true, Play: true}) {
		t.Errorf("first start effect = %+v", eff)
	}
	ev.Kind, ev.Position, ev.Duration, ev.At = domain.Progress, 60, 1000, t0.Add(time.Minute)
	if eff := apply(t, ctx, db, s, ev); eff != (domain.Effect{}) {
		t.Errorf("progress effect = %+v, want none", eff)
	}
	ev.Kind, ev.At = domain.Started, t0.Add(domain.PlayGap+time.Hour)
	if eff := apply(t, ctx, db, s, ev); eff != (domain.Effect{Play: true}) {
		t.Errorf("restart after PlayGap effect = %+v, want a play", eff)
	}
	apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Progress, ProfileID: "p2", TitleID: "x", Position: 5, At: t0})
	stats, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stats["x"], (store.Stats{Viewers: 2, Plays: 3}); got != want {
		t.Errorf("Stats()[x] = %+v, want %+v", got, want)
	}
	v, ok, err := s.View(ctx, "p1", "x")
	if err != nil || !ok {
		t.Fatalf("View(p1, x) = %v, %v", ok, err)
	}
	if v.Plays != 2 || v.Position != 60 || v.Duration != 1000 || v.AccountID != "a" || !v.FirstAt.Equal(t0) {
		t.Errorf("View(p1, x) = %+v", v)
	}
	acts, err := s.Activity(ctx, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	byBucket := map[time.Time]int{}
	for _, a := range acts {
		byBucket[a.Bucket] += a.Plays
	}
	want := map[time.Time]int{t0: 2, domain.Bucket(t0.Add(domain.PlayGap + time.Hour)): 1}
	if !reflect.DeepEqual(byBucket, want) {
		t.Errorf("Activity() plays by bucket = %v, want %v", byBucket, want)
	}
}

// matrix is a hand-made profile × title view matrix.
var matrix = map[string][]string{
	"p1": {"a", "b", "c"},
	"p2": {"a", "b"},
	"p3": {"b", "c", "d"},
	"p4": {"a", "d"},
	"p5": {"e"},
}

func testCoViewsMatchReference(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	profiles := slices.Sorted(mapsKeys(matrix))
	at := t0
	for _, p := range profiles {
		for _, title := range matrix[p] {
			at = at.Add(time.Minute)
			apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Started, ProfileID: p, TitleID: title, At: at})
			// A repeat of the same title adds nothing to the vectors.
			apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Progress, ProfileID: p, TitleID: title, At: at.Add(time.Second)})
		}
	}
	ref := domain.Similarities(matrix)
	seeds := []string{"a", "b", "c", "d", "e"}
	co, err := s.CoViews(ctx, seeds, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]float64{}
	for _, c := range co {
		if got[c.Seed] == nil {
			got[c.Seed] = map[string]float64{}
		}
		got[c.Seed][c.Other] = c.Similarity()
	}
	if len(got) != len(ref) {
		t.Errorf("CoViews gives similarities of %d titles, reference %d: %v vs %v", len(got), len(ref), got, ref)
	}
	for a, row := range ref {
		for b, want := range row {
			if g := got[a][b]; math.Abs(g-want) > 1e-12 {
				t.Errorf("sim(%s, %s) from the store = %v, want %v", a, b, g, want)
			}
		}
		if len(got[a]) != len(row) {
			t.Errorf("store has %d neighbours of %s, want %d", len(got[a]), a, len(row))
		}
	}
	// Within a seed the rows come most similar first.
	for _, seed := range seeds {
		var sims []float64
		for _, c := range co {
			if c.Seed == seed {
				sims = append(sims, c.Similarity())
			}
		}
		if !slices.IsSortedFunc(sims, func(x, y float64) int { return -cmpFloat(x, y) }) {
			t.Errorf("CoViews(%s) similarities %v, want descending", seed, sims)
		}
	}
}

func testCoViewsPerSeedLimit(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	// Everyone who watched "hub" watched one other title; "niche" has one
	// viewer (cosine 1/sqrt(k)), "common" has several (higher co-count
	// but lower cosine).
	at := t0
	view := func(p, title string) {
		at = at.Add(time.Second)
		apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Started, ProfileID: p, TitleID: title, At: at})
	}
	view("p1", "hub")
	view("p1", "niche")
	for i := range 4 {
		p := fmt.Sprintf("q%d", i)
		view(p, "common")
		if i < 2 {
			view(p, "hub")
		}
	}
	co, err := s.CoViews(ctx, []string{"hub"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// hub: 3 viewers. niche: 1 viewer, 1 both → 1/sqrt(3) = 0.577.
	// common: 4 viewers, 2 both → 2/sqrt(12) = 0.577... equal; the id breaks
	// the tie.
	if len(co) != 1 || co[0].Other != "common" {
		t.Fatalf("CoViews(hub, 1) = %+v, want the single most similar, common (tie broken by id)", co)
	}
	view("p9", "niche")
	view("p9", "hub") // niche: 2 both of 2 viewers; hub 4 viewers → 2/sqrt(8) = 0.707
	co, err = s.CoViews(ctx, []string{"hub"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(co) != 1 || co[0].Other != "niche" || co[0].Both != 2 || co[0].SeedViewers != 4 || co[0].OtherViewers != 2 {
		t.Fatalf("CoViews(hub, 1) = %+v, want niche with counts 2, 4, 2", co)
	}
	if co, err := s.CoViews(ctx, nil, 5); err != nil || len(co) != 0 {
		t.Errorf("CoViews(no seeds) = %v, %v", co, err)
	}
}

func testHistoryNewestFirst(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	for i, title := range []string{"a", "b", "c"} {
		apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Started, ProfileID: "p", TitleID: title, At: t0.Add(time.Duration(i) * time.Hour)})
	}
	apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Progress, ProfileID: "p", TitleID: "a", Position: 10, At: t0.Add(5 * time.Hour)})
	apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Started, ProfileID: "other", TitleID: "z", At: t0})
	h, err := s.History(ctx, "p", 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range h {
		ids = append(ids, v.TitleID)
	}
	if want := []string{"a", "c"}; !slices.Equal(ids, want) {
		t.Errorf("History(p, 2) = %v, want %v", ids, want)
	}
	if h, err := s.History(ctx, "nobody", 10); err != nil || len(h) != 0 {
		t.Errorf("History(nobody) = %v, %v", h, err)
	}
}

func testOutOfOrderProgress(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	saveTitle(t, ctx, db, s, domain.Title{ID: "m", Kind: "movie", Rating: "PG", Version: t0})
	ev := domain.ViewingEvent{ProfileID: "p", TitleID: "m", Duration: 100}
	for _, e := range []struct {
		kind domain.EventKind
		pos  int
		at   time.Duration
	}{
		{domain.Started, 0, 0},
		{domain.Progress, 50, 2 * time.Minute},
		{domain.Progress, 20, time.Minute}, // late: changes nothing
	} {
		ev.Kind, ev.Position, ev.At = e.kind, e.pos, t0.Add(e.at)
		apply(t, ctx, db, s, ev)
	}
	v, _, _ := s.View(ctx, "p", "m")
	if v.Position != 50 || v.Finished || !v.LastAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after a late progress event, view = %+v; want position 50 at +2m, not finished", v)
	}
	// A late completed event still finishes it, and finished stays.
	ev.Kind, ev.Position, ev.At = domain.Completed, 100, t0.Add(90*time.Second)
	apply(t, ctx, db, s, ev)
	ev.Kind, ev.Position, ev.At = domain.Started, 0, t0.Add(24*time.Hour)
	apply(t, ctx, db, s, ev)
	v, _, _ = s.View(ctx, "p", "m")
	if !v.Finished || v.Position != 0 || v.Plays != 2 {
		t.Errorf("after completed then a rewatch, view = %+v; want finished, position 0, 2 plays", v)
	}
}

func testActivityWindowAndPrune(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	for i, d := range []time.Duration{0, -30 * time.Hour, -200 * time.Hour} {
		apply(t, ctx, db, s, domain.ViewingEvent{Kind: domain.Started, ProfileID: fmt.Sprintf("p%d", i), TitleID: "x", At: t0.Add(d)})
	}
	acts, err := s.Activity(ctx, t0.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 {
		t.Errorf("Activity(since -48h) = %+v, want the 2 buckets within", acts)
	}
	n, err := s.PruneActivity(ctx, t0.Add(-24*time.Hour))
	if err != nil || n != 2 {
		t.Errorf("PruneActivity(-24h) = %d, %v; want 2 deleted", n, err)
	}
	acts, _ = s.Activity(ctx, t0.Add(-1000*time.Hour))
	if len(acts) != 1 || !acts[0].Bucket.Equal(t0) {
		t.Errorf("after pruning, Activity = %+v, want only the bucket at %v", acts, t0)
	}
}

// testConcurrentEventsOfOneProfile applies first views of many titles by
// one profile from concurrent transactions: no co-view may be lost.
func testConcurrentEventsOfOneProfile(t *testing.T, ctx context.Context, db *storage.DB, s *store.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := domain.ViewingEvent{Kind: domain.Started, ProfileID: "p", TitleID: fmt.Sprintf("t%d", i), At: t0.Add(time.Duration(i) * time.Second)}
			errs <- db.InTx(ctx, func(tx *storage.Tx) error {
				_, _, err := s.ApplyViewing(ctx, tx, ev)
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent ApplyViewing: %v", err)
		}
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("t%d", i))
	}
	co, err := s.CoViews(ctx, ids, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(co) != n*(n-1) {
		t.Fatalf("CoViews = %d pairs, want %d", len(co), n*(n-1))
	}
	for _, c := range co {
		if c.Both != 1 || c.Similarity() != 1 {
			t.Errorf("pair %s-%s = %+v, want 1 co-viewer, similarity 1", c.Seed, c.Other, c)
		}
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
