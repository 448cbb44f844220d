package breaker

import (
	"errors"
	"testing"
	"time"
)

func TestConsecutiveFailures(t *testing.T) {
	var changes []State
	b := New("catalog", Settings{Failures: 3, MinRequests: 1000, OpenFor: 50 * time.Millisecond},
		func(_ string, _, to State) { changes = append(changes, to) })
	call := func(o Outcome) error {
		done, err := b.Allow()
		if err != nil {
			return err
		}
		done(o)
		return nil
	}
	for i := range 2 {
		if err := call(Failure); err != nil {
			t.Fatalf("failure %d refused: %v", i, err)
		}
	}
	call(Success) // resets the streak
	for range 3 {
		call(Failure)
	}
	if s := b.State(); s != Open {
		t.Fatalf("after 3 consecutive failures: %v, want open", s)
	}
	err := call(Success)
	var open *OpenError
	if !errors.As(err, &open) || open.Upstream != "catalog" || open.RetryAfter <= 0 {
		t.Fatalf("open breaker Allow = %v, want an OpenError for catalog", err)
	}
	time.Sleep(60 * time.Millisecond)
	// Half-open: one probe at a time.
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("half-open probe refused: %v", err)
	}
	if _, err := b.Allow(); err == nil {
		t.Fatal("second concurrent probe allowed")
	}
	done(Failure)
	if s := b.State(); s != Open {
		t.Fatalf("after a failed probe: %v, want open", s)
	}
	time.Sleep(60 * time.Millisecond)
	if err := call(Success); err != nil {
		t.Fatalf("probe after open_for: %v", err)
	}
	if s := b.State(); s != Closed {
		t.Fatalf("after a good probe: %v, want closed", s)
	}
	want := []State{Open, HalfOpen, Open, HalfOpen, Closed}
	if len(changes) != len(want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Fatalf("changes = %v, want %v", changes, want)
		}
	}
}

func TestErrorRate(t *testing.T) {
	b := New("billing", Settings{Failures: 1000, ErrorRate: 0.5, MinRequests: 10, Window: time.Second}, nil)
	for i := range 9 {
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("request %d refused", i)
		}
		if i%2 == 0 {
			done(Failure)
		} else {
			done(Success)
		}
	}
	if b.State() != Closed {
		t.Fatal("opened below MinRequests")
	}
	done, _ := b.Allow()
	done(Failure) // 6 of 10 failed
	if b.State() != Open {
		t.Fatalf("6 failures in 10: %v, want open", b.State())
	}
}

func TestIgnored(t *testing.T) {
	b := New("x", Settings{Failures: 2}, nil)
	for range 10 {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(Ignored)
	}
	if b.State() != Closed {
		t.Errorf("ignored outcomes opened the breaker")
	}
}
