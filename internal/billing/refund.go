package billing

import (
	"context"
	"errors"
	"fmt"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// refundInput is a validated Refund request.
type refundInput struct {
	key, orderID, sagaID, accountID, chargeKey, reason string
}

// errChargeMoved reports, from inside the barrier transaction, that the
// charge changed since the processor refund was decided; the flow starts
// over.
var errChargeMoved = errors.New("billing: charge changed during refund")

// refundRounds bounds how often refund starts over because the charge it
// undoes was being recorded at the same time.
const refundRounds = 3

// refund runs the Refund flow described in the package comment.
func (s *Service) refund(ctx context.Context, in refundInput) (domain.Refund, error) {
	if r, err := s.store.RefundByKey(ctx, s.db, in.key); err == nil {
		if r.ChargeIdempotencyKey != in.chargeKey || r.SagaID != in.sagaID || r.OrderID != in.orderID || r.AccountID != in.accountID {
			return domain.Refund{}, fmt.Errorf("refund key %q: %w", in.key, domain.ErrIdempotencyKeyReused)
		}
		return r, nil
	} else if !errors.Is(err, domain.ErrNotFound) {
		return domain.Refund{}, err
	}
	for round := 0; round < refundRounds; round++ {
		r, err := s.refundOnce(ctx, in)
		if errors.Is(err, errChargeMoved) {
			continue
		}
		return r, err
	}
	return domain.Refund{}, fmt.Errorf("refund of charge %q: %w", in.chargeKey, domain.ErrInProgress)
}

func (s *Service) refundOnce(ctx context.Context, in refundInput) (domain.Refund, error) {
	var (
		pm         domain.PaymentMethod
		toRefund   domain.Money
		processRef string
	)
	ch, err := s.store.ChargeByKey(ctx, s.db, in.chargeKey)
	switch {
	case err == nil:
		if ch.SagaID != in.sagaID || ch.OrderID != in.orderID || ch.AccountID != in.accountID {
			return domain.Refund{}, domain.Invalid("charge_idempotency_key", "names a charge of another saga, order or account")
		}
		if ch.Status == domain.ChargeCancelled && ch.ProcessorRef != "" {
			// An approval that came after its compensation and whose void
			// failed then: the compensation makes sure it is voided.
			vin := voidInput{chargeKey: ch.IdempotencyKey, sagaID: ch.SagaID, orderID: ch.OrderID, amount: ch.Amount}
			if err := s.void(ctx, vin, ch.ProcessorRef); err != nil {
				return domain.Refund{}, err
			}
		}
		left, err := ch.Refundable()
		if err != nil {
			return domain.Refund{}, err
		}
		if left.IsPositive() {
			if pm, err = s.store.PaymentMethod(ctx, s.db, ch.PaymentMethodID); err != nil {
				return domain.Refund{}, err
			}
			// Money goes back before the record is written; the processor
			// refund is idempotent per charge, so a crash or a concurrent
			// Refund between the two moves no more money.
			pctx, cancel := detached(ctx, s.timeout)
			res, err := s.proc.Refund(pctx, processor.RefundRequest{IdempotencyKey: refundKey(ch.IdempotencyKey), ChargeRef: ch.ProcessorRef, Amount: left})
			cancel()
			if err != nil {
				s.log.WarnContext(ctx, "refund not made", "saga_id", in.sagaID, "order_id", in.orderID, "err", err)
				return domain.Refund{}, processorError("refund", err)
			}
			toRefund, processRef = left, res.Ref
		}
	case errors.Is(err, domain.ErrNotFound):
		// No charge recorded: if one is at the processor right now, wait
		// for it rather than racing it to the barrier.
		busy, err := s.store.AttemptUnderWay(ctx, s.db, in.chargeKey, s.now())
		if err != nil {
			return domain.Refund{}, err
		}
		if busy {
			return domain.Refund{}, fmt.Errorf("charge %q is being made: %w", in.chargeKey, domain.ErrInProgress)
		}
	default:
		return domain.Refund{}, err
	}

	rec := domain.Refund{
		ID:                   newID(),
		IdempotencyKey:       in.key,
		SagaID:               in.sagaID,
		OrderID:              in.orderID,
		AccountID:            in.accountID,
		ChargeIdempotencyKey: in.chargeKey,
		Reason:               in.reason,
		CreatedAt:            s.now(),
	}
	rctx, cancel := detached(ctx, recordTimeout)
	defer cancel()
	out, err := barrier.Compensate(rctx, s.db, in.sagaID, in.chargeKey, func(tx *storage.Tx) ([]byte, error) {
		// The action ran, so its charge is recorded (in the action's
		// transaction); read it again under the barrier.
		ch, err := s.store.ChargeByKey(rctx, tx, in.chargeKey)
		if err != nil {
			return nil, fmt.Errorf("barrier says charge %q ran: %w", in.chargeKey, err)
		}
		left, err := ch.Refundable()
		if err != nil {
			return nil, err
		}
		if !left.IsPositive() {
			rec.Status, rec.Amount = domain.RefundNothingToRefund, domain.NewMoney(0, ch.Amount.Currency)
			if err := s.store.InsertRefund(rctx, tx, rec); err != nil {
				return nil, err
			}
			return []byte(rec.ID), nil
		}
		if processRef == "" || left != toRefund {
			return nil, errChargeMoved
		}
		if _, err := s.store.AddRefunded(rctx, tx, ch.ID, left); err != nil {
			return nil, err
		}
		rec.Status, rec.ChargeID, rec.Amount, rec.ProcessorRef = domain.RefundSucceeded, ch.ID, left, processRef
		if err := s.store.InsertRefund(rctx, tx, rec); err != nil {
			return nil, err
		}
		ev, err := events.NewEvent(RefundedSubject, rec.OrderID, refundEvent(rec, pm))
		if err != nil {
			return nil, err
		}
		if err := events.Publish(rctx, tx, ev); err != nil {
			return nil, err
		}
		return []byte(rec.ID), nil
	})
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return domain.Refund{}, fmt.Errorf("refund key %q: %w", in.key, domain.ErrIdempotencyKeyReused)
	case err != nil:
		return domain.Refund{}, err
	case out == nil:
		// No action ran: the barrier now refuses it; record that there was
		// nothing to refund.
		return s.recordNothingToRefund(rctx, in, rec)
	case string(out) == rec.ID:
		s.committed()
		s.log.InfoContext(ctx, "refund recorded", "saga_id", rec.SagaID, "order_id", rec.OrderID, "refund_id", rec.ID,
			"status", string(rec.Status), "amount", rec.Amount.String())
		return rec, nil
	default:
		// A compensation of this charge ran before: answer its refund.
		return s.store.Refund(rctx, s.db, string(out))
	}
}

