package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// samePaymentMethod reports whether card is the card pm was made from, as
// far as what is kept of it can tell.
func samePaymentMethod(pm domain.PaymentMethod, card domain.Card) bool {
	return pm.Brand == card.Brand() && pm.Last4 == card.Last4() && pm.ExpMonth == card.ExpMonth() && pm.ExpYear == card.ExpYear()
}

// createPaymentMethod tokenises card with the processor and stores what
// may be kept of it for accountID (creating the customer if needed).
// With a key, the call is idempotent: the same key answers the payment
// method it made, and a different card under it is
// ErrIdempotencyKeyReused.
func (s *Service) createPaymentMethod(ctx context.Context, accountID, key string, card domain.Card) (domain.PaymentMethod, error) {
	existing := func() (domain.PaymentMethod, bool, error) {
		if key == "" {
			return domain.PaymentMethod{}, false, nil
		}
		pm, err := s.store.PaymentMethodByKey(ctx, s.db, accountID, key)
		switch {
		case errors.Is(err, domain.ErrNotFound):
			return pm, false, nil
		case err != nil:
			return pm, true, err
		case !samePaymentMethod(pm, card):
			return pm, true, fmt.Errorf("payment method key %q: %w", key, domain.ErrIdempotencyKeyReused)
		}
		return pm, true, nil
	}
	if pm, done, err := existing(); done {
		return pm, err
	}
	tok, err := s.proc.Tokenize(ctx, card)
	if err != nil {
		return domain.PaymentMethod{}, processorError("tokenize", err)
	}
	now := s.now()
	pm := domain.PaymentMethod{
		ID:             newID(),
		AccountID:      accountID,
		Brand:          card.Brand(),
		Last4:          card.Last4(),
		ExpMonth:       card.ExpMonth(),
		ExpYear:        card.ExpYear(),
		Token:          tok.ID,
		TokenClass:     tok.Class,
		IdempotencyKey: key,
		CreatedAt:      now,
	}
	err = s.db.InTx(ctx, func(tx *storage.Tx) error {
		if _, err := s.store.EnsureCustomer(ctx, tx, accountID, newID(), now); err != nil {
			return err
		}
		return s.store.InsertPaymentMethod(ctx, tx, pm)
	})
	if errors.Is(err, store.ErrDuplicate) {
		// A concurrent call with the same key won.
		if got, done, err := existing(); done {
			return got, err
		}
	}
	if err != nil {
		return domain.PaymentMethod{}, err
	}
	return pm, nil
}

// processorError turns a processor failure into billing's error: a
// transient one (or a timeout) is ErrProcessorUnavailable, anything else
// an internal error.
func processorError(op string, err error) error {
	if errors.Is(err, processor.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("processor %s: %w: %w", op, domain.ErrProcessorUnavailable, err)
	}
	return fmt.Errorf("processor %s: %w", op, err)
}
