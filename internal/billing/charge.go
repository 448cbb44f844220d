package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// chargeInput is a validated Charge request.
type chargeInput struct {
	key, orderID, sagaID, accountID string
	amount                          domain.Money
	description                     string
	// Exactly one of paymentMethodID and card is set.
	paymentMethodID string
	card            *domain.Card
}

// cardKey is the idempotency key of the payment method a Charge with an
// inline card creates, so that its retries reuse it.
func cardKey(chargeKey string) string { return "charge:" + chargeKey }

// voidKey is the processor idempotency key of voiding a charge that its
// compensation overtook.
func voidKey(chargeKey string) string { return "void:" + chargeKey }

// refundKey is the processor idempotency key of refunding a charge: one
// per charge, so that concurrent Refunds of it move money once.
func refundKey(chargeKey string) string { return "refund:" + chargeKey }

// sameCharge reports whether c was made by a request with in's arguments.
func (s *Service) sameCharge(ctx context.Context, c domain.Charge, in chargeInput) (bool, error) {
	if c.SagaID != in.sagaID || c.OrderID != in.orderID || c.AccountID != in.accountID ||
		c.Amount != in.amount || c.Description != in.description {
		return false, nil
	}
	if c.PaymentMethodID == "" {
		return true, nil // cancelled before its source was looked at
	}
	if in.paymentMethodID != "" {
		return c.PaymentMethodID == in.paymentMethodID, nil
	}
	pm, err := s.store.PaymentMethod(ctx, s.db, c.PaymentMethodID)
	if err != nil {
		return false, err
	}
	return samePaymentMethod(pm, *in.card), nil
}

// errRecorded rolls back the transaction that took a charge's key when
// the charge turns out to be recorded already.
var errRecorded = errors.New("billing: charge already recorded")

// recorded is what billing already knows of a Charge's key: the charge
// made with it, the refunds of it (its compensation came first), or the
// order's succeeded charge made under another key.
type recorded struct {
	charge      *domain.Charge
	refunds     []domain.Refund
	orderCharge *domain.Charge
}

// lookup reads what is recorded of in's key.
func (s *Service) lookup(ctx context.Context, q storage.Queryer, in chargeInput) (recorded, error) {
	var r recorded
	c, err := s.store.ChargeByKey(ctx, q, in.key)
	switch {
	case err == nil:
		r.charge = &c
		return r, nil
	case !errors.Is(err, domain.ErrNotFound):
		return r, err
	}
	if r.refunds, err = s.store.RefundsOfChargeKey(ctx, q, in.key); err != nil || len(r.refunds) > 0 {
		return r, err
	}
	other, err := s.store.SucceededChargeOfOrder(ctx, q, in.orderID)
	switch {
	case err == nil && other.IdempotencyKey == in.key:
		r.charge = &other // recorded between the two reads
	case err == nil:
		r.orderCharge = &other
	case !errors.Is(err, domain.ErrNotFound):
		return r, err
	}
	return r, nil
}

// answer answers a Charge from what is recorded; done is false when
// nothing is, and the charge is to be made.
func (s *Service) answer(ctx context.Context, in chargeInput, r recorded) (c domain.Charge, done bool, err error) {
	switch {
	case r.charge != nil:
		c = *r.charge
		same, err := s.sameCharge(ctx, c, in)
		if err != nil {
			return c, true, err
		}
		if !same {
			return c, true, fmt.Errorf("charge key %q: %w", in.key, domain.ErrIdempotencyKeyReused)
		}
		if c.Status == domain.ChargeCancelled && c.ProcessorRef != "" {
			// Approved after its Refund: answered only once voided.
			if err := s.void(ctx, in.voidInput(), c.ProcessorRef); err != nil {
				return c, true, err
			}
		}
		return c, true, nil
	case len(r.refunds) > 0:
		if rf := r.refunds[0]; rf.SagaID != in.sagaID || rf.OrderID != in.orderID {
			return c, true, fmt.Errorf("charge key %q was refunded for another saga: %w", in.key, domain.ErrIdempotencyKeyReused)
		}
		c, err := s.recordCancelled(ctx, in, "", "")
		return c, true, err
	case r.orderCharge != nil:
		return c, true, fmt.Errorf("order %q by charge %s: %w", in.orderID, r.orderCharge.ID, domain.ErrOrderAlreadyCharged)
	}
	return c, false, nil
}

