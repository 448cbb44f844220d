package domain

import (
	"errors"
	"fmt"
	"regexp"
)

// Sentinel errors of playback. Callers test them with errors.Is; the gRPC
// edge (package playback, errors.go) maps each to one status code and
// product reason.
var (
	// ErrInvalidArgument means an input is malformed or out of range. Every
	// *InvalidArgumentError matches it and names the offending field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound means the session, profile, title or entitlement does not
	// exist (or belongs to another account, which reads the same).
	ErrNotFound = errors.New("not found")
	// ErrNotEntitled means no active plan or rental covers the title.
	ErrNotEntitled = errors.New("no plan or rental covers this title")
	// ErrMaturityRestricted means the title is above the profile's
	// maturity level.
	ErrMaturityRestricted = errors.New("this title is above the profile's maturity level")
	// ErrTooManyStreams means every concurrent stream the account's plan
	// allows is in use.
	ErrTooManyStreams = errors.New("every stream your plan allows is in use")
	// ErrTitleUnavailable means the title is outside its availability
	// window (or cannot be rented), so it can be neither rented nor played.
	ErrTitleUnavailable = errors.New("title is not available")
	// ErrSessionEnded means the playback session was stopped or its
	// heartbeats stopped arriving.
	ErrSessionEnded = errors.New("playback session ended")
	// ErrIdempotencyKeyReused means an idempotency key already used for a
	// request with other arguments.
	ErrIdempotencyKeyReused = errors.New("idempotency key already used with other arguments")
	// ErrMediaUnavailable means the title's media asset is not one this
	// service can deliver.
	ErrMediaUnavailable = errors.New("media not available")
	// ErrUnavailable means a dependency (catalog, profiles) failed; a retry
	// may succeed.
	ErrUnavailable = errors.New("dependency unavailable")
)

// InvalidArgumentError says which input field is wrong and why. Field uses
// the request's field names (position_seconds, page_token, ...).
type InvalidArgumentError struct {
	Field  string
	Reason string
}

// Invalid returns an *InvalidArgumentError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (e *InvalidArgumentError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Is makes every InvalidArgumentError match ErrInvalidArgument.
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// FieldErrors returns every *InvalidArgumentError inside err, following
// both single (%w) and joined (errors.Join) wrapping, in order.
func FieldErrors(err error) []*InvalidArgumentError {
	var out []*InvalidArgumentError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *InvalidArgumentError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// MaxIDLen bounds every id this service accepts.
const MaxIDLen = 128

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// ValidID reports whether s is an acceptable id: 1 to MaxIDLen letters,
// digits, '.', '_', ':' and '-', starting with a letter or digit.
func ValidID(s string) bool { return len(s) <= MaxIDLen && idPattern.MatchString(s) }

// CheckID returns an invalid-argument error for field unless id is valid.
func CheckID(field, id string) error {
	switch {
	case id == "":
		return Invalid(field, "is required")
	case !ValidID(id):
		return Invalid(field, "must be at most %d letters, digits, '.', '_', ':' or '-'", MaxIDLen)
	}
	return nil
}

// CheckOptionalID is CheckID for a field that may be empty.
func CheckOptionalID(field, id string) error {
	if id == "" {
		return nil
	}
	return CheckID(field, id)
}

// MaxKeyLen bounds idempotency keys and the saga and order ids that travel
// with them.
const MaxKeyLen = 200

// ValidKey reports whether s is an acceptable idempotency key (or saga or
// order id): 1 to MaxKeyLen printable ASCII characters without spaces, as
// in "<saga id>/<step>/action".
func ValidKey(s string) bool {
	if s == "" || len(s) > MaxKeyLen {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// CheckKey returns an invalid-argument error for field unless key is a
// valid key.
func CheckKey(field, key string) error {
	switch {
	case key == "":
		return Invalid(field, "is required")
	case !ValidKey(key):
		return Invalid(field, "must be at most %d printable ASCII characters without spaces", MaxKeyLen)
	}
	return nil
}

// CheckOptionalKey is CheckKey for a field that may be empty.
func CheckOptionalKey(field, key string) error {
	if key == "" {
		return nil
	}
	return CheckKey(field, key)
}
