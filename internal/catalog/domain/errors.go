package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors of the catalog. Callers test them with errors.Is; the
// gRPC edge maps each to one status code.
var (
	// ErrNotFound means the title (or another named entity) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument means an input is malformed or out of range. Every
	// *InvalidArgumentError matches it, and carries the offending field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrMaturityRestricted means the title exists but is above the maturity
	// level the caller asked for.
	ErrMaturityRestricted = errors.New("title is above the maturity level")
	// ErrUnavailable means a dependency (the profile lookup) failed; retrying
	// later may succeed.
	ErrUnavailable = errors.New("dependency unavailable")
)

// InvalidArgumentError says which input field is wrong and why. Field uses
// the request's field names (page_size, ids[3], ...).
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
