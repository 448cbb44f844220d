// Package domain is billing's model and its rules: money in integer minor
// units, plans and rental terms, payment cards (validation, brand, what may
// be kept of them), charges, refunds, invoices and page tokens. It imports
// no transport and no SQL.
//
// Card data rule: a Card holds the number and CVC only in memory, while a
// request is served. Nothing derived from them but the brand, the last four
// digits and the expiry is ever kept; Card's String, GoString, Format and
// LogValue print only those, and every error about a card names the field,
// never its value.
package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors of billing. Callers test them with errors.Is; the gRPC
// edge maps each to one status code and product reason.
var (
	// ErrInvalidArgument means an input is malformed or out of range. Every
	// *InvalidArgumentError matches it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidCard means a payment card fails validation (Luhn, length,
	// expiry, CVC). Every *CardError matches it (and ErrInvalidArgument).
	ErrInvalidCard = errors.New("invalid card")
	// ErrNotFound means the charge, payment method or other named entity
	// does not exist (or belongs to another account).
	ErrNotFound = errors.New("not found")
	// ErrIdempotencyKeyReused means a known idempotency key came back with
	// different arguments.
	ErrIdempotencyKeyReused = errors.New("idempotency key reused with different arguments")
	// ErrInProgress means a call with the same idempotency key (or, for a
	// refund, the charge it undoes) is still being processed; retry later
	// with the same key.
	ErrInProgress = errors.New("still in progress")
	// ErrProcessorUnavailable means the card processor could not be reached
	// or failed transiently; nothing was recorded and a retry with the same
	// idempotency key runs again.
	ErrProcessorUnavailable = errors.New("payment processor unavailable")
	// ErrOrderAlreadyCharged means the order already has a succeeded charge
	// made with another idempotency key.
	ErrOrderAlreadyCharged = errors.New("order already charged")
	// ErrCurrencyMismatch means two amounts of different currencies were
	// combined.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrOverflow means an amount left the int64 range.
	ErrOverflow = errors.New("amount overflow")
	// ErrRefundExceedsCharge means a refund would take the refunded total
	// above the charged amount.
	ErrRefundExceedsCharge = errors.New("refund exceeds the charge")
)

// InvalidArgumentError says which input field is wrong and why. Field uses
// the request's field names (amount.currency, page_token, ...).
type InvalidArgumentError struct {
	Field  string
	Reason string
}

// Invalid returns an *InvalidArgumentError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Error says which field is wrong and why.
func (e *InvalidArgumentError) Error() string { return "invalid " + e.Field + ": " + e.Reason }

// Is makes every InvalidArgumentError match ErrInvalidArgument.
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// CardError says which card field is wrong and why. Its text never holds
// the field's value.
type CardError struct {
	// Field is card_number, exp_month, exp_year or cvc.
	Field  string
	Reason string
}

// Error says which card field is wrong and why, never its value.
func (e *CardError) Error() string { return "invalid card " + e.Field + ": " + e.Reason }

// Is makes every CardError match ErrInvalidCard and ErrInvalidArgument.
func (e *CardError) Is(target error) bool {
	return target == ErrInvalidCard || target == ErrInvalidArgument
}

func cardErr(field, reason string) error { return &CardError{Field: field, Reason: reason} }

// FieldError is a field and why it is wrong, as the edge reports it.
type FieldError struct {
	Field  string
	Reason string
}

// FieldErrors returns every *InvalidArgumentError and *CardError inside
// err, following single (%w) and joined (errors.Join) wrapping, in order.
// Card fields are prefixed with cardField and a dot when it is not empty
// (the request's name for the card, "card" or "payment").
func FieldErrors(err error, cardField string) []FieldError {
	var out []FieldError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *InvalidArgumentError:
			out = append(out, FieldError{e.Field, e.Reason})
		case *CardError:
			f := e.Field
			if cardField != "" {
				f = cardField + "." + f
			}
			out = append(out, FieldError{f, e.Reason})
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
