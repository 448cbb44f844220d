package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// Ids and keys of the demo data billing seeds.
const (
	// DemoSubscriptionOrderID is the order of the demo viewer's seeded
	// subscription charge.
	DemoSubscriptionOrderID = "00000000-0000-4000-8000-0000000000b1"
	// DemoSagaID is the saga id under which the seeded charge is recorded
	// behind the barrier, like any other.
	DemoSagaID = "seed-demo-subscription"
	// demoCardKey and demoChargeKey make seeding idempotent.
	demoCardKey   = "seed:demo-card"
	demoChargeKey = "seed:demo-subscription"
)

// Seed gives the demo account (seed.DemoAccountID) a customer, a visa
// ending 4242 and a paid invoice for its plan (seed.DemoPlan). It is
// idempotent: safe on every start and from several instances at once. The
// seeded charge publishes no event: it is history, not news.
func (s *Service) Seed(ctx context.Context) error {
	now := s.now()
	pm, err := s.store.PaymentMethodByKey(ctx, s.db, seed.DemoAccountID, demoCardKey)
	if errors.Is(err, domain.ErrNotFound) {
		card, cerr := domain.ParseCard(processor.CardApproved, 12, now.Year()+4, "123", now)
		if cerr != nil {
			return fmt.Errorf("billing seed: %w", cerr)
		}
		pm, err = s.createPaymentMethod(ctx, seed.DemoAccountID, demoCardKey, card)
	}
	if err != nil {
		return fmt.Errorf("billing seed: payment method: %w", err)
	}
	if _, err := s.store.ChargeByKey(ctx, s.db, demoChargeKey); err == nil {
		return nil
	} else if !errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("billing seed: %w", err)
	}
	plan, err := domain.PlanByID(seed.DemoPlan)
	if err != nil {
		return fmt.Errorf("billing seed: %w", err)
	}
	c := domain.Charge{
		ID:              newID(),
		IdempotencyKey:  demoChargeKey,
		SagaID:          DemoSagaID,
		OrderID:         DemoSubscriptionOrderID,
		AccountID:       seed.DemoAccountID,
		Amount:          plan.Price,
		Description:     plan.InvoiceLine(),
		Status:          domain.ChargeSucceeded,
		PaymentMethodID: pm.ID,
		ProcessorRef:    "ch_seed_demo_subscription",
		Refunded:        domain.NewMoney(0, plan.Price.Currency),
		CreatedAt:       now,
	}
	_, err = barrier.Action(ctx, s.db, DemoSagaID, demoChargeKey, func(tx *storage.Tx) ([]byte, error) {
		if err := s.store.InsertCharge(ctx, tx, c); err != nil {
			return nil, err
		}
		inv := domain.Invoice{
			ID: newID(), AccountID: c.AccountID, OrderID: c.OrderID, ChargeID: c.ID, Description: c.Description,
			Amount: c.Amount, PaymentMethodID: pm.ID, IssuedAt: c.CreatedAt,
		}
		if err := s.store.InsertInvoice(ctx, tx, inv); err != nil {
			return nil, err
		}
		return []byte(c.ID), nil
	})
	if err != nil && !errors.Is(err, store.ErrDuplicate) {
		return fmt.Errorf("billing seed: charge: %w", err)
	}
	s.log.InfoContext(ctx, "billing seeded the demo subscription", "plan", plan.ID, "amount", plan.Price.String())
	return nil
}
