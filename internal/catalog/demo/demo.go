// Package demo generates the catalog's demo data deterministically: the
// same genres and titles, with the same ids, names and synopses, on every
// machine and every run. Names and synopses are composed from word lists,
// each choice made by a hash of the title's number and a salt (FNV-1a), so
// changing one list does not reshuffle unrelated fields.
//
// Ids are "t-NNNN" for titles (t-0001 .. t-0072) and "t-NNNN-sSSeEE" for
// episodes. Every movie and episode plays one of MediaAssetIDs.
package demo

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

// TitleCount is the number of demo titles.
const TitleCount = 72

// WithdrawnTitleID is a rentable movie whose availability window ended on
// WithdrawnAt: renting it is charged, then refused at entitlement, so the
// order must be compensated (refunded).
const WithdrawnTitleID = "t-0007"

// ComingSoonTitleID is a movie whose availability window opens at
// ComingSoonAt.
const ComingSoonTitleID = "t-0072"

// Fixed instants of the demo availability windows.
var (
	// CatalogOpens is when every other demo title became available.
	CatalogOpens = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)
	// WithdrawnAt ends the window of WithdrawnTitleID.
	WithdrawnAt = time.Date(2024, time.June, 30, 0, 0, 0, 0, time.UTC)
	// LeavingAt ends the window of some titles (a license that expires).
	LeavingAt = time.Date(2035, time.December, 31, 0, 0, 0, 0, time.UTC)
	// ComingSoonAt opens the window of ComingSoonTitleID.
	ComingSoonAt = time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// MediaAssetIDs are the videos the demo titles play; the playback service
// maps each to a media file (it may serve one file for all).
func MediaAssetIDs() []string { return []string{"demo-1", "demo-2", "demo-3"} }

var genres = []domain.Genre{
	{ID: "action", Name: "Action"},
	{ID: "animation", Name: "Animation"},
	{ID: "comedy", Name: "Comedy"},
	{ID: "crime", Name: "Crime"},
	{ID: "documentary", Name: "Documentary"},
	{ID: "drama", Name: "Drama"},
	{ID: "family", Name: "Family"},
	{ID: "fantasy", Name: "Fantasy"},
	{ID: "horror", Name: "Horror"},
	{ID: "romance", Name: "Romance"},
	{ID: "sci-fi", Name: "Sci-Fi"},
	{ID: "thriller", Name: "Thriller"},
}

// Genres returns the demo genres.
func Genres() []domain.Genre {
	out := make([]domain.Genre, len(genres))
	copy(out, genres)
	return out
}

// Rating cycles: every rating appears, the common ones more often.
var (
	movieRatings = []domain.Rating{
		domain.RatingPG13, domain.RatingR, domain.RatingPG, domain.RatingG,
		domain.RatingPG13, domain.RatingR, domain.RatingPG, domain.RatingNC17,
		domain.RatingPG13, domain.RatingR, domain.RatingG, domain.RatingPG,
	}
	seriesRatings = []domain.Rating{
		domain.RatingTV14, domain.RatingTVMA, domain.RatingTVPG, domain.RatingTVY,
		domain.RatingTVG, domain.RatingTV14, domain.RatingTVY7, domain.RatingTVMA,
	}
)

// genresFor lists the genres that suit titles of a rating.
func genresFor(r domain.Rating) []string {
	switch r {
	case domain.RatingG, domain.RatingTVY, domain.RatingTVY7, domain.RatingTVG:
		return []string{"animation", "family", "comedy", "fantasy", "documentary"}
	case domain.RatingPG, domain.RatingTVPG:
		return []string{"family", "comedy", "fantasy", "action", "documentary", "romance", "animation"}
	case domain.RatingPG13, domain.RatingTV14:
		return []string{"action", "sci-fi", "thriller", "drama", "comedy", "romance", "fantasy", "crime"}
	default:
		return []string{"horror", "thriller", "crime", "drama", "sci-fi", "action"}
	}
}

