package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

func TestAllows(t *testing.T) {
	kids := []domain.Rating{domain.RatingG, domain.RatingPG, domain.RatingTVY, domain.RatingTVY7, domain.RatingTVG}
	teen := append(slices.Clone(kids), domain.RatingPG13, domain.RatingTVPG, domain.RatingTV14)
	allowed := map[domain.Level][]domain.Rating{
		domain.LevelKids:  kids,
		domain.LevelTeen:  teen,
		domain.LevelAdult: domain.Ratings(),
		"":                nil,
		"toddler":         nil,
	}
	for level, want := range allowed {
		for _, r := range append(domain.Ratings(), "", "X") {
			if got, want := domain.Allows(level, r), slices.Contains(want, r); got != want {
				t.Errorf("Allows(%q, %q) = %v, want %v", level, r, got, want)
			}
		}
		if got := level.AllowedRatings(); len(got) != len(want) {
			t.Errorf("%q.AllowedRatings() = %v, want %v", level, got, want)
		}
	}
}

func TestRatingsAreEleven(t *testing.T) {
	want := []string{"G", "PG", "PG-13", "R", "NC-17", "TV-Y", "TV-Y7", "TV-G", "TV-PG", "TV-14", "TV-MA"}
	var got []string
	for _, r := range domain.Ratings() {
		got = append(got, string(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Ratings() = %v, want %v", got, want)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		fn      string
		in      string
		want    string
		wantErr bool
	}{
		{"ParseRating", "PG-13", "PG-13", false},
		{"ParseRating", "TV-MA", "TV-MA", false},
		{"ParseRating", "pg-13", "", true},
		{"ParseRating", "", "", true},
		{"ParseLevel", "kids", "kids", false},
		{"ParseLevel", "adult", "adult", false},
		{"ParseLevel", "Adult", "", true},
		{"ParseLevel", "", "", true},
		{"ParseKind", "movie", "movie", false},
		{"ParseKind", "series", "series", false},
		{"ParseKind", "episode", "", true},
	}
	for _, tt := range tests {
		var got string
		var err error
		switch tt.fn {
		case "ParseRating":
			var r domain.Rating
			r, err = domain.ParseRating(tt.in)
			got = string(r)
		case "ParseLevel":
			var l domain.Level
			l, err = domain.ParseLevel(tt.in)
			got = string(l)
		case "ParseKind":
			var k domain.Kind
			k, err = domain.ParseKind(tt.in)
			got = string(k)
		}
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s(%q) = %q, %v; want %q, error %v", tt.fn, tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s(%q) error %v does not match ErrInvalidArgument", tt.fn, tt.in, err)
		}
	}
}

