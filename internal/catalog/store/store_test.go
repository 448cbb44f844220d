package store_test

import (
	"cmp"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/demo"
	"github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/catalog/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// The contract every domain.Repository implementation meets, run on SQLite
// and on PostgreSQL (MARQUEE_TEST_POSTGRES).
var contract = []struct {
	name string
	fn   func(t *testing.T, ctx context.Context, s *store.Store)
}{
	{"SaveAndGetMovie", testSaveAndGetMovie},
	{"SaveReplacesSeries", testSaveReplacesSeries},
	{"NotFound", testNotFound},
	{"SaveRefusesUnknownGenre", testSaveRefusesUnknownGenre},
	{"SaveRefusesEpisodeOfAnotherTitle", testSaveRefusesEpisodeOfAnotherTitle},
	{"BrowseOrderAndPaging", testBrowseOrderAndPaging},
	{"PagingStableUnderWrites", testPagingStableUnderWrites},
	{"GenreAndKindFilters", testGenreAndKindFilters},
	{"MaturityFilter", testMaturityFilter},
	{"SearchByWordOfName", testSearchByWordOfName},
	{"SearchRanksNameFirst", testSearchRanksNameFirst},
	{"SearchPaging", testSearchPaging},
	{"SearchFilters", testSearchFilters},
	{"BatchGet", testBatchGet},
	{"GenreCounts", testGenreCounts},
	{"GenreRenameRefreshesSearch", testGenreRenameRefreshesSearch},
	{"SeedIfEmptyIsIdempotent", testSeedIfEmptyIsIdempotent},
	{"ConcurrentSeedsSeedOnce", testConcurrentSeedsSeedOnce},
}

func TestStoreContract(t *testing.T) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) {
			storagetest.ForEach(t, "catalog", store.Migrations, func(t *testing.T, db *storage.DB) {
				c.fn(t, context.Background(), store.New(db, store.Options{}))
			})
		})
	}
}

func TestOnTitleSavedRunsInTheTransaction(t *testing.T) {
	storagetest.ForEach(t, "catalog", store.Migrations, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		var saved []string
		fail := false
		s := store.New(db, store.Options{OnTitleSaved: func(ctx context.Context, tx *storage.Tx, title domain.Title) error {
			// The title is visible inside the transaction.
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM titles WHERE id = $1", title.ID).Scan(&n); err != nil || n != 1 {
				t.Errorf("inside the hook, title %s count = %d, %v; want 1", title.ID, n, err)
			}
			if fail {
				return errors.New("outbox full")
			}
			saved = append(saved, title.ID)
			return nil
		}})
		mustGenres(t, ctx, s)
		mustSave(t, ctx, s, movie("t-1", "Alpha", "drama", domain.RatingPG))
		fail = true
		if err := s.SaveTitle(ctx, movie("t-2", "Beta", "drama", domain.RatingPG)); err == nil {
			t.Fatal("SaveTitle with a failing hook = nil, want error")
		}
		if _, err := s.Title(ctx, "t-2"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Title(t-2) after a failed hook = %v, want ErrNotFound (rolled back)", err)
		}
		if !slices.Equal(saved, []string{"t-1"}) {
			t.Errorf("hook saw %q, want [t-1]", saved)
		}
	})
}

var (
	opens = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ends  = time.Date(2030, 6, 1, 12, 30, 0, 0, time.UTC)
)

var testGenres = []domain.Genre{
	{ID: "drama", Name: "Drama"},
	{ID: "comedy", Name: "Comedy"},
	{ID: "sci-fi", Name: "Sci-Fi"},
}

func mustGenres(t *testing.T, ctx context.Context, s *store.Store) {
	t.Helper()
	for _, g := range testGenres {
		if err := s.SaveGenre(ctx, g); err != nil {
			t.Fatalf("SaveGenre(%s): %v", g.ID, err)
		}
	}
}

func mustSave(t *testing.T, ctx context.Context, s *store.Store, titles ...domain.Title) {
	t.Helper()
	for _, title := range titles {
		if err := s.SaveTitle(ctx, title); err != nil {
			t.Fatalf("SaveTitle(%s): %v", title.ID, err)
		}
	}
}

