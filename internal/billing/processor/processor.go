// Package processor is billing's port to the card processor: the Processor
// interface billing charges and refunds through, and Simulator, an
// in-process processor that honours the product's test cards.
//
// The contract billing relies on:
//   - Tokenize turns a card into an opaque token (and a class to keep with
//     it); billing stores the token, never the card.
//   - Charge and Refund are idempotent per IdempotencyKey: a repeat with the
//     same key answers the first result and moves no more money. Billing
//     repeats a call with the same key after a crash or a transient error.
//   - A decline is a result (Result.Approved false with a DeclineCode), not
//     an error. An error wrapping ErrUnavailable is transient: nothing
//     happened and the same call may be retried.
package processor

import (
	"context"
	"errors"

	"github.com/marquee-tv/marquee/internal/billing/domain"
)

// ErrUnavailable reports a transient processor failure: the call had no
// effect and may be retried with the same idempotency key.
var ErrUnavailable = errors.New("processor unavailable")

// Token is the processor's reference to a tokenised card.
type Token struct {
	// ID is opaque and random; it carries nothing of the card.
	ID string
	// Class is what the processor asks its client to keep with the token
	// so that it can decide outcomes statelessly (the simulator's test-card
	// class). It is never card data.
	Class string
}

// ChargeRequest asks to take Amount from the card behind Token.
type ChargeRequest struct {
	IdempotencyKey string
	Token          Token
	Amount         domain.Money
	Description    string
}

// ChargeResult is the processor's answer to a charge.
type ChargeResult struct {
	// Approved is true when the money was taken.
	Approved bool
	// DeclineCode says why not, when not approved.
	DeclineCode domain.DeclineCode
	// Ref is the processor's id of an approved charge.
	Ref string
}

// RefundRequest asks to give back Amount of the approved charge Ref (a
// void when the charge was never settled).
type RefundRequest struct {
	IdempotencyKey string
	ChargeRef      string
	Amount         domain.Money
}

// RefundResult is the processor's answer to a refund.
type RefundResult struct {
	// Ref is the processor's id of the refund.
	Ref string
}

// Processor is a card processor.
type Processor interface {
	// Tokenize registers card and returns its token.
	Tokenize(ctx context.Context, card domain.Card) (Token, error)
	// Charge takes money; see the package contract.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	// Refund gives money back; see the package contract.
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}