// recordNothingToRefund stores rec as a nothing_to_refund with no charge,
// unless a refund of its charge key is recorded already (a repeat), which
// it returns instead.
func (s *Service) recordNothingToRefund(ctx context.Context, in refundInput, rec domain.Refund) (domain.Refund, error) {
	prior, err := s.store.RefundsOfChargeKey(ctx, s.db, in.chargeKey)
	if err != nil {
		return domain.Refund{}, err
	}
	for _, r := range prior {
		if r.IdempotencyKey == in.key {
			return r, nil
		}
	}
	if len(prior) > 0 {
		return prior[0], nil
	}
	rec.Status, rec.Amount = domain.RefundNothingToRefund, domain.Money{}
	err = s.store.InsertRefund(ctx, s.db, rec)
	if errors.Is(err, store.ErrDuplicate) {
		return s.store.RefundByKey(ctx, s.db, in.key)
	}
	if err != nil {
		return domain.Refund{}, err
	}
	s.log.InfoContext(ctx, "refund recorded before its charge: nothing to refund", "saga_id", rec.SagaID, "order_id", rec.OrderID, "refund_id", rec.ID)
	return rec, nil
}

func refundEvent(r domain.Refund, pm domain.PaymentMethod) RefundEvent {
	return RefundEvent{
		RefundID:  r.ID,
		ChargeID:  r.ChargeID,
		OrderID:   r.OrderID,
		SagaID:    r.SagaID,
		AccountID: r.AccountID,
		Amount:    moneyJSON(r.Amount),
		Reason:    r.Reason,
		Card:      CardJSON{Brand: string(pm.Brand), Last4: pm.Last4},
		CreatedAt: r.CreatedAt,
	}
}