func mustSeed(t *testing.T, ctx context.Context, s *store.Store) []domain.Title {
	t.Helper()
	titles := demo.Titles()
	seeded, err := s.SeedIfEmpty(ctx, demo.Genres(), titles)
	if err != nil || !seeded {
		t.Fatalf("SeedIfEmpty = %v, %v; want true, nil", seeded, err)
	}
	return titles
}

func movie(id, name, genre string, r domain.Rating) domain.Title {
	return domain.Title{
		ID: id, Name: name, Kind: domain.KindMovie, Synopsis: "A film called " + name + ".",
		Year: 2001, Genres: []string{genre}, Rating: r, Duration: 100 * time.Minute,
		MediaAssetID: "demo-1", AvailableFrom: opens,
	}
}

func series(id, name string, seasons, episodes int) domain.Title {
	t := movie(id, name, "drama", domain.RatingTV14)
	t.Kind, t.MediaAssetID, t.Duration = domain.KindSeries, "", 30*time.Minute
	for s := 1; s <= seasons; s++ {
		se := domain.Season{Number: s, Name: "Season " + string(rune('0'+s))}
		for e := 1; e <= episodes; e++ {
			se.Episodes = append(se.Episodes, domain.Episode{
				ID: id + "-s" + string(rune('0'+s)) + "e" + string(rune('0'+e)), Number: e,
				Name: "Episode " + string(rune('0'+e)), Synopsis: "Things happen.",
				Duration: 29 * time.Minute, MediaAssetID: "demo-2",
			})
		}
		t.Seasons = append(t.Seasons, se)
	}
	return t
}

func ids(titles []domain.Title) []string {
	out := make([]string, len(titles))
	for i, t := range titles {
		out[i] = t.ID
	}
	return out
}

// browseOrder sorts titles the way the catalog browses them.
func browseOrder(titles []domain.Title) []domain.Title {
	out := slices.Clone(titles)
	slices.SortFunc(out, func(a, b domain.Title) int {
		return cmp.Or(strings.Compare(domain.SortKey(a.Name), domain.SortKey(b.Name)), strings.Compare(a.ID, b.ID))
	})
	return out
}

func listAll(t *testing.T, ctx context.Context, s *store.Store, f domain.Filter, size int32) []domain.Title {
	t.Helper()
	var all []domain.Title
	token := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		q, err := domain.NewListQuery(f, size, token)
		if err != nil {
			t.Fatalf("NewListQuery(token %q): %v", token, err)
		}
		page, err := s.ListTitles(ctx, q)
		if err != nil {
			t.Fatalf("ListTitles: %v", err)
		}
		if len(page.Titles) > q.Limit {
			t.Fatalf("ListTitles returned %d titles, limit %d", len(page.Titles), q.Limit)
		}
		all = append(all, page.Titles...)
		if page.NextPageToken == "" {
			return all
		}
		if len(page.Titles) == 0 {
			t.Fatal("empty page with a next page token")
		}
		token = page.NextPageToken
	}
}

func searchAll(t *testing.T, ctx context.Context, s *store.Store, text string, f domain.Filter, size int32) []domain.Title {
	t.Helper()
	var all []domain.Title
	token := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		q, err := domain.NewSearchQuery(text, f, size, token)
		if err != nil {
			t.Fatalf("NewSearchQuery(%q, token %q): %v", text, token, err)
		}
		page, err := s.SearchTitles(ctx, q)
		if err != nil {
			t.Fatalf("SearchTitles(%q): %v", text, err)
		}
		all = append(all, page.Titles...)
		if page.NextPageToken == "" {
			return all
		}
		token = page.NextPageToken
	}
}

func adult() domain.Filter { return domain.Filter{Level: domain.LevelAdult} }

func testSaveAndGetMovie(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	want := movie("t-1", "The Silent Harbor", "drama", domain.RatingPG13)
	want.Genres = []string{"sci-fi", "drama"} // primary first, not alphabetical
	want.Rentable = true
	want.AvailableUntil = ends
	mustSave(t, ctx, s, want)
	got, err := s.Title(ctx, "t-1")
	if err != nil {
		t.Fatalf("Title(t-1): %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Title(t-1) = %+v, want %+v", got, want)
	}
	// An open-ended window round-trips as the zero time.
	want.AvailableUntil = time.Time{}
	want.Rentable = false
	mustSave(t, ctx, s, want)
	if got, _ := s.Title(ctx, "t-1"); !reflect.DeepEqual(got, want) {
		t.Errorf("Title(t-1) after update = %+v, want %+v", got, want)
	}
}

