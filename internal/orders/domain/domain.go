// Package domain is the orders model: an order for a plan or a rental,
// its statuses, the rules of a CreateOrder request, and the errors the
// service answers. It knows no transport and no SQL.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kinds of order.
const (
	KindPlan   = "plan"
	KindRental = "rental"
)

// Status of an order. An order is PENDING while its saga runs and ends
// COMPLETED, REJECTED (payment declined, nothing to undo) or FAILED
// (compensated: whatever was done was undone).
const (
	StatusPending   = "PENDING"
	StatusCompleted = "COMPLETED"
	StatusRejected  = "REJECTED"
	StatusFailed    = "FAILED"
)

// ValidStatus reports whether s is one of the statuses above.
func ValidStatus(s string) bool {
	switch s {
	case StatusPending, StatusCompleted, StatusRejected, StatusFailed:
		return true
	}
	return false
}

// Order is the purchase of a plan or the rental of a title.
type Order struct {
	ID        string
	AccountID string
	// IdempotencyKey is the client's key, unique per account.
	IdempotencyKey string
	// Fingerprint identifies the request the key was first used with (see
	// CreateRequest.Fingerprint).
	Fingerprint string
	Kind        string
	PlanID      string
	TitleID     string
	AmountMinor int64
	Currency    string
	Description string
	Status      string
	Reason      string
	SagaID      string
	// PaymentMethodID is billing's token of the card; the card itself is
	// never stored here.
	PaymentMethodID string
	ChargeID        string
	EntitlementID   string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// CompletedAt is zero while PENDING.
	CompletedAt time.Time
}

// Card is a payment card as the customer typed it. It is passed on to
// billing to be tokenised and never stored or logged by orders.
type Card struct {
	Number   string
	ExpMonth int
	ExpYear  int
	CVC      string
}

// Last4 returns the card number's last four digits.
func (c Card) Last4() string {
	if len(c.Number) < 4 {
		return c.Number
	}
	return c.Number[len(c.Number)-4:]
}

// CreateRequest is a CreateOrder request, once the caller is known.
type CreateRequest struct {
	AccountID      string
	IdempotencyKey string
	PlanID         string
	TitleID        string
	Card           Card
}

// Kind is KindPlan or KindRental.
func (r CreateRequest) Kind() string {
	if r.TitleID != "" {
		return KindRental
	}
	return KindPlan
}

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 128

var (
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	digitsRE = regexp.MustCompile(`^[0-9]+$`)
)

// Normalize strips the spaces and dashes people type in card numbers.
func (r *CreateRequest) Normalize() {
	r.Card.Number = strings.NewReplacer(" ", "", "-", "").Replace(r.Card.Number)
	r.Card.CVC = strings.TrimSpace(r.Card.CVC)
}

// Validate checks the request's shape; billing checks the card itself
// (Luhn, expiry) when it tokenises it. Every problem is reported, each as
// a FieldError wrapped in ErrInvalidArgument.
func (r CreateRequest) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch k := r.IdempotencyKey; {
	case k == "":
		bad("idempotency_key", "is required (send the Idempotency-Key header)")
	case len(k) > MaxKeyLen || !printable(k):
		bad("idempotency_key", "must be 1 to %d visible ASCII characters", MaxKeyLen)
	}
	switch {
	case r.PlanID == "" && r.TitleID == "":
		bad("plan_id", "one of plan_id and title_id is required")
	case r.PlanID != "" && r.TitleID != "":
		bad("plan_id", "only one of plan_id and title_id may be set")
	case r.PlanID != "" && !idRE.MatchString(r.PlanID):
		bad("plan_id", "is not a plan id")
	case r.TitleID != "" && !idRE.MatchString(r.TitleID):
		bad("title_id", "is not a title id")
	}
	c := r.Card
	if n := len(c.Number); n < 12 || n > 19 || !digitsRE.MatchString(c.Number) {
		bad("payment.card_number", "must be 12 to 19 digits")
	}
	if c.ExpMonth < 1 || c.ExpMonth > 12 {
		bad("payment.exp_month", "must be 1 to 12")
	}
	if c.ExpYear < 2000 || c.ExpYear > 2199 {
		bad("payment.exp_year", "must have four digits")
	}
	if len(c.CVC) != 3 || !digitsRE.MatchString(c.CVC) {
		bad("payment.cvc", "must be 3 digits")
	}
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: errs}
}

// Fingerprint identifies what was asked for under an idempotency key: the
// item and the card's last four digits and expiry (never the number or
// the CVC). The same key with another fingerprint is
// ErrIdempotencyKeyReused.
func (r CreateRequest) Fingerprint() string {
	h := sha256.Sum256([]byte(strings.Join([]string{
		r.Kind(), r.PlanID, r.TitleID, r.Card.Last4(), fmt.Sprint(r.Card.ExpMonth), fmt.Sprint(r.Card.ExpYear),
	}, "\x00")))
	return hex.EncodeToString(h[:16])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Errors of the orders service; the gRPC edge maps each to a status.
var (
	// ErrInvalidArgument wraps request validation errors (see
	// ValidationError).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidCard: billing refused the card (Luhn, expiry, CVC).
	ErrInvalidCard = errors.New("invalid card")
	// ErrNotFound: no such order (or not the caller's), plan or title.
	ErrNotFound = errors.New("not found")
	// ErrOrderInProgress: a plan order of the account is still PENDING.
	ErrOrderInProgress = errors.New("a plan order of this account is in progress")
	// ErrIdempotencyKeyReused: the key was used for another request.
	ErrIdempotencyKeyReused = errors.New("idempotency key already used for another request")
	// ErrNotRentable: the title is not offered for rent.
	ErrNotRentable = errors.New("title is not rentable")
	// ErrUnavailable: a dependency (billing, catalog) did not answer.
	ErrUnavailable = errors.New("dependency unavailable")
)

// FieldError is one invalid field.
type FieldError struct {
	Field  string
	Reason string
}

// Error names the field and what is wrong with it.
func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// ValidationError lists the invalid fields of a request; it wraps
// ErrInvalidArgument.
type ValidationError struct{ Fields []error }

// Error lists the invalid fields.
func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns ErrInvalidArgument and the field errors.
func (e *ValidationError) Unwrap() []error { return append([]error{ErrInvalidArgument}, e.Fields...) }

// Invalid returns a validation error of one field.
func Invalid(field, reason string) error {
	return &ValidationError{Fields: []error{&FieldError{Field: field, Reason: reason}}}
}

// FieldErrors returns the invalid fields in err.
func FieldErrors(err error) []*FieldError {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]*FieldError, 0, len(ve.Fields))
	for _, f := range ve.Fields {
		var fe *FieldError
		if errors.As(f, &fe) {
			out = append(out, fe)
		}
	}
	return out
}
