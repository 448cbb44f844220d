package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors of the profiles service. Callers test them with
// errors.Is; the gRPC edge maps each to one status code.
var (
	// ErrNotFound means the profile does not exist or belongs to another
	// account: the two are indistinguishable on purpose.
	ErrNotFound = errors.New("profile not found")
	// ErrInvalidArgument means an input is malformed or out of range. Every
	// *FieldError matches it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrProfileLimit means the account already has MaxProfiles profiles.
	ErrProfileLimit = errors.New("the account has the most profiles allowed")
	// ErrNameTaken means another profile of the account has the same name,
	// compared case-insensitively.
	ErrNameTaken = errors.New("another profile of the account has this name")
	// ErrLastProfile means the profile is the account's only one, which
	// cannot be deleted.
	ErrLastProfile = errors.New("an account keeps at least one profile")
	// ErrTitleNotFound means the catalog has no such title.
	ErrTitleNotFound = errors.New("title not found")
	// ErrMaturityRestricted means the title is rated above the profile's
	// maturity level.
	ErrMaturityRestricted = errors.New("title is above the profile's maturity level")
	// ErrUnavailable means a dependency (the catalog) failed; retrying
	// later may succeed.
	ErrUnavailable = errors.New("dependency unavailable")
)

// FieldError says which input field is wrong and why. Field uses the
// request's field names (name, maturity_level, page_token, ...).
type FieldError struct {
	Field  string
	Reason string
}

// Invalid returns a *FieldError for field.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Is makes every FieldError match ErrInvalidArgument.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

// FieldErrors returns every *FieldError inside err, following both single
// (%w) and joined (errors.Join) wrapping, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *FieldError:
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