func testSaveReplacesSeries(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	want := series("t-2", "Greywater", 2, 3)
	mustSave(t, ctx, s, want)
	got, err := s.Title(ctx, "t-2")
	if err != nil {
		t.Fatalf("Title(t-2): %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Title(t-2) = %+v, want %+v", got, want)
	}
	smaller := series("t-2", "Greywater Returns", 1, 2)
	mustSave(t, ctx, s, smaller)
	got, _ = s.Title(ctx, "t-2")
	if !reflect.DeepEqual(got, smaller) {
		t.Errorf("Title(t-2) after replacing = %+v, want %+v", got, smaller)
	}
}

func testNotFound(t *testing.T, ctx context.Context, s *store.Store) {
	if _, err := s.Title(ctx, "t-404"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Title(t-404) = %v, want ErrNotFound", err)
	}
	if got, err := s.Titles(ctx, []string{"t-404"}); err != nil || len(got) != 0 {
		t.Errorf("Titles([t-404]) = %v, %v; want none", got, err)
	}
}

func testSaveRefusesUnknownGenre(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	m := movie("t-1", "Alpha", "drama", domain.RatingG)
	m.Genres = []string{"drama", "western"}
	err := s.SaveTitle(ctx, m)
	fields := domain.FieldErrors(err)
	if !errors.Is(err, domain.ErrInvalidArgument) || len(fields) != 1 || fields[0].Field != "genres[1]" {
		t.Errorf("SaveTitle with genre western = %v, want invalid genres[1]", err)
	}
	if _, err := s.Title(ctx, "t-1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("Title(t-1) after a refused save = %v, want ErrNotFound", err)
	}
	if err := s.SaveTitle(ctx, domain.Title{ID: "bad id"}); !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("SaveTitle(invalid title) = %v, want an invalid argument", err)
	}
}

func testSaveRefusesEpisodeOfAnotherTitle(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	mustSave(t, ctx, s, series("t-1", "One", 1, 2))
	other := series("t-2", "Two", 1, 2)
	other.Seasons[0].Episodes[1].ID = "t-1-s1e1"
	err := s.SaveTitle(ctx, other)
	if !errors.Is(err, domain.ErrInvalidArgument) {
		t.Errorf("SaveTitle with another title's episode id = %v, want an invalid argument", err)
	}
	if got, _ := s.Title(ctx, "t-1"); len(got.Seasons) != 1 || len(got.Seasons[0].Episodes) != 2 {
		t.Errorf("Title(t-1) after the conflict = %+v, want it unchanged", got)
	}
}

func testBrowseOrderAndPaging(t *testing.T, ctx context.Context, s *store.Store) {
	titles := mustSeed(t, ctx, s)
	want := ids(browseOrder(titles))
	for _, size := range []int32{1, 7, 20, 100} {
		got := ids(listAll(t, ctx, s, adult(), size))
		if !slices.Equal(got, want) {
			t.Errorf("paging by %d = %q, want %q", size, got, want)
		}
	}
	// Lists leave seasons out but carry genres.
	q, _ := domain.NewListQuery(adult(), 0, "")
	page, err := s.ListTitles(ctx, q)
	if err != nil {
		t.Fatalf("ListTitles: %v", err)
	}
	if len(page.Titles) != domain.DefaultPageSize {
		t.Errorf("first page has %d titles, want %d", len(page.Titles), domain.DefaultPageSize)
	}
	for _, title := range page.Titles {
		if len(title.Seasons) != 0 || len(title.Genres) == 0 {
			t.Errorf("listed title %s has %d seasons and genres %v; want no seasons, some genres", title.ID, len(title.Seasons), title.Genres)
		}
	}
}