// recordedCharge answers a Charge from what is recorded now.
func (s *Service) recordedCharge(ctx context.Context, in chargeInput) (domain.Charge, bool, error) {
	r, err := s.lookup(ctx, s.db, in)
	if err != nil {
		return domain.Charge{}, true, err
	}
	return s.answer(ctx, in, r)
}

// recordCancelled records the charge of in as cancelled: its compensation
// came first, so the card was not charged or, when processorRef is set,
// the approval processorRef is to be voided. If the charge is already
// recorded, it returns that record, noting processorRef on it.
func (s *Service) recordCancelled(ctx context.Context, in chargeInput, paymentMethodID, processorRef string) (domain.Charge, error) {
	c := domain.Charge{
		ID:              newID(),
		IdempotencyKey:  in.key,
		SagaID:          in.sagaID,
		OrderID:         in.orderID,
		AccountID:       in.accountID,
		Amount:          in.amount,
		Description:     in.description,
		Status:          domain.ChargeCancelled,
		PaymentMethodID: paymentMethodID,
		ProcessorRef:    processorRef,
		Refunded:        domain.NewMoney(0, in.amount.Currency),
		CreatedAt:       s.now(),
	}
	err := s.store.InsertCharge(ctx, s.db, c)
	if errors.Is(err, store.ErrDuplicate) {
		if processorRef != "" {
			if err := s.store.NoteVoid(ctx, s.db, in.key, processorRef); err != nil {
				return domain.Charge{}, err
			}
		}
		return s.store.ChargeByKey(ctx, s.db, in.key)
	}
	if err != nil {
		return domain.Charge{}, err
	}
	s.log.InfoContext(ctx, "charge cancelled: its refund came first", "saga_id", in.sagaID, "order_id", in.orderID, "charge_id", c.ID)
	return c, nil
}

// resolveSource returns the payment method to charge: the stored one named
// (it must be the account's), or one made from the inline card.
func (s *Service) resolveSource(ctx context.Context, in chargeInput) (domain.PaymentMethod, error) {
	if in.card != nil {
		return s.createPaymentMethod(ctx, in.accountID, cardKey(in.key), *in.card)
	}
	pm, err := s.store.PaymentMethod(ctx, s.db, in.paymentMethodID)
	if err != nil {
		return pm, err
	}
	if pm.AccountID != in.accountID {
		return domain.PaymentMethod{}, fmt.Errorf("payment method %q of account %q: %w", in.paymentMethodID, in.accountID, domain.ErrNotFound)
	}
	return pm, nil
}

