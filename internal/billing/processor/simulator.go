package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
)

// Test cards of the product (see PRODUCT.md §4). Any other valid card is
// approved.
const (
	CardApproved          = "4242424242424242"
	CardDeclined          = "4000000000000002"
	CardInsufficientFunds = "4000000000009995"
	CardUnavailable       = "4000000000000119"
	CardSlow              = "4000000000000259"
)

// Token classes the simulator derives from the number at tokenisation and
// decides outcomes by. Billing stores the class with the token, so
// outcomes survive restarts without the number being kept anywhere.
const (
	ClassApprove           = "approve"
	ClassDeclined          = "decline_card_declined"
	ClassInsufficientFunds = "decline_insufficient_funds"
	ClassUnavailable       = "transient_unavailable"
	ClassSlow              = "approve_slow"
)

// Classify returns the simulator class of a card number (digits only).
func Classify(number string) string {
	switch number {
	case CardDeclined:
		return ClassDeclined
	case CardInsufficientFunds:
		return ClassInsufficientFunds
	case CardUnavailable:
		return ClassUnavailable
	case CardSlow:
		return ClassSlow
	}
	return ClassApprove
}

// DefaultSlowDelay is how long the slow test card takes to be approved.
const DefaultSlowDelay = 5 * time.Second

// Simulator is an in-process card processor for development and tests.
// It keeps nothing of a card: Tokenize returns a random token id and the
// card's class, and Charge decides by the class alone:
//
//	approve                     approved
//	decline_card_declined       declined card_declined
//	decline_insufficient_funds  declined insufficient_funds
//	transient_unavailable       ErrUnavailable, every time
//	approve_slow                approved after SlowDelay
//
// Charges and refunds are idempotent per key within the process; a refund
// never exceeds what a charge approved by this process holds, and a refund
// of a charge approved before the process started (the ledger is in
// memory) is approved as asked. A Simulator is safe for concurrent use;
// set SlowDelay before use.
type Simulator struct {
	// SlowDelay is the delay of the slow test card; zero means
	// DefaultSlowDelay. Tests make it short.
	SlowDelay time.Duration

	mu      sync.Mutex
	charges map[string]ChargeResult
	refunds map[string]refundRecord
	// settled is what each approved charge holds, less its refunds.
	settled map[string]domain.Money
}

type refundRecord struct {
	req RefundRequest
	res RefundResult
}

var _ Processor = (*Simulator)(nil)

// NewSimulator returns a simulator whose slow card waits delay (zero means
// DefaultSlowDelay).
func NewSimulator(delay time.Duration) *Simulator {
	return &Simulator{SlowDelay: delay}
}

func randomID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("processor: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return prefix + hex.EncodeToString(b[:])
}

// Tokenize returns a random token and the card's class.
func (s *Simulator) Tokenize(ctx context.Context, card domain.Card) (Token, error) {
	if err := ctx.Err(); err != nil {
		return Token{}, err
	}
	if card.Number() == "" {
		return Token{}, errors.New("processor: empty card")
	}
	return Token{ID: randomID("tok_"), Class: Classify(card.Number())}, nil
}

// Charge decides by the token's class; see Simulator.
func (s *Simulator) Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error) {
	if req.IdempotencyKey == "" || req.Token.ID == "" || !req.Amount.IsPositive() {
		return ChargeResult{}, errors.New("processor: charge needs a key, a token and a positive amount")
	}
	s.mu.Lock()
	prev, seen := s.charges[req.IdempotencyKey]
	s.mu.Unlock()
	if seen {
		return prev, nil
	}
	var res ChargeResult
	switch req.Token.Class {
	case ClassApprove:
		res = ChargeResult{Approved: true}
	case ClassSlow:
		delay := s.SlowDelay
		if delay <= 0 {
			delay = DefaultSlowDelay
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ChargeResult{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		case <-t.C:
		}
		res = ChargeResult{Approved: true}
	case ClassDeclined:
		res = ChargeResult{DeclineCode: domain.DeclineCardDeclined}
	case ClassInsufficientFunds:
		res = ChargeResult{DeclineCode: domain.DeclineInsufficientFunds}
	case ClassUnavailable:
		return ChargeResult{}, fmt.Errorf("%w: simulated processor outage", ErrUnavailable)
	default:
		return ChargeResult{}, fmt.Errorf("processor: unknown token class %q", req.Token.Class)
	}
	if err := ctx.Err(); err != nil {
		return ChargeResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, seen := s.charges[req.IdempotencyKey]; seen {
		return prev, nil // a concurrent call with the same key won
	}
	if res.Approved {
		res.Ref = randomID("ch_")
		if s.settled == nil {
			s.settled = map[string]domain.Money{}
		}
		s.settled[res.Ref] = req.Amount
	}
	if s.charges == nil {
		s.charges = map[string]ChargeResult{}
	}
	s.charges[req.IdempotencyKey] = res
	return res, nil
}

// Refund gives back part or all of an approved charge, once per key.
func (s *Simulator) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if err := ctx.Err(); err != nil {
		return RefundResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if req.IdempotencyKey == "" || !strings.HasPrefix(req.ChargeRef, "ch_") || !req.Amount.IsPositive() {
		return RefundResult{}, errors.New("processor: refund needs a key, a charge and a positive amount")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, seen := s.refunds[req.IdempotencyKey]; seen {
		if prev.req != req {
			return RefundResult{}, fmt.Errorf("processor: refund key %s reused with other arguments", req.IdempotencyKey)
		}
		return prev.res, nil
	}
	held, ok := s.settled[req.ChargeRef]
	if !ok {
		// Approved before this process started (the simulator keeps its
		// ledger in memory): trust the caller's record of it.
		held = req.Amount
	}
	left, err := held.Sub(req.Amount)
	if err != nil {
		return RefundResult{}, fmt.Errorf("processor: refund of %s: %w", req.ChargeRef, err)
	}
	if left.Minor < 0 {
		return RefundResult{}, fmt.Errorf("processor: refund of %s: %w", req.ChargeRef, domain.ErrRefundExceedsCharge)
	}
	if s.settled == nil {
		s.settled = map[string]domain.Money{}
	}
	s.settled[req.ChargeRef] = left
	res := RefundResult{Ref: randomID("re_")}
	if s.refunds == nil {
		s.refunds = map[string]refundRecord{}
	}
	s.refunds[req.IdempotencyKey] = refundRecord{req: req, res: res}
	return res, nil
}

// Held returns what the simulator holds of the approved charge ref (its
// amount less refunds), and whether it knows the charge. For tests and
// reconciliation.
func (s *Simulator) Held(ref string) (domain.Money, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.settled[ref]
	return m, ok
}
