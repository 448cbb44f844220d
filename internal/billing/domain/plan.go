package domain

import (
	"fmt"
	"time"
)

// Plan is a monthly subscription.
type Plan struct {
	// ID is "basic", "standard" or "premium".
	ID          string
	Name        string
	Price       Money
	MaxStreams  int
	Period      string
	Description string
}

// BillingPeriodMonthly is the period of every plan.
const BillingPeriodMonthly = "monthly"

// The plan ids.
const (
	PlanBasic    = "basic"
	PlanStandard = "standard"
	PlanPremium  = "premium"
)

// Plans returns the subscription plans, cheapest first (a fresh slice).
func Plans() []Plan {
	return []Plan{
		{ID: PlanBasic, Name: "Basic", Price: NewMoney(799, USD), MaxStreams: 1, Period: BillingPeriodMonthly,
			Description: "Watch on one screen at a time."},
		{ID: PlanStandard, Name: "Standard", Price: NewMoney(1549, USD), MaxStreams: 2, Period: BillingPeriodMonthly,
			Description: "Watch on two screens at a time."},
		{ID: PlanPremium, Name: "Premium", Price: NewMoney(2299, USD), MaxStreams: 4, Period: BillingPeriodMonthly,
			Description: "Watch on four screens at a time."},
	}
}

// PlanByID returns the plan with id, or an error matching ErrNotFound.
func PlanByID(id string) (Plan, error) {
	for _, p := range Plans() {
		if p.ID == id {
			return p, nil
		}
	}
	return Plan{}, fmt.Errorf("plan %q: %w", id, ErrNotFound)
}

// Rental is the price and length of renting one rentable title.
type Rental struct {
	Price    Money
	Duration time.Duration
}

// RentalTerms returns the rental price (399 USD minor units) and length
// (48 hours).
func RentalTerms() Rental {
	return Rental{Price: NewMoney(399, USD), Duration: 48 * time.Hour}
}

// InvoiceLine is the invoice description of a plan, for example
// "Premium plan, monthly".
func (p Plan) InvoiceLine() string { return p.Name + " plan, " + p.Period }