// charge runs the Charge flow described in the package comment. It
// returns the charge and, when it knows it, its payment method.
func (s *Service) charge(ctx context.Context, in chargeInput) (domain.Charge, *domain.PaymentMethod, error) {
	// One transaction takes the key for the processor call and then looks
	// at what is recorded of it; if anything is, the transaction rolls
	// back and the record is answered. A concurrent duplicate, or a Refund
	// of this charge, answers IN_PROGRESS while the key is taken. Taking
	// the key first matters on PostgreSQL: the attempt row goes in the
	// transaction that records the charge, so once the key is taken, a
	// charge recorded by an earlier holder is visible to the look.
	attemptID := newID()
	var found recorded
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		now := s.now()
		if err := s.store.BeginAttempt(ctx, tx, in.key, in.sagaID, attemptID, now, now.Add(s.timeout+attemptMargin)); err != nil {
			return err
		}
		var err error
		if found, err = s.lookup(ctx, tx, in); err != nil {
			return err
		}
		if found.charge != nil || len(found.refunds) > 0 || found.orderCharge != nil {
			return errRecorded
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRecorded) {
		return domain.Charge{}, nil, err
	}
	if c, done, err := s.answer(ctx, in, found); done {
		return c, nil, err
	}
	held := true
	defer func() {
		if held {
			rctx, cancel := detached(ctx, recordTimeout)
			defer cancel()
			if err := s.store.EndAttempt(rctx, s.db, in.key, attemptID); err != nil {
				s.log.ErrorContext(ctx, "release charge attempt", "charge_key", in.key, "err", err)
			}
		}
	}()
	pm, err := s.resolveSource(ctx, in)
	if err != nil {
		return domain.Charge{}, nil, err
	}

	pctx, cancel := detached(ctx, s.timeout)
	res, err := s.proc.Charge(pctx, processor.ChargeRequest{
		IdempotencyKey: in.key,
		Token:          processor.Token{ID: pm.Token, Class: pm.TokenClass},
		Amount:         in.amount,
		Description:    in.description,
	})
	cancel()
	if err != nil {
		// Nothing happened at the processor: record nothing, so that the
		// retry runs again.
		s.log.WarnContext(ctx, "charge not made", "saga_id", in.sagaID, "order_id", in.orderID, "err", err)
		return domain.Charge{}, nil, processorError("charge", err)
	}

	c := domain.Charge{
		ID:              newID(),
		IdempotencyKey:  in.key,
		SagaID:          in.sagaID,
		OrderID:         in.orderID,
		AccountID:       in.accountID,
		Amount:          in.amount,
		Description:     in.description,
		Status:          domain.ChargeSucceeded,
		PaymentMethodID: pm.ID,
		ProcessorRef:    res.Ref,
		Refunded:        domain.NewMoney(0, in.amount.Currency),
		CreatedAt:       s.now(),
	}
	if !res.Approved {
		c.Status, c.DeclineCode, c.ProcessorRef = domain.ChargeDeclined, res.DeclineCode, ""
	}
	// The processor has acted: record it even if the caller has gone.
	rctx, rcancel := detached(ctx, recordTimeout)
	defer rcancel()
	out, err := barrier.Action(rctx, s.db, in.sagaID, in.key, func(tx *storage.Tx) ([]byte, error) {
		if err := s.store.InsertCharge(rctx, tx, c); err != nil {
			return nil, err
		}
		subject := ChargeDeclinedSubject
		if c.Status == domain.ChargeSucceeded {
			subject = ChargeSucceededSubject
			inv := domain.Invoice{
				ID: newID(), AccountID: c.AccountID, OrderID: c.OrderID, ChargeID: c.ID, Description: c.Description,
				Amount: c.Amount, PaymentMethodID: pm.ID, IssuedAt: c.CreatedAt,
			}
			if err := s.store.InsertInvoice(rctx, tx, inv); err != nil {
				return nil, err
			}
		}
		if err := s.store.EndAttempt(rctx, tx, in.key, attemptID); err != nil {
			return nil, err
		}
		ev, err := events.NewEvent(subject, c.OrderID, chargeEvent(c, pm))
		if err != nil {
			return nil, err
		}
		if err := events.Publish(rctx, tx, ev); err != nil {
			return nil, err
		}
		return []byte(c.ID), nil
	})
	switch {
	case err == nil && string(out) == c.ID:
		held = false // the attempt row went with the commit
		s.committed()
		s.log.InfoContext(ctx, "charge recorded", "saga_id", c.SagaID, "order_id", c.OrderID, "charge_id", c.ID,
			"status", string(c.Status), "decline_code", string(c.DeclineCode), "amount", c.Amount.String(), "brand", string(pm.Brand), "last4", pm.Last4)
		return c, &pm, nil
	case err == nil:
		// Another attempt recorded this step first (its attempt row had
		// expired); the processor answered both from the same key.
		first, err := s.store.Charge(rctx, s.db, string(out))
		if err != nil {
			return domain.Charge{}, nil, err
		}
		if res.Approved && first.ProcessorRef != res.Ref {
			if err := s.void(rctx, in.voidInput(), res.Ref); err != nil {
				return domain.Charge{}, nil, err
			}
		}
		return first, nil, nil
	case errors.Is(err, barrier.ErrCompensated):
		// The Refund overtook this call at the barrier: record the charge
		// as cancelled (with the approval to void, if any), void it, and
		// answer cancelled. A void that fails is retried by every repeat
		// of this Charge (see answer).
		ref := ""
		if res.Approved {
			ref = res.Ref
		}
		cancelled, err := s.recordCancelled(rctx, in, pm.ID, ref)
		if err != nil {
			return domain.Charge{}, nil, err
		}
		if ref != "" {
			if err := s.void(rctx, in.voidInput(), ref); err != nil {
				return domain.Charge{}, nil, err
			}
		}
		return cancelled, nil, nil
	case errors.Is(err, store.ErrDuplicate):
		// Another charge holds the key (from another saga) or the order's
		// one succeeded charge: this approval must not stand.
		if res.Approved {
			if verr := s.void(rctx, in.voidInput(), res.Ref); verr != nil {
				return domain.Charge{}, nil, verr
			}
		}
		if c, done, err := s.recordedCharge(rctx, in); done {
			return c, nil, err
		}
		return domain.Charge{}, nil, fmt.Errorf("order %q: %w", in.orderID, domain.ErrOrderAlreadyCharged)
	default:
		// Not recorded: the retry calls the processor again with the same
		// key and gets this same answer, so nothing is voided here.
		return domain.Charge{}, nil, err
	}
}

