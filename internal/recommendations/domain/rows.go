package domain

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
)

// Row reasons, as GetRecommendations answers them.
const (
	ReasonTrending          = "trending"
	ReasonPopularInGenre    = "popular_in_genre"
	ReasonBecauseYouWatched = "because_you_watched"
	ReasonTopPicks          = "top_picks"
	// ReasonColdStart marks a v1 row (trending or popular in a genre; its
	// id says which) that v2 answers because it has nothing personal for
	// the profile yet: no viewing history, or none similar to anything.
	ReasonColdStart = "cold_start"
)

// Row ids.
const (
	RowTrending = "trending"
	RowTopPicks = "top-picks"
	// RowGenrePrefix + genre id is a popular-in-genre row.
	RowGenrePrefix = "genre:"
	// RowBecausePrefix + title id is a because-you-watched row.
	RowBecausePrefix = "because-you-watched:"
)

// Limits of a request.
const (
	DefaultMaxRows   = 8
	MaxRows          = 20
	DefaultMaxTitles = 20
	MaxTitles        = 50
)

// Tuning of v2.
const (
	// SeedLimit is how many of the profile's most recent views seed v2.
	SeedLimit = 20
	// BecauseRows is the most because-you-watched rows answered.
	BecauseRows = 3
	// SeedHalfLife is how fast an older view loses weight as a seed of the
	// top picks.
	SeedHalfLife = 30 * 24 * time.Hour
)

// Limits bound the rows of an answer.
type Limits struct {
	MaxRows   int
	MaxTitles int
}

// NewLimits validates the request's limits; zero means the default.
func NewLimits(maxRows, maxTitles int32) (Limits, error) {
	l := Limits{MaxRows: DefaultMaxRows, MaxTitles: DefaultMaxTitles}
	switch {
	case maxRows < 0 || maxRows > MaxRows:
		return l, Invalid("max_rows", "must be 1 to 20, or 0 for the default")
	case maxTitles < 0 || maxTitles > MaxTitles:
		return l, Invalid("max_titles_per_row", "must be 1 to 50, or 0 for the default")
	}
	if maxRows > 0 {
		l.MaxRows = int(maxRows)
	}
	if maxTitles > 0 {
		l.MaxTitles = int(maxTitles)
	}
	return l, nil
}

// Snapshot is the catalog projection and the aggregate viewing figures the
// rows are built from.
type Snapshot struct {
	// Titles by id.
	Titles map[string]Title
	// Viewers counts the distinct profiles that viewed each title.
	Viewers map[string]int
	// Trending is each title's decayed plays (see Trending.Scores).
	Trending map[string]float64
}

// RowTitle is a title in a row with the score that placed it.
type RowTitle struct {
	Title Title
	Score float64
}

// Row is a titled list of titles.
type Row struct {
	ID          string
	Title       string
	Reason      string
	SeedTitleID string
	Titles      []RowTitle
}

// Request is what rows are built for.
type Request struct {
	Level  catalog.Level
	Now    time.Time
	Limits Limits
	// Exclude holds ids of titles never to answer.
	Exclude map[string]bool
}

// visible returns the titles a request may see, by id.
func (s *Snapshot) visible(req Request) map[string]Title {
	out := make(map[string]Title, len(s.Titles))
	for id, t := range s.Titles {
		if t.VisibleTo(req.Level, req.Now) && !req.Exclude[id] {
			out[id] = t
		}
	}
	return out
}

