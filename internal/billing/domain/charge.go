package domain

import (
	"fmt"
	"time"
)

// ChargeStatus is the outcome of a charge.
type ChargeStatus string

// Charge statuses.
const (
	// ChargeSucceeded: the money was taken.
	ChargeSucceeded ChargeStatus = "succeeded"
	// ChargeDeclined: the processor declined the card; a business result,
	// recorded like a success so that a duplicate answers the same.
	ChargeDeclined ChargeStatus = "declined"
	// ChargeCancelled: the charge's compensation (Refund) came first; the
	// card was not touched, or the authorisation was voided.
	ChargeCancelled ChargeStatus = "cancelled"
)

// DeclineCode says why a processor declined a card.
type DeclineCode string

// Decline codes.
const (
	DeclineCardDeclined      DeclineCode = "card_declined"
	DeclineInsufficientFunds DeclineCode = "insufficient_funds"
)

// PaymentMethod is a stored card: brand, last four digits, expiry and the
// processor's token. It never holds the number or the CVC.
type PaymentMethod struct {
	ID        string
	AccountID string
	Brand     Brand
	Last4     string
	ExpMonth  int
	ExpYear   int
	// Token is the processor's opaque reference to the card.
	Token string
	// TokenClass is what the processor asked to keep with the token to
	// decide outcomes without the number (the simulator's test-card
	// class); it is never card data.
	TokenClass string
	// IdempotencyKey made it, if any.
	IdempotencyKey string
	CreatedAt      time.Time
}

// Charge is money taken, or attempted, from a payment method.
type Charge struct {
	ID             string
	IdempotencyKey string
	SagaID         string
	OrderID        string
	AccountID      string
	Amount         Money
	Description    string
	Status         ChargeStatus
	DeclineCode    DeclineCode
	// PaymentMethodID is empty for a charge cancelled before its card was
	// looked at.
	PaymentMethodID string
	// ProcessorRef is the processor's id of the charge (empty unless
	// succeeded).
	ProcessorRef string
	// Refunded is the total refunded so far, in Amount's currency.
	Refunded  Money
	CreatedAt time.Time
}

// Refundable returns what is left to refund of c: nothing unless it
// succeeded.
func (c Charge) Refundable() (Money, error) {
	if c.Status != ChargeSucceeded {
		return NewMoney(0, c.Amount.Currency), nil
	}
	return RefundRemaining(c.Amount, c.Refunded)
}

// RefundRemaining returns charged minus refunded, checking that refunded
// is within 0..charged in the same currency.
func RefundRemaining(charged, refunded Money) (Money, error) {
	if refunded.Minor < 0 || refunded.Minor > charged.Minor {
		return Money{}, fmt.Errorf("%w: refunded %s of %s", ErrRefundExceedsCharge, refunded, charged)
	}
	return charged.Sub(refunded)
}

// ApplyRefund returns the refunded total after refunding amount of a
// charge of charged that has refunded so far: amount must be positive, in
// the charge's currency, and not take the total above charged.
func ApplyRefund(charged, refunded, amount Money) (Money, error) {
	if !amount.IsPositive() {
		return Money{}, fmt.Errorf("%w: refund amount %s must be positive", ErrInvalidArgument, amount)
	}
	left, err := RefundRemaining(charged, refunded)
	if err != nil {
		return Money{}, err
	}
	cmp, err := amount.Cmp(left)
	if err != nil {
		return Money{}, err
	}
	if cmp > 0 {
		return Money{}, fmt.Errorf("%w: %s asked, %s left of %s", ErrRefundExceedsCharge, amount, left, charged)
	}
	return refunded.Add(amount)
}

// RefundStatus is the outcome of a refund.
type RefundStatus string

// Refund statuses.
const (
	// RefundSucceeded: money went back to the card.
	RefundSucceeded RefundStatus = "succeeded"
	// RefundNothingToRefund: there was no succeeded charge (declined,
	// cancelled, already refunded, or never made); recorded so that a
	// later Charge with that key is cancelled.
	RefundNothingToRefund RefundStatus = "nothing_to_refund"
)

// Refund is money given back for a charge, or the record that there was
// nothing to give back.
type Refund struct {
	ID             string
	IdempotencyKey string
	SagaID         string
	OrderID        string
	AccountID      string
	// ChargeIdempotencyKey is the key of the charge it undoes.
	ChargeIdempotencyKey string
	// ChargeID is empty when there was nothing to refund.
	ChargeID     string
	Amount       Money
	Status       RefundStatus
	Reason       string
	ProcessorRef string
	CreatedAt    time.Time
}

// InvoiceStatus summarises an invoice's refunds.
type InvoiceStatus string

// Invoice statuses.
const (
	InvoicePaid              InvoiceStatus = "paid"
	InvoiceRefunded          InvoiceStatus = "refunded"
	InvoicePartiallyRefunded InvoiceStatus = "partially_refunded"
)

// Invoice is what the customer sees for a succeeded charge.
type Invoice struct {
	ID              string
	AccountID       string
	OrderID         string
	ChargeID        string
	Description     string
	Amount          Money
	Refunded        Money
	PaymentMethodID string
	IssuedAt        time.Time
}

// Status is paid with nothing refunded, refunded when all of it was,
// partially_refunded in between.
func (i Invoice) Status() InvoiceStatus {
	switch {
	case i.Refunded.Minor <= 0:
		return InvoicePaid
	case i.Refunded.Minor >= i.Amount.Minor:
		return InvoiceRefunded
	}
	return InvoicePartiallyRefunded
}