func testPagingStableUnderWrites(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	var originals []domain.Title
	for _, name := range []string{"Bravo", "Charlie", "delta", "Echo", "Foxtrot", "Golf", "hotel", "India"} {
		originals = append(originals, movie("t-"+strings.ToLower(name), name, "drama", domain.RatingPG))
	}
	mustSave(t, ctx, s, originals...)
	q, _ := domain.NewListQuery(adult(), 3, "")
	first, err := s.ListTitles(ctx, q)
	if err != nil {
		t.Fatalf("ListTitles: %v", err)
	}
	// Between pages: one title sorts before the cursor, one after, one on
	// the page already seen is renamed to sort after the cursor.
	mustSave(t, ctx, s, movie("t-alpha", "Alpha", "drama", domain.RatingPG), movie("t-zulu", "Zulu", "drama", domain.RatingPG))
	got := ids(first.Titles)
	token := first.NextPageToken
	for token != "" {
		q, err := domain.NewListQuery(adult(), 3, token)
		if err != nil {
			t.Fatalf("NewListQuery: %v", err)
		}
		page, err := s.ListTitles(ctx, q)
		if err != nil {
			t.Fatalf("ListTitles: %v", err)
		}
		got = append(got, ids(page.Titles)...)
		token = page.NextPageToken
	}
	want := append(ids(browseOrder(originals)), "t-zulu")
	if !slices.Equal(got, want) {
		t.Errorf("paging across inserts = %q, want %q (no duplicates, no gaps, new title after the cursor included)", got, want)
	}
}

func testGenreAndKindFilters(t *testing.T, ctx context.Context, s *store.Store) {
	titles := mustSeed(t, ctx, s)
	for _, g := range demo.Genres() {
		var want []domain.Title
		for _, title := range titles {
			if slices.Contains(title.Genres, g.ID) {
				want = append(want, title)
			}
		}
		got := listAll(t, ctx, s, domain.Filter{Genre: g.ID, Level: domain.LevelAdult}, 9)
		if !slices.Equal(ids(got), ids(browseOrder(want))) {
			t.Errorf("genre %s = %q, want %q", g.ID, ids(got), ids(browseOrder(want)))
		}
	}
	for _, kind := range []domain.Kind{domain.KindMovie, domain.KindSeries} {
		var want []domain.Title
		for _, title := range titles {
			if title.Kind == kind {
				want = append(want, title)
			}
		}
		got := listAll(t, ctx, s, domain.Filter{Kind: kind, Level: domain.LevelAdult}, 11)
		if len(want) == 0 || !slices.Equal(ids(got), ids(browseOrder(want))) {
			t.Errorf("kind %s = %q, want %q", kind, ids(got), ids(browseOrder(want)))
		}
	}
	if got := listAll(t, ctx, s, domain.Filter{Genre: "no-such-genre", Level: domain.LevelAdult}, 10); len(got) != 0 {
		t.Errorf("unknown genre lists %q, want nothing", ids(got))
	}
}

func testMaturityFilter(t *testing.T, ctx context.Context, s *store.Store) {
	titles := mustSeed(t, ctx, s)
	for _, level := range []domain.Level{domain.LevelKids, domain.LevelTeen, domain.LevelAdult, "bogus"} {
		var want []domain.Title
		for _, title := range titles {
			if domain.Allows(level, title.Rating) {
				want = append(want, title)
			}
		}
		got := listAll(t, ctx, s, domain.Filter{Level: level}, 13)
		if !slices.Equal(ids(got), ids(browseOrder(want))) {
			t.Errorf("level %q = %q, want %q", level, ids(got), ids(browseOrder(want)))
		}
	}
}

func testSearchByWordOfName(t *testing.T, ctx context.Context, s *store.Store) {
	titles := mustSeed(t, ctx, s)
	for _, title := range titles[:12] {
		words := strings.Fields(title.Name)
		word := words[len(words)-1] // e.g. "Harbor" of "The Silent Harbor"
		for _, text := range []string{word, strings.ToUpper(word), word[:3]} {
			got := searchAll(t, ctx, s, text, adult(), 100)
			if !slices.Contains(ids(got), title.ID) {
				t.Errorf("search %q = %q, want it to find %s %q", text, ids(got), title.ID, title.Name)
			}
		}
		got := searchAll(t, ctx, s, title.Name, adult(), 100)
		if len(got) == 0 || got[0].ID != title.ID {
			t.Errorf("search for the full name %q = %q, want %s first", title.Name, ids(got), title.ID)
		}
	}
	if got := searchAll(t, ctx, s, "zzzyzzx", adult(), 10); len(got) != 0 {
		t.Errorf("search for a word in no title = %q, want nothing", ids(got))
	}
	// Genre names are searchable.
	got := searchAll(t, ctx, s, "documentary", adult(), 100)
	for _, title := range got {
		if !slices.Contains(title.Genres, "documentary") && !strings.Contains(strings.ToLower(title.Synopsis+title.Name), "documentary") {
			t.Errorf("search documentary found %s %v, which neither is nor mentions one", title.ID, title.Genres)
		}
	}
	if len(got) == 0 {
		t.Error("search documentary found nothing")
	}
}