// voidInput names the charge whose approval is voided.
type voidInput struct {
	chargeKey, sagaID, orderID string
	amount                     domain.Money
}

func (in chargeInput) voidInput() voidInput {
	return voidInput{chargeKey: in.key, sagaID: in.sagaID, orderID: in.orderID, amount: in.amount}
}

// void gives back an approval that must not stand, retrying a transient
// processor failure briefly; a failure that lasts is answered as
// ErrProcessorUnavailable, and the saga's retry of the Charge voids again.
func (s *Service) void(ctx context.Context, in voidInput, ref string) error {
	var err error
	backoff := 50 * time.Millisecond
	for attempt := 0; attempt < 4; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, s.timeout)
		_, err = s.proc.Refund(pctx, processor.RefundRequest{IdempotencyKey: voidKey(in.chargeKey), ChargeRef: ref, Amount: in.amount})
		cancel()
		if err == nil {
			s.log.InfoContext(ctx, "charge voided", "saga_id", in.sagaID, "order_id", in.orderID)
			return nil
		}
		if !errors.Is(err, processor.ErrUnavailable) {
			break
		}
		select {
		case <-ctx.Done():
			return processorError("void", ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	s.log.ErrorContext(ctx, "void failed; the retry of the charge will void again", "saga_id", in.sagaID, "order_id", in.orderID, "err", err)
	return processorError("void", err)
}

func chargeEvent(c domain.Charge, pm domain.PaymentMethod) ChargeEvent {
	return ChargeEvent{
		ChargeID:       c.ID,
		OrderID:        c.OrderID,
		SagaID:         c.SagaID,
		AccountID:      c.AccountID,
		IdempotencyKey: c.IdempotencyKey,
		Amount:         moneyJSON(c.Amount),
		Description:    c.Description,
		Status:         string(c.Status),
		DeclineCode:    string(c.DeclineCode),
		Card:           CardJSON{Brand: string(pm.Brand), Last4: pm.Last4},
		CreatedAt:      c.CreatedAt,
	}
}
