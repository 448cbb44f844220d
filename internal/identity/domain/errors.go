// Package domain holds the identity service's model and rules, free of
// transport and SQL: accounts and their roles, the email and password
// policies, API-key and refresh-token formats, login throttling, and the
// life cycle of the keys that sign access tokens.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the identity service. Callers test them with
// errors.Is; the gRPC edge maps each to one status code and reason.
var (
	// ErrInvalidArgument means an input is malformed or out of range. Every
	// *FieldError matches it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound means the named entity does not exist (or is not the
	// caller's).
	ErrNotFound = errors.New("not found")
	// ErrEmailTaken means an account with the email already exists.
	ErrEmailTaken = errors.New("email is already registered")
	// ErrAccountExists means an account with the id already exists.
	ErrAccountExists = errors.New("account already exists")
	// ErrInvalidCredentials means the email or the password is wrong; which
	// one is never told.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidRefreshToken means the refresh token is unknown, expired or
	// malformed, or its family was revoked.
	ErrInvalidRefreshToken = errors.New("invalid refresh token")
	// ErrRefreshTokenReused means an already rotated refresh token was
	// presented: its whole family has been revoked.
	ErrRefreshTokenReused = errors.New("refresh token was already used; the session is revoked")
	// ErrInvalidAPIKey means an API key is unknown, malformed, revoked or
	// expired, or its account is gone.
	ErrInvalidAPIKey = errors.New("invalid API key")
	// ErrForbidden means the caller may not do what it asked.
	ErrForbidden = errors.New("forbidden")
	// ErrTooManyAPIKeys means the account already has MaxActiveAPIKeys
	// active keys.
	ErrTooManyAPIKeys = errors.New("too many active API keys")
	// ErrConflict means a concurrent change won a race (for example two
	// replicas rotating signing keys at once); reload and retry.
	ErrConflict = errors.New("concurrent change")
	// ErrThrottled is matched by every *ThrottledError.
	ErrThrottled = errors.New("too many failed login attempts")
)

// FieldError says which input field is wrong and why, using the request's
// field names.
type FieldError struct {
	Field  string
	Reason string
}

// Invalid returns a *FieldError for field.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Error says which field is wrong and why.
func (e *FieldError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Is makes every FieldError match ErrInvalidArgument.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

// FieldErrors returns every *FieldError inside err, following both %w and
// errors.Join wrapping, in order.
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

// ThrottledError refuses a login attempt over a throttling limit; the
// attempt may be retried after RetryAfter.
type ThrottledError struct {
	RetryAfter time.Duration
}

// Error says how long to wait.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed login attempts; retry in %s", e.RetryAfter)
}

// Is makes every ThrottledError match ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }
