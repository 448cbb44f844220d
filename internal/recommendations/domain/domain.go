// Package domain is the recommendations model: the service's projection of
// the catalog (Title) and of viewing (View), the rules that fold viewing
// events into that projection, trending with time decay, item-to-item
// cosine similarity learned from co-viewing, and the rows that versions v1
// and v2 answer. It knows no SQL and no transport.
//
// Maturity levels and ratings are the catalog's (package
// internal/catalog/domain): a row never holds a title its profile's level
// does not allow, nor one outside its availability window.
package domain

import (
	"errors"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
)

// Errors of the recommendations service, mapped to gRPC statuses in one
// place at the service edge.
var (
	// ErrInvalidArgument reports a malformed request; errors wrapping it
	// are *FieldError.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrProfileNotFound reports a profile that does not exist or belongs
	// to another account.
	ErrProfileNotFound = errors.New("no such profile")
	// ErrUnavailable reports a dependency (the profiles service) that could
	// not answer.
	ErrUnavailable = errors.New("dependency unavailable")
)

// FieldError is an invalid request field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Unwrap makes a FieldError match ErrInvalidArgument.
func (e *FieldError) Unwrap() error { return ErrInvalidArgument }

// Invalid returns a *FieldError for field.
func Invalid(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// Version is a recommendations model.
type Version string

// The versions the service ships.
const (
	// V1 answers trending and popular-by-genre rows, the same for every
	// profile of a maturity level.
	V1 Version = "v1"
	// V2 answers rows personalised by item-to-item similarity, falling back
	// to V1's rows for a profile without history.
	V2 Version = "v2"
)

// ParseVersion returns the version named s ("v1" or "v2").
func ParseVersion(s string) (Version, error) {
	switch v := Version(s); v {
	case V1, V2:
		return v, nil
	}
	return "", Invalid("version", "want v1 or v2, got "+quote(s))
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}

// Title is a title as this service knows it, from the catalog's
// marquee.catalog.title_upserted events.
type Title struct {
	ID         string
	Name       string
	Kind       string // "movie" or "series"
	ArtworkURL string
	Rating     catalog.Rating
	// Genres are genre ids, the primary genre first.
	Genres []string
	Year   int
	// AvailableFrom and AvailableUntil bound the availability window
	// [from, until); a zero AvailableUntil means no end. When the event
	// carried no window (zero AvailableFrom), Available, the catalog's
	// answer when it published, decides.
	AvailableFrom  time.Time
	AvailableUntil time.Time
	Available      bool
	// LastEpisodeID is, for a series, the last episode of its last season:
	// completing it finishes the series. Empty when unknown.
	LastEpisodeID string
	// Version orders upserts of the same title: the time of the event it
	// came from. An older event never overwrites a newer one.
	Version time.Time
}

// AvailableAt reports whether the title can be watched at now.
func (t Title) AvailableAt(now time.Time) bool {
	if t.AvailableFrom.IsZero() {
		return t.Available && (t.AvailableUntil.IsZero() || now.Before(t.AvailableUntil))
	}
	if now.Before(t.AvailableFrom) {
		return false
	}
	return t.AvailableUntil.IsZero() || now.Before(t.AvailableUntil)
}

// VisibleTo reports whether a profile at level may be recommended the
// title at now: its rating is allowed and it is available.
func (t Title) VisibleTo(level catalog.Level, now time.Time) bool {
	return catalog.Allows(level, t.Rating) && t.AvailableAt(now)
}