func testSearchRanksNameFirst(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	inSynopsis := movie("t-a", "Quiet Fields", "drama", domain.RatingPG)
	inSynopsis.Synopsis = "A farmer finds an old lantern in the barn and a long story begins to unfold slowly."
	inName := movie("t-b", "The Lantern", "drama", domain.RatingPG)
	inName.Synopsis = "A quiet story."
	mustSave(t, ctx, s, inSynopsis, inName)
	got := searchAll(t, ctx, s, "lantern", adult(), 10)
	if want := []string{"t-b", "t-a"}; !slices.Equal(ids(got), want) {
		t.Errorf("search lantern = %q, want %q (name match first)", ids(got), want)
	}
	// Every word must match.
	if got := searchAll(t, ctx, s, "lantern farmer", adult(), 10); !slices.Equal(ids(got), []string{"t-a"}) {
		t.Errorf("search lantern farmer = %q, want [t-a]", ids(got))
	}
}

func testSearchPaging(t *testing.T, ctx context.Context, s *store.Store) {
	mustSeed(t, ctx, s)
	whole := searchAll(t, ctx, s, "they", adult(), 100) // a word of most synopses
	if len(whole) < 20 {
		t.Fatalf("search they found %d titles, want many", len(whole))
	}
	for _, size := range []int32{1, 3, 7} {
		got := searchAll(t, ctx, s, "they", adult(), size)
		if !slices.Equal(ids(got), ids(whole)) {
			t.Errorf("search paged by %d = %q, want %q", size, ids(got), ids(whole))
		}
	}
}

func testSearchFilters(t *testing.T, ctx context.Context, s *store.Store) {
	mustSeed(t, ctx, s)
	all := searchAll(t, ctx, s, "they", adult(), 100)
	kids := searchAll(t, ctx, s, "they", domain.Filter{Level: domain.LevelKids}, 100)
	var want []string
	for _, title := range all {
		if domain.Allows(domain.LevelKids, title.Rating) {
			want = append(want, title.ID)
		}
	}
	if len(want) == 0 || !slices.Equal(ids(kids), want) {
		t.Errorf("kids search = %q, want %q", ids(kids), want)
	}
	series := searchAll(t, ctx, s, "they", domain.Filter{Kind: domain.KindSeries, Genre: "drama", Level: domain.LevelAdult}, 100)
	for _, title := range series {
		if title.Kind != domain.KindSeries || !slices.Contains(title.Genres, "drama") {
			t.Errorf("search for drama series found %s (%s, %v)", title.ID, title.Kind, title.Genres)
		}
	}
}

func testBatchGet(t *testing.T, ctx context.Context, s *store.Store) {
	mustSeed(t, ctx, s)
	req := []string{"t-0010", "t-9999", "t-0003", "t-0010", "t-0001"}
	got, err := s.Titles(ctx, req)
	if err != nil {
		t.Fatalf("Titles: %v", err)
	}
	if want := []string{"t-0010", "t-0003", "t-0010", "t-0001"}; !slices.Equal(ids(got), want) {
		t.Errorf("Titles(%q) = %q, want %q", req, ids(got), want)
	}
	for _, title := range got {
		if len(title.Genres) == 0 || len(title.Seasons) != 0 {
			t.Errorf("batch title %s: genres %v, %d seasons; want genres, no seasons", title.ID, title.Genres, len(title.Seasons))
		}
	}
	if got, err := s.Titles(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("Titles(nil) = %v, %v; want none", got, err)
	}
}

