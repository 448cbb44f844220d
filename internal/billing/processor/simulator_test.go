package processor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
)

var now = time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)

func mustCard(t *testing.T, number string) domain.Card {
	t.Helper()
	c, err := domain.ParseCard(number, 12, 2030, "123", now)
	if err != nil {
		t.Fatalf("ParseCard(%s): %v", number, err)
	}
	return c
}

func TestSimulatorTestCards(t *testing.T) {
	tests := []struct {
		card     string
		class    string
		approved bool
		decline  domain.DeclineCode
		err      error
		slow     bool
	}{
		{processor.CardApproved, processor.ClassApprove, true, "", nil, false},
		{processor.CardDeclined, processor.ClassDeclined, false, domain.DeclineCardDeclined, nil, false},
		{processor.CardInsufficientFunds, processor.ClassInsufficientFunds, false, domain.DeclineInsufficientFunds, nil, false},
		{processor.CardUnavailable, processor.ClassUnavailable, false, "", processor.ErrUnavailable, false},
		{processor.CardSlow, processor.ClassSlow, true, "", nil, true},
		{"5555555555554444", processor.ClassApprove, true, "", nil, false},
	}
	const delay = 100 * time.Millisecond
	sim := processor.NewSimulator(delay)
	ctx := context.Background()
	for _, tt := range tests {
		tok, err := sim.Tokenize(ctx, mustCard(t, tt.card))
		if err != nil || tok.Class != tt.class || len(tok.ID) < 20 {
			t.Errorf("Tokenize(%s) = %+v, %v, want class %s and a random id", tt.card, tok, err, tt.class)
			continue
		}
		start := time.Now()
		res, err := sim.Charge(ctx, processor.ChargeRequest{IdempotencyKey: "k-" + tt.card, Token: tok, Amount: domain.NewMoney(799, domain.USD)})
		if !errors.Is(err, tt.err) || res.Approved != tt.approved || res.DeclineCode != tt.decline || (res.Ref != "") != tt.approved {
			t.Errorf("Charge(%s) = %+v, %v, want approved %v, decline %q, error %v", tt.card, res, err, tt.approved, tt.decline, tt.err)
		}
		if took := time.Since(start); tt.slow != (took >= delay) {
			t.Errorf("Charge(%s) took %v, want slow %v (delay %v)", tt.card, took, tt.slow, delay)
		}
		// Every time, for the unavailable card.
		if tt.err != nil {
			if _, err := sim.Charge(ctx, processor.ChargeRequest{IdempotencyKey: "k-" + tt.card, Token: tok, Amount: domain.NewMoney(799, domain.USD)}); !errors.Is(err, tt.err) {
				t.Errorf("second Charge(%s) error = %v, want %v again", tt.card, err, tt.err)
			}
		}
	}
}

func TestSimulatorIdempotency(t *testing.T) {
	sim := processor.NewSimulator(time.Millisecond)
	ctx := context.Background()
	tok, _ := sim.Tokenize(ctx, mustCard(t, processor.CardApproved))
	req := processor.ChargeRequest{IdempotencyKey: "k", Token: tok, Amount: domain.NewMoney(1000, domain.USD)}
	first, err := sim.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := sim.Charge(ctx, req); err != nil || again != first {
		t.Errorf("repeated Charge = %+v, %v, want %+v", again, err, first)
	}
	steps := []struct {
		key     string
		amount  int64
		wantErr bool
		held    int64
	}{
		{"r1", 400, false, 600},
		{"r1", 400, false, 600}, // repeat: no more money moves
		{"r1", 500, true, 600},  // key reused with another amount
		{"r2", 700, true, 600},  // more than is held
		{"r3", 600, false, 0},
	}
	for _, s := range steps {
		_, err := sim.Refund(ctx, processor.RefundRequest{IdempotencyKey: s.key, ChargeRef: first.Ref, Amount: domain.NewMoney(s.amount, domain.USD)})
		held, _ := sim.Held(first.Ref)
		if (err != nil) != s.wantErr || held.Minor != s.held {
			t.Errorf("Refund(%s, %d) = %v, holding %d, want error %v, holding %d", s.key, s.amount, err, held.Minor, s.wantErr, s.held)
		}
	}
	// A charge from before a restart is refunded as asked.
	if _, err := sim.Refund(ctx, processor.RefundRequest{IdempotencyKey: "old", ChargeRef: "ch_before_restart", Amount: domain.NewMoney(5, domain.USD)}); err != nil {
		t.Errorf("Refund of an unknown charge: %v", err)
	}
}

func TestSimulatorSlowHonoursContext(t *testing.T) {
	sim := processor.NewSimulator(time.Hour)
	tok, _ := sim.Tokenize(context.Background(), mustCard(t, processor.CardSlow))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := sim.Charge(ctx, processor.ChargeRequest{IdempotencyKey: "k", Token: tok, Amount: domain.NewMoney(1, domain.USD)})
	if !errors.Is(err, processor.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow Charge past its deadline = %v, want ErrUnavailable wrapping the deadline", err)
	}
	// Nothing was charged: the same key runs again.
	if _, err := sim.Charge(context.Background(), processor.ChargeRequest{IdempotencyKey: "k", Token: processor.Token{ID: tok.ID, Class: processor.ClassApprove}, Amount: domain.NewMoney(1, domain.USD)}); err != nil {
		t.Errorf("retry after the deadline: %v", err)
	}
}