// V1Rows answers version 1: "Trending now" (titles with plays in the
// trending window, by decayed plays), then one "Popular in <genre>" row per
// genre, genres by the viewers of their titles, titles by viewers then by
// trending score, year and name. Every title is visible to req.Level and
// available at req.Now; empty rows are left out. Reason overrides the rows'
// reasons when not empty (v2 passes ReasonColdStart).
func V1Rows(s *Snapshot, req Request, reason string) []Row {
	vis := s.visible(req)
	var rows []Row
	if r := trendingRow(s, vis, req.Limits.MaxTitles); len(r.Titles) > 0 {
		rows = append(rows, r)
	}
	byGenre := map[string][]Title{}
	genreViewers := map[string]int{}
	for _, t := range vis {
		seen := map[string]bool{}
		for _, g := range t.Genres {
			if g == "" || seen[g] {
				continue
			}
			seen[g] = true
			byGenre[g] = append(byGenre[g], t)
			genreViewers[g] += s.Viewers[t.ID]
		}
	}
	genres := make([]string, 0, len(byGenre))
	for g := range byGenre {
		genres = append(genres, g)
	}
	slices.SortFunc(genres, func(a, b string) int {
		if c := cmp.Compare(genreViewers[b], genreViewers[a]); c != 0 {
			return c
		}
		if c := cmp.Compare(len(byGenre[b]), len(byGenre[a])); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, g := range genres {
		if len(rows) >= req.Limits.MaxRows {
			break
		}
		rows = append(rows, s.genreRow(g, byGenre[g], req.Limits.MaxTitles))
	}
	if len(rows) > req.Limits.MaxRows {
		rows = rows[:req.Limits.MaxRows]
	}
	if reason != "" {
		for i := range rows {
			rows[i].Reason = reason
		}
	}
	return rows
}

func trendingRow(s *Snapshot, vis map[string]Title, n int) Row {
	scores := map[string]float64{}
	for id, sc := range s.Trending {
		if _, ok := vis[id]; ok && sc > 0 {
			scores[id] = sc
		}
	}
	row := Row{ID: RowTrending, Title: "Trending now", Reason: ReasonTrending}
	for _, sc := range Ranked(scores) {
		if len(row.Titles) == n {
			break
		}
		row.Titles = append(row.Titles, RowTitle{vis[sc.TitleID], sc.Score})
	}
	return row
}

// popularity orders a genre row: viewers, with the trending score as a
// fraction below one, so that it breaks ties without overtaking a viewer.
func (s *Snapshot) popularity(id string) float64 {
	tr := s.Trending[id]
	return float64(s.Viewers[id]) + tr/(tr+1)
}

func (s *Snapshot) genreRow(genre string, titles []Title, n int) Row {
	slices.SortFunc(titles, func(a, b Title) int {
		if c := cmp.Compare(s.popularity(b.ID), s.popularity(a.ID)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Year, a.Year); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	row := Row{ID: RowGenrePrefix + genre, Title: "Popular in " + GenreName(genre), Reason: ReasonPopularInGenre}
	for _, t := range titles[:min(n, len(titles))] {
		row.Titles = append(row.Titles, RowTitle{t, s.popularity(t.ID)})
	}
	return row
}

// GenreName turns a genre id into a heading: "sci-fi" → "Sci-Fi".
func GenreName(id string) string {
	parts := strings.Split(id, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// V2Rows answers version 2 for a profile with history (its views, newest
// first) and co, the co-views of its seeds (the first SeedLimit views).
//
//   - "Top picks for you": every title scored by the sum over seeds of
//     weight(seed) · sim(seed, title), where a seed weighs 2^(-age/
//     SeedHalfLife) times its engagement (1 when finished, else between
//     0.5 and 1 by the share watched);
//   - up to BecauseRows "Because you watched <seed>" rows, for the newest
//     seeds the profile may see, their titles by similarity;
//   - then v1's rows, to fill up to MaxRows.
//
// Titles the profile finished are never answered, in any row, nor a seed
// in its own row. personal is false when nothing personal could be said (no history,
// or no seed with a visible neighbour); the rows are then v1's with reason
// ReasonColdStart.
func V2Rows(s *Snapshot, req Request, history []View, co []CoView) (rows []Row, personal bool) {
	finished := map[string]bool{}
	for id := range req.Exclude {
		finished[id] = true
	}
	for _, v := range history {
		if v.Finished {
			finished[v.TitleID] = true
		}
	}
	req.Exclude = finished
	vis := s.visible(req)
	seeds := history[:min(len(history), SeedLimit)]
	weight := map[string]float64{}
	for _, v := range seeds {
		weight[v.TitleID] = seedWeight(v, req.Now)
	}
	bySeed := map[string]map[string]float64{}
	picks := map[string]float64{}
	for _, c := range co {
		w, isSeed := weight[c.Seed]
		if !isSeed || c.Other == c.Seed || finished[c.Other] {
			continue
		}
		if _, ok := vis[c.Other]; !ok {
			continue
		}
		sim := c.Similarity()
		if sim <= 0 {
			continue
		}
		if bySeed[c.Seed] == nil {
			bySeed[c.Seed] = map[string]float64{}
		}
		bySeed[c.Seed][c.Other] = sim
		picks[c.Other] += w * sim
	}
	top := scoredRow(Row{ID: RowTopPicks, Title: "Top picks for you", Reason: ReasonTopPicks}, Ranked(picks), vis, req.Limits.MaxTitles)
	if len(top.Titles) == 0 {
		return V1Rows(s, req, ReasonColdStart), false
	}
	rows = append(rows, top)
	because := 0
	for _, v := range seeds {
		if because == BecauseRows || len(rows) >= req.Limits.MaxRows {
			break
		}
		seed, ok := s.Titles[v.TitleID]
		if !ok || !catalog.Allows(req.Level, seed.Rating) || len(bySeed[seed.ID]) == 0 {
			continue // never name a title the profile may not see
		}
		r := scoredRow(Row{
			ID: RowBecausePrefix + seed.ID, Title: "Because you watched " + seed.Name,
			Reason: ReasonBecauseYouWatched, SeedTitleID: seed.ID,
		}, Ranked(bySeed[seed.ID]), vis, req.Limits.MaxTitles)
		if sameTitles(r, top) {
			continue // one seed: the top picks already say it
		}
		rows = append(rows, r)
		because++
	}
	for _, r := range V1Rows(s, req, "") {
		if len(rows) >= req.Limits.MaxRows {
			break
		}
		rows = append(rows, r)
	}
	return rows, true
}

// seedWeight is how much a view counts as a seed of the top picks at now.
func seedWeight(v View, now time.Time) float64 {
	engagement := 0.5
	switch {
	case v.Finished:
		engagement = 1
	case v.Duration > 0:
		engagement += 0.5 * math.Min(1, math.Max(0, float64(v.Position)/float64(v.Duration)))
	}
	age := now.Sub(v.LastAt)
	if age < 0 {
		age = 0
	}
	return engagement * math.Exp2(-float64(age)/float64(SeedHalfLife))
}

func scoredRow(r Row, ranked []Scored, vis map[string]Title, n int) Row {
	for _, sc := range ranked {
		if len(r.Titles) == n {
			break
		}
		r.Titles = append(r.Titles, RowTitle{vis[sc.TitleID], sc.Score})
	}
	return r
}

func sameTitles(a, b Row) bool {
	return slices.EqualFunc(a.Titles, b.Titles, func(x, y RowTitle) bool { return x.Title.ID == y.Title.ID })
}