// Titles returns the demo titles, ordered by id.
func Titles() []domain.Title {
	usedNames := map[string]bool{}
	out := make([]domain.Title, 0, TitleCount)
	movies, series := 0, 0
	for n := 1; n <= TitleCount; n++ {
		id := fmt.Sprintf("t-%04d", n)
		kind := domain.KindMovie
		if n%3 == 0 && id != WithdrawnTitleID && id != ComingSoonTitleID {
			kind = domain.KindSeries
		}
		var rating domain.Rating
		if kind == domain.KindMovie {
			rating = movieRatings[movies%len(movieRatings)]
			movies++
		} else {
			rating = seriesRatings[series%len(seriesRatings)]
			series++
		}
		suitable := genresFor(rating)
		primary := suitable[pick(n, "genre", len(suitable))]
		titleGenres := []string{primary}
		if second := suitable[pick(n, "genre2", len(suitable))]; second != primary && pick(n, "two-genres", 2) == 0 {
			titleGenres = append(titleGenres, second)
		}
		name := titleName(n, kind, usedNames)
		t := domain.Title{
			ID:            id,
			Name:          name,
			Kind:          kind,
			Synopsis:      synopsis(n, name, primary),
			Genres:        titleGenres,
			Rating:        rating,
			AvailableFrom: CatalogOpens,
		}
		if kind == domain.KindMovie {
			t.Year = 1972 + pick(n, "year", 54)
			t.Duration = time.Duration(80+pick(n, "minutes", 81)) * time.Minute
			t.MediaAssetID = asset(n, "movie")
			t.Rentable = pick(n, "rentable", 3) == 0
		} else {
			t.Year = 1995 + pick(n, "year", 31)
			t.Seasons, t.Duration = seasons(n, id)
		}
		if pick(n, "leaving", 6) == 0 {
			t.AvailableUntil = LeavingAt
		}
		switch id {
		case WithdrawnTitleID:
			t.Rentable = true
			t.AvailableFrom = time.Date(2019, time.March, 1, 0, 0, 0, 0, time.UTC)
			t.AvailableUntil = WithdrawnAt
		case ComingSoonTitleID:
			t.Rentable = false
			t.AvailableFrom = ComingSoonAt
			t.AvailableUntil = time.Time{}
			t.Year = ComingSoonAt.Year()
		}
		out = append(out, t)
	}
	return out
}

// pick returns a number in [0, n) chosen by the title number and salt.
func pick(i int, salt string, n int) int {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", salt, i)
	return int(h.Sum64() % uint64(n))
}

func asset(i int, salt string) string {
	ids := MediaAssetIDs()
	return ids[pick(i, "asset/"+salt, len(ids))]
}

func from(list []string, i int, salt string) string { return list[pick(i, salt, len(list))] }

