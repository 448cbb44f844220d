package domain_test

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

var now = time.Date(2026, time.March, 1, 12, 30, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestTrendingWeightDecays(t *testing.T) {
	c := domain.Trending{Window: 72 * time.Hour, HalfLife: 24 * time.Hour}
	cur := domain.Bucket(now) // 12:00; its middle is 12:30 = now
	tests := []struct {
		bucket time.Time
		want   float64
	}{
		{cur, 1},
		{cur.Add(-24 * time.Hour), 0.5},
		{cur.Add(-48 * time.Hour), 0.25},
		{cur.Add(-72 * time.Hour), 0.125}, // ends inside the window
		{cur.Add(-74 * time.Hour), 0},     // ended before the window
		{cur.Add(2 * time.Hour), 1},       // a producer clock ahead of ours
	}
	for _, tt := range tests {
		if got := c.Weight(tt.bucket, now); !near(got, tt.want) {
			t.Errorf("Weight(%v) = %v, want %v", tt.bucket, got, tt.want)
		}
	}
	if got, want := c.Since(now), cur.Add(-72*time.Hour); !got.Equal(want) {
		t.Errorf("Since(now) = %v, want %v", got, want)
	}
}

func TestTrendingScoresPreferRecentPlays(t *testing.T) {
	c := domain.Trending{Window: 7 * 24 * time.Hour, HalfLife: 24 * time.Hour}
	cur := domain.Bucket(now)
	acts := []domain.Activity{
		{"old-hit", cur.Add(-72 * time.Hour), 6}, // 6 × 1/8 = 0.75
		{"fresh", cur, 1},                        // 1
		{"fresh", cur.Add(-24 * time.Hour), 1},   // + 0.5
		{"ancient", cur.Add(-30 * 24 * time.Hour), 100},
		{"zero", cur, 0},
	}
	got := c.Scores(acts, now)
	want := map[string]float64{"old-hit": 0.75, "fresh": 1.5}
	if len(got) != len(want) {
		t.Fatalf("Scores = %v, want %v", got, want)
	}
	for id, w := range want {
		if !near(got[id], w) {
			t.Errorf("Scores[%s] = %v, want %v", id, got[id], w)
		}
	}
	ranked := domain.Ranked(got)
	if ranked[0].TitleID != "fresh" {
		t.Errorf("Ranked(Scores) = %v, want fresh first", ranked)
	}
}

// matrix is a hand-made co-viewing matrix (profile → titles viewed):
//
//	viewers: a 3, b 3, c 2, d 2, e 1
//	both:    ab 2, ac 1, ad 1, bc 2, bd 1, cd 1
var matrix = map[string][]string{
	"p1": {"a", "b", "c"},
	"p2": {"a", "b", "b"}, // a repeat counts once
	"p3": {"b", "c", "d"},
	"p4": {"a", "d"},
	"p5": {"e"},
}

func TestSimilaritiesOfHandMadeMatrix(t *testing.T) {
	sim := domain.Similarities(matrix)
	r6 := math.Sqrt(6)
	want := map[[2]string]float64{
		{"a", "b"}: 2.0 / 3, {"a", "c"}: 1 / r6, {"a", "d"}: 1 / r6,
		{"b", "c"}: 2 / r6, {"b", "d"}: 1 / r6, {"c", "d"}: 0.5,
	}
	for p, w := range want {
		if got := sim[p[0]][p[1]]; !near(got, w) {
			t.Errorf("sim(%s, %s) = %v, want %v", p[0], p[1], got, w)
		}
		if got := sim[p[1]][p[0]]; !near(got, w) {
			t.Errorf("sim(%s, %s) = %v, want %v (symmetric)", p[1], p[0], got, w)
		}
	}
	if _, ok := sim["e"]; ok {
		t.Errorf("e shares no viewer and has neighbours %v", sim["e"])
	}
	neighbours := map[string][]string{
		"a": {"b", "c", "d"},
		"b": {"c", "a", "d"},
		"c": {"b", "d", "a"},
		"d": {"c", "a", "b"},
	}
	for id, want := range neighbours {
		var got []string
		for _, s := range domain.Ranked(sim[id]) {
			got = append(got, s.TitleID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("neighbours(%s) = %v, want %v", id, got, want)
		}
	}
}

func TestCosine(t *testing.T) {
	tests := []struct {
		both, a, b int
		want       float64
	}{
		{1, 1, 1, 1},
		{2, 4, 4, 0.5},
		{0, 3, 3, 0},
		{1, 0, 3, 0},
		{5, 2, 2, 1}, // inconsistent counts never exceed 1
	}
	for _, tt := range tests {
		if got := domain.Cosine(tt.both, tt.a, tt.b); !near(got, tt.want) {
			t.Errorf("Cosine(%d, %d, %d) = %v, want %v", tt.both, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestApply(t *testing.T) {
	series := &domain.Title{ID: "s", Kind: "series", LastEpisodeID: "s-e9"}
	movie := &domain.Title{ID: "m", Kind: "movie"}
	at := func(m int) time.Time { return now.Add(time.Duration(m) * time.Minute) }
	seen := &domain.View{ProfileID: "p", TitleID: "m", FirstAt: at(0), LastAt: at(10), LastPlayAt: at(0), Plays: 1, Position: 300, Duration: 1000}
	tests := []struct {
		name     string
		prev     *domain.View
		ev       domain.ViewingEvent
		title    *domain.Title
		wantEff  domain.Effect
		finished bool
		position int
		plays    int
	}{
		{"first start", nil, domain.ViewingEvent{Kind: domain.Started, At: at(0)}, movie, domain.Effect{NewViewer: true, Play: true}, false, 0, 1},
		{"first event is progress", nil, domain.ViewingEvent{Kind: domain.Progress, Position: 40, At: at(0)}, nil, domain.Effect{NewViewer: true, Play: true}, false, 40, 1},
		{"resume within PlayGap", seen, domain.ViewingEvent{Kind: domain.Started, Position: 300, At: at(60)}, movie, domain.Effect{}, false, 300, 1},
		{"start after PlayGap", seen, domain.ViewingEvent{Kind: domain.Started, At: at(0).Add(domain.PlayGap)}, movie, domain.Effect{Play: true}, false, 0, 2},
		{"late progress", seen, domain.ViewingEvent{Kind: domain.Progress, Position: 100, At: at(5)}, movie, domain.Effect{}, false, 300, 1},
		{"progress past 90%", seen, domain.ViewingEvent{Kind: domain.Progress, Position: 900, Duration: 1000, At: at(20)}, movie, domain.Effect{}, true, 900, 1},
		{"completed movie", seen, domain.ViewingEvent{Kind: domain.Completed, Position: 1000, At: at(20)}, movie, domain.Effect{}, true, 1000, 1},
		{"completed, late", seen, domain.ViewingEvent{Kind: domain.Completed, Position: 1000, At: at(1)}, movie, domain.Effect{}, true, 300, 1},
		{"completed middle episode", nil, domain.ViewingEvent{Kind: domain.Completed, EpisodeID: "s-e2", At: at(0)}, series, domain.Effect{NewViewer: true, Play: true}, false, 0, 1},
		{"completed last episode", nil, domain.ViewingEvent{Kind: domain.Completed, EpisodeID: "s-e9", At: at(0)}, series, domain.Effect{NewViewer: true, Play: true}, true, 0, 1},
		{"completed episode of an unknown title", nil, domain.ViewingEvent{Kind: domain.Completed, EpisodeID: "x-e1", At: at(0)}, nil, domain.Effect{NewViewer: true, Play: true}, false, 0, 1},
	}
	for _, tt := range tests {
		tt.ev.ProfileID, tt.ev.TitleID = "p", "m"
		got, eff := domain.Apply(tt.prev, tt.ev, tt.title)
		if eff != tt.wantEff || got.Finished != tt.finished || got.Position != tt.position || got.Plays != tt.plays {
			t.Errorf("%s: Apply = %+v, %+v; want effect %+v, finished %v, position %d, plays %d",
				tt.name, got, eff, tt.wantEff, tt.finished, tt.position, tt.plays)
		}
	}
	finished := *seen
	finished.Finished = true
	if got, _ := domain.Apply(&finished, domain.ViewingEvent{Kind: domain.Started, At: at(600)}, movie); !got.Finished {
		t.Error("Apply(started) on a finished view unfinished it; finished is sticky")
	}
}

func TestAvailableAt(t *testing.T) {
	tests := []struct {
		name string
		t    domain.Title
		want bool
	}{
		{"open window", domain.Title{AvailableFrom: now.Add(-time.Hour)}, true},
		{"not yet", domain.Title{AvailableFrom: now.Add(time.Hour), Available: true}, false},
		{"ended", domain.Title{AvailableFrom: now.Add(-48 * time.Hour), AvailableUntil: now}, false},
		{"ends later", domain.Title{AvailableFrom: now.Add(-48 * time.Hour), AvailableUntil: now.Add(time.Second)}, true},
		{"no window, flag", domain.Title{Available: true}, true},
		{"no window, no flag", domain.Title{}, false},
	}
	for _, tt := range tests {
		if got := tt.t.AvailableAt(now); got != tt.want {
			t.Errorf("%s: AvailableAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewLimits(t *testing.T) {
	tests := []struct {
		rows, titles int32
		want         domain.Limits
		field        string
	}{
		{0, 0, domain.Limits{MaxRows: 8, MaxTitles: 20}, ""},
		{1, 50, domain.Limits{MaxRows: 1, MaxTitles: 50}, ""},
		{21, 0, domain.Limits{}, "max_rows"},
		{-1, 0, domain.Limits{}, "max_rows"},
		{3, 51, domain.Limits{}, "max_titles_per_row"},
	}
	for _, tt := range tests {
		got, err := domain.NewLimits(tt.rows, tt.titles)
		if tt.field != "" {
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("NewLimits(%d, %d) = %v, want an error about %s", tt.rows, tt.titles, err, tt.field)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NewLimits(%d, %d) = %+v, %v; want %+v", tt.rows, tt.titles, got, err, tt.want)
		}
	}
}

// catalogOf builds a snapshot: every title available, with the viewers
// of matrix (so a is seen by 3, ...).
func catalogOf() *domain.Snapshot {
	mk := func(id, name string, r catalog.Rating, year int, genres ...string) domain.Title {
		return domain.Title{ID: id, Name: name, Kind: "movie", Rating: r, Year: year, Genres: genres,
			AvailableFrom: now.Add(-365 * 24 * time.Hour)}
	}
	titles := []domain.Title{
		mk("a", "Alpha", "PG", 2020, "comedy"),
		mk("b", "Bravo", "PG", 2021, "comedy", "family"),
		mk("c", "Charlie", "R", 2022, "thriller"),
		mk("d", "Delta", "G", 2019, "family"),
		mk("e", "Echo", "G", 2018, "family"),
		mk("f", "Foxtrot", "PG", 2025, "comedy"),
	}
	withdrawn := mk("w", "Withdrawn", "G", 2024, "family")
	withdrawn.AvailableUntil = now.Add(-time.Hour)
	titles = append(titles, withdrawn)
	s := &domain.Snapshot{Titles: map[string]domain.Title{}, Viewers: map[string]int{"a": 3, "b": 3, "c": 2, "d": 2, "e": 1, "w": 9}, Trending: map[string]float64{}}
	for _, t := range titles {
		s.Titles[t.ID] = t
	}
	return s
}

func ids(r domain.Row) []string {
	var out []string
	for _, t := range r.Titles {
		out = append(out, t.Title.ID)
	}
	return out
}

func rowIDs(rows []domain.Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestV1Rows(t *testing.T) {
	s := catalogOf()
	s.Trending = map[string]float64{"c": 5, "d": 2, "e": 3, "w": 10}
	req := domain.Request{Level: catalog.LevelAdult, Now: now, Limits: domain.Limits{MaxRows: 8, MaxTitles: 20}}
	rows := domain.V1Rows(s, req, "")
	// Genres by viewers: family (b 3 + d 2 + e 1 = 6), comedy (a 3 + b 3 = 6,
	// 3 titles vs family's 3 → id), thriller 2. The withdrawn title counts
	// nowhere.
	if got, want := rowIDs(rows), []string{"trending", "genre:comedy", "genre:family", "genre:thriller"}; !slices.Equal(got, want) {
		t.Fatalf("V1Rows ids = %v, want %v", got, want)
	}
	if got, want := ids(rows[0]), []string{"c", "e", "d"}; !slices.Equal(got, want) {
		t.Errorf("trending = %v, want %v (withdrawn left out)", got, want)
	}
	if got, want := ids(rows[1]), []string{"b", "a", "f"}; !slices.Equal(got, want) {
		t.Errorf("comedy = %v, want %v (a and b tie on viewers; b is more recent)", got, want)
	}
	if rows[1].Title != "Popular in Comedy" || rows[1].Reason != domain.ReasonPopularInGenre {
		t.Errorf("comedy row = %q, %q", rows[1].Title, rows[1].Reason)
	}
	for _, r := range rows {
		if !slices.IsSortedFunc(r.Titles, func(x, y domain.RowTitle) int { return -cmpF(x.Score, y.Score) }) {
			t.Errorf("row %s scores are not descending: %+v", r.ID, r.Titles)
		}
	}

	limited := domain.V1Rows(s, domain.Request{Level: catalog.LevelAdult, Now: now, Limits: domain.Limits{MaxRows: 2, MaxTitles: 1}}, domain.ReasonColdStart)
	if len(limited) != 2 || len(limited[0].Titles) != 1 || limited[1].Reason != domain.ReasonColdStart {
		t.Errorf("V1Rows(2 rows, 1 title, cold start) = %+v", limited)
	}
}

func TestRowsRespectMaturity(t *testing.T) {
	s := catalogOf()
	s.Trending = map[string]float64{"c": 50, "a": 1}
	history := []domain.View{{TitleID: "a", LastAt: now}}
	co := []domain.CoView{
		{Seed: "a", Other: "c", Both: 2, SeedViewers: 2, OtherViewers: 2}, // most similar, but R
		{Seed: "a", Other: "b", Both: 1, SeedViewers: 2, OtherViewers: 3},
	}
	for _, level := range []catalog.Level{catalog.LevelKids, catalog.LevelTeen, catalog.LevelAdult} {
		req := domain.Request{Level: level, Now: now, Limits: domain.Limits{MaxRows: 20, MaxTitles: 50}}
		v1 := domain.V1Rows(s, req, "")
		v2, _ := domain.V2Rows(s, req, history, co)
		sawR := false
		for _, r := range append(v1, v2...) {
			for _, rt := range r.Titles {
				if !catalog.Allows(level, rt.Title.Rating) {
					t.Errorf("%s profile: row %s holds %s rated %s", level, r.ID, rt.Title.ID, rt.Title.Rating)
				}
				if !rt.Title.AvailableAt(now) {
					t.Errorf("%s profile: row %s holds unavailable %s", level, r.ID, rt.Title.ID)
				}
				sawR = sawR || rt.Title.Rating == "R"
			}
		}
		if level == catalog.LevelAdult && !sawR {
			t.Error("adult profile: no R title anywhere; the filter is too strict")
		}
	}
}

func TestV2RowsFromSimilarity(t *testing.T) {
	s := catalogOf()
	// Build the co-views of the hand-made matrix, the way the store keeps
	// them, for a new profile that watched a (finished) and d.
	sim := domain.Similarities(matrix)
	viewers := map[string]int{"a": 3, "b": 3, "c": 2, "d": 2, "e": 1}
	var co []domain.CoView
	for seed, row := range sim {
		for other, sc := range row {
			both := int(math.Round(sc * math.Sqrt(float64(viewers[seed]*viewers[other]))))
			co = append(co, domain.CoView{Seed: seed, Other: other, Both: both, SeedViewers: viewers[seed], OtherViewers: viewers[other]})
		}
	}
	history := []domain.View{
		{TitleID: "d", LastAt: now.Add(-time.Hour), Position: 90, Duration: 100},
		{TitleID: "a", LastAt: now.Add(-90 * 24 * time.Hour), Finished: true},
	}
	req := domain.Request{Level: catalog.LevelAdult, Now: now, Limits: domain.Limits{MaxRows: 8, MaxTitles: 20}}
	rows, personal := domain.V2Rows(s, req, history, co)
	if !personal {
		t.Fatal("V2Rows with history = not personal")
	}
	if got, want := rowIDs(rows)[:3], []string{"top-picks", "because-you-watched:d", "because-you-watched:a"}; !slices.Equal(got, want) {
		t.Fatalf("V2Rows ids = %v, want %v first", rowIDs(rows), want)
	}
	// Top picks: c = w(d)·0.5 + w(a)·0.408, b = w(d)·0.408 + w(a)·0.667;
	// d, recent and nearly done, weighs 0.95; a, finished three half-lives
	// ago, 0.125: c comes first. a is finished, so never answered; d is not
	// finished, so a may suggest it.
	for _, r := range rows {
		if slices.Contains(ids(r), "a") {
			t.Errorf("row %s = %v holds a, which the profile finished", r.ID, ids(r))
		}
	}
	if got, want := ids(rows[0]), []string{"c", "b", "d"}; !slices.Equal(got, want) {
		t.Errorf("top picks = %v, want %v", got, want)
	}
	if got, want := ids(rows[1]), []string{"c", "b"}; !slices.Equal(got, want) {
		t.Errorf("because you watched d = %v, want %v", got, want)
	}
	if got, want := ids(rows[2]), []string{"b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("because you watched a = %v, want %v", got, want)
	}
	if rows[1].SeedTitleID != "d" || rows[1].Title != "Because you watched Delta" || rows[1].Reason != domain.ReasonBecauseYouWatched {
		t.Errorf("because-you-watched row = %+v", rows[1])
	}
	wd := 0.95 * math.Exp2(-float64(time.Hour)/float64(domain.SeedHalfLife))
	wa := math.Exp2(-float64(90*24*time.Hour) / float64(domain.SeedHalfLife))
	wantTop := domain.Ranked(map[string]float64{
		"c": wd*0.5 + wa/math.Sqrt(6),
		"b": wd/math.Sqrt(6) + wa*2/3,
		"d": wa / math.Sqrt(6),
	})
	if len(rows[0].Titles) != len(wantTop) {
		t.Fatalf("top picks = %v, want %v", ids(rows[0]), wantTop)
	}
	for i, w := range wantTop {
		if got := rows[0].Titles[i]; got.Title.ID != w.TitleID || !near(got.Score, w.Score) {
			t.Errorf("top picks[%d] = %s %v, want %s %v", i, got.Title.ID, got.Score, w.TitleID, w.Score)
		}
	}
	// v1's rows fill the rest, with their own reasons.
	if r := rows[3]; !strings.HasPrefix(r.ID, domain.RowGenrePrefix) || r.Reason != domain.ReasonPopularInGenre {
		t.Errorf("row 3 = %s (%s), want a v1 genre row", r.ID, r.Reason)
	}
}

func TestV2ColdStart(t *testing.T) {
	s := catalogOf()
	s.Trending = map[string]float64{"b": 1}
	req := domain.Request{Level: catalog.LevelKids, Now: now, Limits: domain.Limits{MaxRows: 8, MaxTitles: 20}}
	for name, tc := range map[string]struct {
		history []domain.View
		co      []domain.CoView
	}{
		"no history":         {nil, nil},
		"nothing similar":    {[]domain.View{{TitleID: "e", LastAt: now}}, nil},
		"only R neighbours":  {[]domain.View{{TitleID: "a", LastAt: now}}, []domain.CoView{{Seed: "a", Other: "c", Both: 1, SeedViewers: 1, OtherViewers: 1}}},
		"neighbour finished": {[]domain.View{{TitleID: "a", LastAt: now}, {TitleID: "b", Finished: true}}, []domain.CoView{{Seed: "a", Other: "b", Both: 1, SeedViewers: 1, OtherViewers: 1}}},
	} {
		rows, personal := domain.V2Rows(s, req, tc.history, tc.co)
		if personal {
			t.Errorf("%s: V2Rows personal = true, want the cold-start fallback", name)
		}
		wantReq := req
		wantReq.Exclude = map[string]bool{}
		for _, v := range tc.history {
			wantReq.Exclude[v.TitleID] = v.Finished
		}
		want := domain.V1Rows(s, wantReq, "")
		if got := rowIDs(rows); !slices.Equal(got, rowIDs(want)) || len(rows) == 0 {
			t.Errorf("%s: V2Rows = %v, want v1's rows %v", name, got, rowIDs(want))
		}
		for _, r := range rows {
			if slices.Contains(ids(r), "b") && name == "neighbour finished" {
				t.Errorf("%s: row %s holds the finished b", name, r.ID)
			}
			if r.Reason != domain.ReasonColdStart {
				t.Errorf("%s: row %s reason %q, want %q", name, r.ID, r.Reason, domain.ReasonColdStart)
			}
		}
	}
}

func TestGenreName(t *testing.T) {
	for in, want := range map[string]string{"sci-fi": "Sci-Fi", "comedy": "Comedy", "": "", "a--b": "A--B"} {
		if got := domain.GenreName(in); got != want {
			t.Errorf("GenreName(%q) = %q, want %q", in, got, want)
		}
	}
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
