// Package domain is the catalog's model: titles (movies and series, with
// seasons and episodes), genres, maturity ratings and levels, availability
// windows, the rules that validate them, and the paging and search rules of
// the catalog's queries. It knows no SQL and no transport.
package domain

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind says whether a title is a movie or a series.
type Kind string

// The kinds of title.
const (
	KindMovie  Kind = "movie"
	KindSeries Kind = "series"
)

// ParseKind returns the kind named s ("movie" or "series").
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if k != KindMovie && k != KindSeries {
		return "", Invalid("kind", "%q is not a kind (movie or series)", s)
	}
	return k, nil
}

// Limits on title fields.
const (
	MaxIDLen       = 64
	MaxNameLen     = 200 // bytes
	MaxSynopsisLen = 2000
	MaxGenres      = 5
	MinYear        = 1888
	MaxYear        = 2100
)

// Title is a movie or a series. A series has seasons of episodes; its
// Duration is that of an average episode. A movie names its video in
// MediaAssetID; episodes carry their own.
type Title struct {
	ID       string
	Name     string
	Kind     Kind
	Synopsis string
	Year     int
	// Genres are genre ids, the primary genre first.
	Genres       []string
	Rating       Rating
	Duration     time.Duration
	Rentable     bool
	MediaAssetID string
	// AvailableFrom and AvailableUntil bound the availability window
	// [from, until); a zero AvailableUntil means no end. Times are kept to
	// the second.
	AvailableFrom  time.Time
	AvailableUntil time.Time
	// Seasons of a series, by number. List queries leave them out.
	Seasons []Season
}

// Season is one season of a series.
type Season struct {
	Number   int
	Name     string
	Episodes []Episode
}

// Episode is one episode of a season. Episode ids are unique across the
// catalog.
type Episode struct {
	ID           string
	Number       int
	Name         string
	Synopsis     string
	Duration     time.Duration
	MediaAssetID string
}

// Genre is a browsable category; its id is a slug such as "sci-fi".
type Genre struct {
	ID   string
	Name string
	// TitleCount is filled by queries that count titles.
	TitleCount int
}

// AvailableAt reports whether t is inside the title's availability window.
func (t Title) AvailableAt(at time.Time) bool {
	if at.Before(t.AvailableFrom) {
		return false
	}
	return t.AvailableUntil.IsZero() || at.Before(t.AvailableUntil)
}

// SortKey is the key titles are browsed by (then by id): the name folded
// to lower case, compared byte by byte so every database orders it alike.
func SortKey(name string) string { return strings.ToLower(name) }

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// ValidID reports whether id is a well-formed title, episode or profile
// id: 1 to 64 letters, digits, '-' or '_'.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// CheckID returns an *InvalidArgumentError for field unless id is a
// well-formed id.
func CheckID(field, id string) error {
	switch {
	case id == "":
		return Invalid(field, "is required")
	case !ValidID(id):
		return Invalid(field, "must be 1 to %d letters, digits, '-' or '_'", MaxIDLen)
	}
	return nil
}

// ValidGenreID reports whether id is a well-formed genre slug: lower-case
// letters and digits in words joined by '-', at most 40 bytes.
func ValidGenreID(id string) bool { return len(id) <= 40 && slugPattern.MatchString(id) }

// CheckGenreID returns an *InvalidArgumentError for field unless id is a
// well-formed genre slug.
func CheckGenreID(field, id string) error {
	if !ValidGenreID(id) {
		return Invalid(field, "must be a genre slug such as \"sci-fi\"")
	}
	return nil
}

// checkText validates a human-readable text field.
func checkText(field, s string, required bool, max int) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return Invalid(field, "is required")
	case len(s) > max:
		return Invalid(field, "is longer than %d bytes", max)
	case !utf8.ValidString(s):
		return Invalid(field, "is not valid UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		return Invalid(field, "contains control characters")
	}
	return nil
}