func testGenreCounts(t *testing.T, ctx context.Context, s *store.Store) {
	titles := mustSeed(t, ctx, s)
	if err := s.SaveGenre(ctx, domain.Genre{ID: "western", Name: "Western"}); err != nil {
		t.Fatalf("SaveGenre: %v", err)
	}
	want := map[string]int{"western": 0}
	for _, title := range titles {
		for _, g := range title.Genres {
			want[g]++
		}
	}
	got, err := s.Genres(ctx)
	if err != nil {
		t.Fatalf("Genres: %v", err)
	}
	if len(got) != len(demo.Genres())+1 {
		t.Errorf("Genres() has %d genres, want %d", len(got), len(demo.Genres())+1)
	}
	for i, g := range got {
		if g.TitleCount != want[g.ID] {
			t.Errorf("genre %s count = %d, want %d", g.ID, g.TitleCount, want[g.ID])
		}
		if i > 0 && strings.ToLower(got[i-1].Name) > strings.ToLower(g.Name) {
			t.Errorf("genres out of order: %s before %s", got[i-1].Name, g.Name)
		}
	}
}

func testGenreRenameRefreshesSearch(t *testing.T, ctx context.Context, s *store.Store) {
	mustGenres(t, ctx, s)
	mustSave(t, ctx, s, movie("t-1", "Alpha", "comedy", domain.RatingPG), movie("t-2", "Beta", "drama", domain.RatingPG))
	if got := searchAll(t, ctx, s, "comedy", adult(), 10); !slices.Equal(ids(got), []string{"t-1"}) {
		t.Errorf("search comedy = %q, want [t-1]", ids(got))
	}
	if err := s.SaveGenre(ctx, domain.Genre{ID: "comedy", Name: "Laughs"}); err != nil {
		t.Fatalf("SaveGenre: %v", err)
	}
	if got := searchAll(t, ctx, s, "laughs", adult(), 10); !slices.Equal(ids(got), []string{"t-1"}) {
		t.Errorf("search laughs after the rename = %q, want [t-1]", ids(got))
	}
	if got := searchAll(t, ctx, s, "comedy", adult(), 10); len(got) != 0 {
		t.Errorf("search comedy after the rename = %q, want nothing", ids(got))
	}
}

func testSeedIfEmptyIsIdempotent(t *testing.T, ctx context.Context, s *store.Store) {
	if empty, err := s.Empty(ctx); err != nil || !empty {
		t.Fatalf("Empty() on a new database = %v, %v; want true", empty, err)
	}
	titles := mustSeed(t, ctx, s)
	seeded, err := s.SeedIfEmpty(ctx, demo.Genres(), titles)
	if err != nil || seeded {
		t.Errorf("second SeedIfEmpty = %v, %v; want false, nil", seeded, err)
	}
	if got := listAll(t, ctx, s, adult(), 100); len(got) != len(titles) {
		t.Errorf("after seeding twice there are %d titles, want %d", len(got), len(titles))
	}
	withdrawn, err := s.Title(ctx, demo.WithdrawnTitleID)
	if err != nil || !withdrawn.Rentable || withdrawn.AvailableAt(time.Now()) {
		t.Errorf("Title(%s) = %+v, %v; want a rentable title no longer available", demo.WithdrawnTitleID, withdrawn, err)
	}
	var want domain.Title
	for _, title := range titles {
		if title.ID == "t-0003" {
			want = title
		}
	}
	if got, err := s.Title(ctx, "t-0003"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Title(t-0003) = %+v, %v; want %+v", got, err, want)
	}
}

func testConcurrentSeedsSeedOnce(t *testing.T, ctx context.Context, s *store.Store) {
	const n = 4
	results := make(chan error, n)
	seededCount := make(chan bool, n)
	for range n {
		go func() {
			seeded, err := s.SeedIfEmpty(ctx, demo.Genres(), demo.Titles())
			seededCount <- seeded
			results <- err
		}()
	}
	seeds := 0
	for range n {
		if err := <-results; err != nil {
			t.Errorf("concurrent SeedIfEmpty: %v", err)
		}
		if <-seededCount {
			seeds++
		}
	}
	if seeds != 1 {
		t.Errorf("%d of %d concurrent seeds seeded, want exactly 1", seeds, n)
	}
	if got := listAll(t, ctx, s, adult(), 100); len(got) != len(demo.Titles()) {
		t.Errorf("after concurrent seeds there are %d titles, want %d", len(got), len(demo.Titles()))
	}
}