var (
	adjectives = []string{
		"Silent", "Crimson", "Hollow", "Golden", "Broken", "Distant", "Electric", "Quiet",
		"Burning", "Frozen", "Hidden", "Last", "Midnight", "Northern", "Paper", "Restless",
		"Scarlet", "Shattered", "Velvet", "Wandering", "Wild", "Iron", "Glass", "Lonely",
		"Bright", "Sleeping", "Secret", "Endless",
	}
	nouns = []string{
		"Harbor", "Orchard", "Signal", "Kingdom", "Lantern", "Frontier", "Garden", "Tide",
		"Compass", "Echo", "Empire", "Horizon", "Meridian", "River", "Summit", "Voyage",
		"Winter", "Engine", "Archive", "Carnival", "Citadel", "Lighthouse", "Machine", "Parade",
		"Storm", "Mirror", "Station", "Crown",
	}
	places = []string{
		"Ashford", "Bellhaven", "Carrow Bay", "Dunmore", "Elmstead", "Fallow Creek", "Greywater",
		"Holloway", "Kestrel Point", "Larkspur", "Marrow Hill", "Northgate", "Port Ellis",
		"Ravenmoor", "Saltmarsh", "Thornbury", "Vale End", "Wrenfield",
	}
	people = []string{
		"Marla", "Theo", "June", "Silas", "Ada", "Felix", "Nora", "Otis", "Ivy", "Rafe",
		"Clara", "Jonah", "Tess", "Milo", "Greta", "Idris",
	}
	moviePatterns = []func(i int, salt string) string{
		func(i int, s string) string { return "The " + from(adjectives, i, s+"a") + " " + from(nouns, i, s+"n") },
		func(i int, s string) string { return from(nouns, i, s+"n") + " of " + from(places, i, s+"p") },
		func(i int, s string) string { return from(adjectives, i, s+"a") + " " + from(nouns, i, s+"n") },
		func(i int, s string) string {
			return from(people, i, s+"w") + " and the " + from(adjectives, i, s+"a") + " " + from(nouns, i, s+"n")
		},
		func(i int, s string) string { return "After the " + from(nouns, i, s+"n") },
		func(i int, s string) string { return from(people, i, s+"w") + "'s " + from(nouns, i, s+"n") },
	}
	seriesPatterns = []func(i int, salt string) string{
		func(i int, s string) string { return from(places, i, s+"p") },
		func(i int, s string) string { return "The " + from(nouns, i, s+"n") + " Files" },
		func(i int, s string) string { return from(adjectives, i, s+"a") + " " + from(places, i, s+"p") },
		func(i int, s string) string { return "Welcome to " + from(places, i, s+"p") },
	}
)

// titleName composes a name for title i that no earlier title has.
func titleName(i int, kind domain.Kind, used map[string]bool) string {
	patterns := moviePatterns
	if kind == domain.KindSeries {
		patterns = seriesPatterns
	}
	for attempt := 0; ; attempt++ {
		salt := fmt.Sprintf("name%d", attempt)
		name := patterns[pick(i, salt, len(patterns))](i, salt)
		if !used[name] {
			used[name] = true
			return name
		}
	}
}

var (
	protagonists = []string{
		"a retired lighthouse keeper", "a reluctant heiress", "a rookie detective", "a young inventor",
		"an exiled prince", "a washed-up magician", "a night-shift nurse", "a stubborn fox cub",
		"a marine biologist", "a small-town mayor", "a teenage hacker", "a travelling circus troupe",
		"an ageing boxer", "a shy librarian", "a crew of salvage pilots", "a family of badgers",
	}
	incidents = []string{
		"discovers a map hidden inside an old piano", "receives a letter that was never meant to be sent",
		"wakes up in a city that appears on no map", "inherits a crumbling seaside hotel",
		"finds a door that was not there yesterday", "witnesses something impossible at the edge of town",
		"is handed a case everyone else has given up on", "loses the one thing that held the family together",
		"picks up a radio signal from a ship that sank fifty years ago", "wins a contest nobody remembers entering",
	}
	goals = []string{
		"cross the country on a borrowed motorbike", "unravel a decades-old secret",
		"win back a friend they wronged", "rebuild everything from the ground up",
		"outwit a rival who is always one step ahead", "keep a dangerous promise",
		"find the courage to tell the truth", "bring a scattered team back together",
	}
	stakes = []string{
		"before the storm season closes the roads", "before the truth is buried for good",
		"while the whole town is watching", "before the last train leaves",
		"before the summer ends", "with nothing but their wits and an unreliable map",
	}
	taglines = map[string][]string{
		"action":      {"Relentless, kinetic and bruising.", "Every second counts."},
		"animation":   {"A hand-drawn adventure for the whole family.", "Bright, funny and full of heart."},
		"comedy":      {"A warm, loud comedy about second chances.", "Nothing goes to plan, gloriously."},
		"crime":       {"Nobody in this town is innocent.", "A slow-burning story of loyalty and greed."},
		"documentary": {"A patient, generous portrait.", "A true story, stranger than fiction."},
		"drama":       {"An intimate portrait of people at a crossroads.", "Quietly devastating."},
		"family":      {"An adventure to share with everyone at home.", "Gentle, funny and kind."},
		"fantasy":     {"Where old magic wakes, nothing stays the same.", "A myth retold for a new age."},
		"horror":      {"Some doors should stay closed.", "Do not watch it alone."},
		"romance":     {"Love arrives at the worst possible moment.", "Two hearts, one impossible summer."},
		"sci-fi":      {"A cerebral story of memory and machines.", "The future arrives early."},
		"thriller":    {"Trust no one, least of all yourself.", "A puzzle with a ticking clock."},
	}
)