func TestStricter(t *testing.T) {
	tests := []struct{ a, b, want domain.Level }{
		{domain.LevelAdult, domain.LevelKids, domain.LevelKids},
		{domain.LevelKids, domain.LevelAdult, domain.LevelKids},
		{domain.LevelTeen, domain.LevelAdult, domain.LevelTeen},
		{domain.LevelTeen, domain.LevelTeen, domain.LevelTeen},
		{domain.LevelAdult, "bogus", "bogus"}, // fails closed: "bogus" allows nothing
	}
	for _, tt := range tests {
		if got := domain.Stricter(tt.a, tt.b); got != tt.want {
			t.Errorf("Stricter(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestAvailableAt(t *testing.T) {
	from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	open := domain.Title{AvailableFrom: from}
	bounded := domain.Title{AvailableFrom: from, AvailableUntil: until}
	tests := []struct {
		name string
		t    domain.Title
		at   time.Time
		want bool
	}{
		{"open before", open, from.Add(-time.Second), false},
		{"open at start", open, from, true},
		{"open far future", open, from.AddDate(100, 0, 0), true},
		{"bounded before", bounded, from.Add(-time.Second), false},
		{"bounded at start", bounded, from, true},
		{"bounded inside", bounded, until.Add(-time.Second), true},
		{"bounded at end", bounded, until, false},
		{"bounded after", bounded, until.AddDate(1, 0, 0), false},
	}
	for _, tt := range tests {
		if got := tt.t.AvailableAt(tt.at); got != tt.want {
			t.Errorf("%s: AvailableAt(%v) = %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{
		{0, 20, false},
		{1, 1, false},
		{20, 20, false},
		{100, 100, false},
		{101, 100, false},
		{1 << 30, 100, false},
		{-1, 0, true},
		{-1 << 31, 0, true},
	}
	for _, tt := range tests {
		got, err := domain.PageSize(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("PageSize(%d) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && fieldOf(err) != "page_size" {
			t.Errorf("PageSize(%d) error field = %q, want page_size", tt.in, fieldOf(err))
		}
	}
}

func TestSearchTerms(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"harbor", []string{"harbor"}, false},
		{"  The Silent  HARBOR ", []string{"the", "silent", "harbor"}, false},
		{"sci-fi", []string{"sci", "fi"}, false},
		{"Marla's voyage", []string{"marla", "voyage"}, false},
		{"a", []string{"a"}, false},
		{"echo echo ECHO", []string{"echo"}, false},
		{`"harbor" OR title:* NEAR(x)`, []string{"harbor", "or", "title", "near"}, false},
		{"café 2049", []string{"café", "2049"}, false},
		{"one two three four five six seven eight nine ten", []string{"one", "two", "three", "four", "five", "six", "seven", "eight"}, false},
		{"", nil, true},
		{"  !!! --- ", nil, true},
		{strings.Repeat("x", domain.MaxQueryLen+1), nil, true},
		{"bad \xff utf8", nil, true},
	}
	for _, tt := range tests {
		got, err := domain.SearchTerms(tt.in)
		if !slices.Equal(got, tt.want) || (err != nil) != tt.wantErr {
			t.Errorf("SearchTerms(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && fieldOf(err) != "q" {
			t.Errorf("SearchTerms(%q) error field = %q, want q", tt.in, fieldOf(err))
		}
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"t-0001", true},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", true},
		{"A_b-9", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"t 1", false},
		{"t/1", false},
		{"t-1\n", false},
		{"título", false},
	}
	for _, tt := range tests {
		err := domain.CheckID("id", tt.in)
		if got := err == nil; got != tt.want {
			t.Errorf("CheckID(%q) = %v, want ok %v", tt.in, err, tt.want)
		}
		if got := domain.ValidID(tt.in); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestValidGenreID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"comedy", true},
		{"sci-fi", true},
		{"k-pop2", true},
		{"Sci-Fi", false},
		{"-comedy", false},
		{"comedy-", false},
		{"sci--fi", false},
		{"", false},
		{strings.Repeat("a", 41), false},
	}
	for _, tt := range tests {
		if got := domain.ValidGenreID(tt.in); got != tt.want {
			t.Errorf("ValidGenreID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func validMovie() domain.Title {
	return domain.Title{
		ID: "t-1", Name: "The Silent Harbor", Kind: domain.KindMovie, Synopsis: "Boats.",
		Year: 1999, Genres: []string{"drama"}, Rating: domain.RatingPG, Duration: 90 * time.Minute,
		MediaAssetID: "demo-1", AvailableFrom: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

func validSeries() domain.Title {
	t := validMovie()
	t.ID, t.Kind, t.MediaAssetID, t.Rating = "t-2", domain.KindSeries, "", domain.RatingTV14
	t.Seasons = []domain.Season{{Number: 1, Name: "Season 1", Episodes: []domain.Episode{
		{ID: "t-2-s01e01", Number: 1, Name: "Pilot", Duration: 30 * time.Minute, MediaAssetID: "demo-2"},
		{ID: "t-2-s01e02", Number: 2, Name: "Two", Duration: 30 * time.Minute, MediaAssetID: "demo-2"},
	}}}
	return t
}

func TestTitleValidate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*domain.Title)
		series    bool
		wantField string // "" means valid
	}{
		{"valid movie", func(*domain.Title) {}, false, ""},
		{"valid series", func(*domain.Title) {}, true, ""},
		{"open-ended window", func(t *domain.Title) { t.AvailableUntil = time.Time{} }, false, ""},
		{"missing id", func(t *domain.Title) { t.ID = "" }, false, "id"},
		{"bad id", func(t *domain.Title) { t.ID = "a b" }, false, "id"},
		{"blank name", func(t *domain.Title) { t.Name = "  " }, false, "name"},
		{"control in name", func(t *domain.Title) { t.Name = "a\x00b" }, false, "name"},
		{"long name", func(t *domain.Title) { t.Name = strings.Repeat("n", domain.MaxNameLen+1) }, false, "name"},
		{"bad kind", func(t *domain.Title) { t.Kind = "short" }, false, "kind"},
		{"old year", func(t *domain.Title) { t.Year = 1800 }, false, "year"},
		{"no genres", func(t *domain.Title) { t.Genres = nil }, false, "genres"},
		{"bad genre", func(t *domain.Title) { t.Genres = []string{"Drama"} }, false, "genres[0]"},
		{"repeated genre", func(t *domain.Title) { t.Genres = []string{"drama", "drama"} }, false, "genres[1]"},
		{"bad rating", func(t *domain.Title) { t.Rating = "X" }, false, "maturity_rating"},
		{"movie without duration", func(t *domain.Title) { t.Duration = 0 }, false, "duration_seconds"},
		{"no start", func(t *domain.Title) { t.AvailableFrom = time.Time{} }, false, "available_from"},
		{"end before start", func(t *domain.Title) { t.AvailableUntil = t.AvailableFrom }, false, "available_until"},
		{"movie without media", func(t *domain.Title) { t.MediaAssetID = "" }, false, "media_asset_id"},
		{"movie with seasons", func(t *domain.Title) { t.Seasons = validSeries().Seasons }, false, "seasons"},
		{"repeated season", func(t *domain.Title) { t.Seasons = append(t.Seasons, domain.Season{Number: 1}) }, true, "seasons[1].number"},
		{"repeated episode id", func(t *domain.Title) { t.Seasons[0].Episodes[1].ID = "t-2-s01e01" }, true, "seasons[0].episodes[1].id"},
		{"repeated episode number", func(t *domain.Title) { t.Seasons[0].Episodes[1].Number = 1 }, true, "seasons[0].episodes[1].number"},
		{"episode without media", func(t *domain.Title) { t.Seasons[0].Episodes[0].MediaAssetID = "" }, true, "seasons[0].episodes[0].media_asset_id"},
		{"episode without duration", func(t *domain.Title) { t.Seasons[0].Episodes[0].Duration = 0 }, true, "seasons[0].episodes[0].duration_seconds"},
	}
	for _, tt := range tests {
		title := validMovie()
		if tt.series {
			title = validSeries()
		}
		tt.mutate(&title)
		err := title.Validate()
		if tt.wantField == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, domain.ErrInvalidArgument) {
			t.Errorf("%s: Validate() = %v, want an invalid argument", tt.name, err)
			continue
		}
		var fields []string
		for _, f := range domain.FieldErrors(err) {
			fields = append(fields, f.Field)
		}
		if !slices.Contains(fields, tt.wantField) {
			t.Errorf("%s: Validate() fields = %q, want %q among them", tt.name, fields, tt.wantField)
		}
	}
}

func TestFieldErrorsCollectsJoinedAndWrapped(t *testing.T) {
	err := errors.Join(
		domain.Invalid("a", "x"),
		nil,
		errors.Join(domain.Invalid("b", "y")),
		wrapErr{domain.Invalid("c", "z")},
		errors.New("unrelated"),
	)
	var got []string
	for _, f := range domain.FieldErrors(err) {
		got = append(got, f.Field)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("FieldErrors(...) fields = %q, want %q", got, want)
	}
}

type wrapErr struct{ err error }

func (w wrapErr) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapErr) Unwrap() error { return w.err }

func TestPageTokenRoundTrip(t *testing.T) {
	f, err := domain.NewFilter("comedy", "movie", domain.LevelTeen)
	if err != nil {
		t.Fatalf("NewFilter: %v", err)
	}
	q, err := domain.NewListQuery(f, 10, "")
	if err != nil {
		t.Fatalf("NewListQuery: %v", err)
	}
	last := domain.Title{ID: "t-0042", Name: "Ünïcode Harbor"}
	token := q.NextPageToken(last)
	next, err := domain.NewListQuery(f, 5, token)
	if err != nil {
		t.Fatalf("NewListQuery(token %q) = %v, want ok", token, err)
	}
	want := domain.Cursor{SortKey: domain.SortKey(last.Name), ID: last.ID}
	if next.After == nil || *next.After != want || next.Limit != 5 {
		t.Errorf("NewListQuery(token).After = %+v, Limit %d; want %+v, 5", next.After, next.Limit, want)
	}

	sq, err := domain.NewSearchQuery("silent harbor", f, 0, "")
	if err != nil {
		t.Fatalf("NewSearchQuery: %v", err)
	}
	stoken := sq.NextPageToken(-3.25e-7, "t-0003")
	snext, err := domain.NewSearchQuery("SILENT harbor!", f, 0, stoken)
	if err != nil {
		t.Fatalf("NewSearchQuery(token) = %v, want ok (same words)", err)
	}
	if swant := (domain.Cursor{Score: -3.25e-7, ID: "t-0003"}); snext.After == nil || *snext.After != swant {
		t.Errorf("NewSearchQuery(token).After = %+v, want %+v", snext.After, swant)
	}
}

func TestPageTokenRejected(t *testing.T) {
	f, _ := domain.NewFilter("", "", domain.LevelAdult)
	q, _ := domain.NewListQuery(f, 0, "")
	token := q.NextPageToken(domain.Title{ID: "t-0001", Name: "Harbor"})
	sq, _ := domain.NewSearchQuery("harbor", f, 0, "")
	stoken := sq.NextPageToken(1.5, "t-0001")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	kids, _ := domain.NewFilter("", "", domain.LevelKids)
	comedy, _ := domain.NewFilter("comedy", "", domain.LevelAdult)
	tests := []struct {
		name  string
		build func() error
	}{
		{"garbage", func() error { _, err := domain.NewListQuery(f, 0, "not a token"); return err }},
		{"truncated", func() error { _, err := domain.NewListQuery(f, 0, token[:len(token)-3]); return err }},
		{"flipped first", func() error { _, err := domain.NewListQuery(f, 0, flip(token, 0)); return err }},
		{"flipped middle", func() error { _, err := domain.NewListQuery(f, 0, flip(token, len(token)/2)); return err }},
		{"padded", func() error { _, err := domain.NewListQuery(f, 0, token+"=="); return err }},
		{"too long", func() error { _, err := domain.NewListQuery(f, 0, strings.Repeat("A", 2000)); return err }},
		{"other level", func() error { _, err := domain.NewListQuery(kids, 0, token); return err }},
		{"other genre", func() error { _, err := domain.NewListQuery(comedy, 0, token); return err }},
		{"search token for list", func() error { _, err := domain.NewListQuery(f, 0, stoken); return err }},
		{"list token for search", func() error { _, err := domain.NewSearchQuery("harbor", f, 0, token); return err }},
		{"other words", func() error { _, err := domain.NewSearchQuery("lantern", f, 0, stoken); return err }},
	}
	for _, tt := range tests {
		err := tt.build()
		if !errors.Is(err, domain.ErrInvalidArgument) || fieldOf(err) != "page_token" {
			t.Errorf("%s: error = %v, want invalid page_token", tt.name, err)
		}
	}
}

func TestNewFilter(t *testing.T) {
	tests := []struct {
		genre, kind string
		level       domain.Level
		wantFields  []string
	}{
		{"", "", domain.LevelAdult, nil},
		{"sci-fi", "series", domain.LevelKids, nil},
		{"Sci Fi", "film", "", []string{"genre", "kind", "maturity_level"}},
	}
	for _, tt := range tests {
		_, err := domain.NewFilter(tt.genre, tt.kind, tt.level)
		var got []string
		for _, f := range domain.FieldErrors(err) {
			got = append(got, f.Field)
		}
		if !slices.Equal(got, tt.wantFields) {
			t.Errorf("NewFilter(%q, %q, %q) fields = %q, want %q", tt.genre, tt.kind, tt.level, got, tt.wantFields)
		}
	}
}

func fieldOf(err error) string {
	fs := domain.FieldErrors(err)
	if len(fs) == 0 {
		return ""
	}
	return fs[0].Field
}