// Validate checks every field of the title, its seasons and episodes, and
// returns all the problems found (joined), or nil.
func (t Title) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(CheckID("id", t.ID))
	add(checkText("name", t.Name, true, MaxNameLen))
	if _, err := ParseKind(string(t.Kind)); err != nil {
		add(err)
	}
	add(checkText("synopsis", t.Synopsis, false, MaxSynopsisLen))
	if t.Year < MinYear || t.Year > MaxYear {
		add(Invalid("year", "must be between %d and %d", MinYear, MaxYear))
	}
	switch {
	case len(t.Genres) == 0:
		add(Invalid("genres", "at least one genre is required"))
	case len(t.Genres) > MaxGenres:
		add(Invalid("genres", "at most %d genres", MaxGenres))
	}
	seen := map[string]bool{}
	for i, g := range t.Genres {
		field := fmt.Sprintf("genres[%d]", i)
		add(CheckGenreID(field, g))
		if seen[g] {
			add(Invalid(field, "genre %q is repeated", g))
		}
		seen[g] = true
	}
	if !t.Rating.Valid() {
		add(Invalid("maturity_rating", "%q is not a maturity rating", t.Rating))
	}
	switch {
	case t.Duration < 0 || t.Duration > 24*time.Hour:
		add(Invalid("duration_seconds", "must be between 0 and 24 hours"))
	case t.Kind == KindMovie && t.Duration < time.Second:
		add(Invalid("duration_seconds", "a movie needs a running time"))
	}
	if t.AvailableFrom.IsZero() {
		add(Invalid("available_from", "is required"))
	}
	if !t.AvailableUntil.IsZero() && !t.AvailableUntil.After(t.AvailableFrom) {
		add(Invalid("available_until", "must be after available_from"))
	}
	if t.MediaAssetID != "" && !ValidID(t.MediaAssetID) {
		add(Invalid("media_asset_id", "must be 1 to %d letters, digits, '-' or '_'", MaxIDLen))
	}
	switch t.Kind {
	case KindMovie:
		if t.MediaAssetID == "" {
			add(Invalid("media_asset_id", "a movie needs a media asset"))
		}
		if len(t.Seasons) > 0 {
			add(Invalid("seasons", "a movie has no seasons"))
		}
	case KindSeries:
		add(validateSeasons(t.Seasons))
	}
	if len(errs) == 0 {
		return nil
	}
	return joinErrors(errs)
}

func validateSeasons(seasons []Season) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	numbers := map[int]bool{}
	episodeIDs := map[string]bool{}
	for i, s := range seasons {
		field := fmt.Sprintf("seasons[%d]", i)
		if s.Number < 1 || s.Number > 1000 {
			add(Invalid(field+".number", "must be between 1 and 1000"))
		}
		if numbers[s.Number] {
			add(Invalid(field+".number", "season %d is repeated", s.Number))
		}
		numbers[s.Number] = true
		add(checkText(field+".name", s.Name, false, MaxNameLen))
		epNumbers := map[int]bool{}
		for j, e := range s.Episodes {
			ef := fmt.Sprintf("%s.episodes[%d]", field, j)
			add(CheckID(ef+".id", e.ID))
			if episodeIDs[e.ID] {
				add(Invalid(ef+".id", "episode id %q is repeated", e.ID))
			}
			episodeIDs[e.ID] = true
			if e.Number < 1 || e.Number > 10000 {
				add(Invalid(ef+".number", "must be between 1 and 10000"))
			}
			if epNumbers[e.Number] {
				add(Invalid(ef+".number", "episode %d is repeated", e.Number))
			}
			epNumbers[e.Number] = true
			add(checkText(ef+".name", e.Name, true, MaxNameLen))
			add(checkText(ef+".synopsis", e.Synopsis, false, MaxSynopsisLen))
			if e.Duration < time.Second || e.Duration > 24*time.Hour {
				add(Invalid(ef+".duration_seconds", "must be between 1 second and 24 hours"))
			}
			if err := CheckID(ef+".media_asset_id", e.MediaAssetID); err != nil {
				add(err)
			}
		}
	}
	return joinErrors(errs)
}

// Validate checks a genre's id and name.
func (g Genre) Validate() error {
	return joinErrors([]error{
		CheckGenreID("id", g.ID),
		checkText("name", g.Name, true, 100),
	})
}

// joinErrors is errors.Join that returns nil for no errors and the error
// itself for one.
func joinErrors(errs []error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return joined(kept)
}

// joined is a list of errors that reads as "a; b; c" and unwraps to all of
// them (errors.Join writes one per line, which reads badly in a status).
type joined []error

func (j joined) Error() string {
	parts := make([]string, len(j))
	for i, err := range j {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joined) Unwrap() []error { return j }