var (
	documentarySubjects = []string{
		"the last ferry crew of a northern island", "a choir of retired miners", "the engineers who keep an old dam standing",
		"a family of beekeepers through a hard year", "the night markets of a port city", "a wildlife hospital run by volunteers",
		"a chess club that refuses to close", "the mapmakers who charted a disappearing coast",
	}
	documentaryYears = []string{"two", "three", "five", "seven", "ten"}
)

// synopsis writes a synopsis for title i; a title named after a place is
// set there.
func synopsis(i int, name, genre string) string {
	place := from(places, i, "where")
	for _, p := range places {
		if strings.Contains(name, p) {
			place = p
		}
	}
	if genre == "documentary" {
		return fmt.Sprintf("An intimate documentary about %s, filmed over %s years in and around %s. %s",
			from(documentarySubjects, i, "doc-subject"), from(documentaryYears, i, "doc-years"), place,
			from(taglines[genre], i, "tagline"))
	}
	s := fmt.Sprintf("When %s %s in %s, they must %s %s.",
		from(protagonists, i, "who"), from(incidents, i, "what"), place,
		from(goals, i, "goal"), from(stakes, i, "stakes"))
	if lines := taglines[genre]; len(lines) > 0 {
		s += " " + from(lines, i, "tagline")
	}
	return s
}

var episodeIncidents = []string{
	"makes an unexpected ally", "follows a lead into the old quarry", "hides a secret from the others",
	"faces the consequences of last winter", "returns to where it all began", "gets an offer too good to refuse",
	"uncovers a name in the archive", "must choose between two friends",
}

// seasons returns the seasons of series i and the average episode length.
func seasons(i int, id string) ([]domain.Season, time.Duration) {
	base := []time.Duration{22 * time.Minute, 30 * time.Minute, 45 * time.Minute, 55 * time.Minute}[pick(i, "episode-length", 4)]
	nSeasons := 1 + pick(i, "seasons", 4)
	var out []domain.Season
	var total time.Duration
	count := 0
	for s := 1; s <= nSeasons; s++ {
		season := domain.Season{Number: s, Name: fmt.Sprintf("Season %d", s)}
		nEpisodes := 4 + pick(i*100+s, "episodes", 5)
		for e := 1; e <= nEpisodes; e++ {
			k := i*10000 + s*100 + e
			name := "The " + from(nouns, k, "ep-noun")
			if pick(k, "ep-pattern", 2) == 0 {
				name = from(adjectives, k, "ep-adj") + " " + from(nouns, k, "ep-noun")
			}
			if s == 1 && e == 1 {
				name = "Pilot"
			}
			d := base + time.Duration(pick(k, "ep-minutes", 7))*time.Minute
			season.Episodes = append(season.Episodes, domain.Episode{
				ID:           fmt.Sprintf("%s-s%02de%02d", id, s, e),
				Number:       e,
				Name:         name,
				Synopsis:     from(people, k, "ep-who") + " " + from(episodeIncidents, k, "ep-what") + ".",
				Duration:     d,
				MediaAssetID: asset(k, "episode"),
			})
			total += d
			count++
		}
		out = append(out, season)
	}
	return out, (total / time.Duration(count)).Truncate(time.Second)
}
