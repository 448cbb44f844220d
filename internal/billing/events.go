package billing

import (
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
)

// Event subjects billing publishes through its outbox, in the transaction
// that records the fact.
const (
	// ChargeSucceededSubject: a charge took money. Data: ChargeEvent.
	ChargeSucceededSubject = "marquee.billing.charge_succeeded"
	// ChargeDeclinedSubject: the processor declined a card. Data:
	// ChargeEvent with decline_code.
	ChargeDeclinedSubject = "marquee.billing.charge_declined"
	// RefundedSubject: money went back to a card. Data: RefundEvent.
	RefundedSubject = "marquee.billing.refunded"
)

// MoneyJSON is an amount in events: integer minor units and currency.
type MoneyJSON struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

func moneyJSON(m domain.Money) MoneyJSON {
	return MoneyJSON{AmountMinor: m.Minor, Currency: string(m.Currency)}
}

// CardJSON is what events say of a card: brand and last four digits only.
type CardJSON struct {
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// ChargeEvent is the data of charge_succeeded and charge_declined; its
// CloudEvents subject is the order id.
type ChargeEvent struct {
	ChargeID       string    `json:"charge_id"`
	OrderID        string    `json:"order_id"`
	SagaID         string    `json:"saga_id"`
	AccountID      string    `json:"account_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	Amount         MoneyJSON `json:"amount"`
	Description    string    `json:"description"`
	Status         string    `json:"status"`
	DeclineCode    string    `json:"decline_code,omitempty"`
	Card           CardJSON  `json:"card"`
	CreatedAt      time.Time `json:"created_at"`
}

// RefundEvent is the data of refunded; its CloudEvents subject is the
// order id.
type RefundEvent struct {
	RefundID  string    `json:"refund_id"`
	ChargeID  string    `json:"charge_id"`
	OrderID   string    `json:"order_id"`
	SagaID    string    `json:"saga_id"`
	AccountID string    `json:"account_id"`
	Amount    MoneyJSON `json:"amount"`
	Reason    string    `json:"reason"`
	Card      CardJSON  `json:"card"`
	CreatedAt time.Time `json:"created_at"`
}
