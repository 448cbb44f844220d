package saga_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga"
)

func TestHappyPath(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		var keys []string
		var mu sync.Mutex
		p.on("charge", func(ctx context.Context, c saga.Call[order]) error {
			mu.Lock()
			keys = append(keys, c.IdempotencyKey)
			mu.Unlock()
			if c.Data.Amount != 799 || c.Outputs["reserve"] == nil {
				return saga.Fail("bad_call", errors.New("charge did not get the data and the reserve output"))
			}
			return nil
		})
		reg := prometheus.NewRegistry()
		e := start(t, db, saga.Options{Registerer: reg}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompleted)

		for name, want := range map[string]float64{"marquee_saga_started_total": 1, "marquee_saga_completed_total": 1} {
			if got := counter(t, reg, name); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
		if got, want := p.effectOrder(), []string{"reserve", "charge", "grant", "notify"}; !equal(got, want) {
			t.Errorf("effects = %v, want %v", got, want)
		}
		if got, want := keys, []string{"s1/charge/action"}; !equal(got, want) {
			t.Errorf("charge idempotency keys = %v, want %v", got, want)
		}
		fin := f.get("s1")
		if len(fin) != 1 || fin[0].State != saga.StateCompleted || fin[0].Data.ID != "s1" || string(fin[0].Outputs["grant"]) != `{"step":"grant","order":"s1"}` {
			t.Fatalf("OnFinish calls = %+v, want one completed with data and outputs", fin)
		}
		var n int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM finished WHERE saga_id = 's1' AND state = 'completed'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("finished rows = %d, %v, want 1 (written in the final transaction)", n, err)
		}
		if s.Owner != "" || s.FinishedAt.IsZero() || s.Attempts != 1 {
			t.Errorf("completed saga owner=%q finished_at=%v attempts=%d, want no owner, a finish time, 1 attempt", s.Owner, s.FinishedAt, s.Attempts)
		}
		if len(s.Steps) != 4 {
			t.Fatalf("steps = %+v, want 4 actions", s.Steps)
		}
		for _, st := range s.Steps {
			if st.State != saga.StepSucceeded || st.Attempts != 1 || st.Kind != saga.KindAction || st.FinishedAt.IsZero() {
				t.Errorf("step %s = %s after %d attempts, want succeeded after 1", st.Name, st.State, st.Attempts)
			}
		}
		charge, _ := stepOf(s, "charge", saga.KindAction)
		if charge.IdempotencyKey != "s1/charge/action" || charge.Participant != "billing" || charge.Method != "/billing/Charge" {
			t.Errorf("charge step = %+v, want key s1/charge/action, billing, /billing/Charge", charge)
		}
		for _, c := range []string{"release", "refund", "revoke"} {
			if n := p.callsOf(c); n != 0 {
				t.Errorf("compensation %s called %d times, want 0", c, n)
			}
		}
		p.checkOnce(t)
	})
}

func TestDeclinedIsRejectedWithNothingToUndo(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		// A definition whose first step is the one refused.
		def := saga.MustDefine("pay", []saga.Step[order]{
			{Name: "check", Class: saga.ReadOnly, Action: p.fn("check", "a")},
			{Name: "charge", Class: saga.Compensatable, Action: p.fn("charge", "a"), Compensation: p.fn("refund", "a"), CompensationName: "refund", Retry: fast},
			{Name: "grant", Class: saga.Pivot, Action: p.fn("grant", "a"), Retry: fast},
		}, saga.DefinitionOptions[order]{OnFinish: f.onFinish})
		p.on("charge", func(context.Context, saga.Call[order]) error {
			return saga.Fail("card_declined", errors.New("declined by issuer"))
		})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateRejected)
		if s.Reason != "card_declined" {
			t.Errorf("reason = %q, want card_declined", s.Reason)
		}
		if n := p.callsOf("refund"); n != 0 {
			t.Errorf("refund called %d times, want 0 (a refused charge has nothing to undo)", n)
		}
		if n := p.callsOf("charge"); n != 1 {
			t.Errorf("charge called %d times, want 1 (a business failure is not retried)", n)
		}
		charge, _ := stepOf(s, "charge", saga.KindAction)
		grant, _ := stepOf(s, "grant", saga.KindAction)
		if charge.State != saga.StepRefused || grant.State != saga.StepSkipped {
			t.Errorf("charge, grant = %s, %s, want refused, skipped", charge.State, grant.State)
		}
		if len(charge.Errors) != 1 || charge.Errors[0].Retryable || charge.Errors[0].Code != "REFUSED" {
			t.Errorf("charge errors = %+v, want one non-retryable REFUSED", charge.Errors)
		}
		if fin := f.get("s1"); len(fin) != 1 || fin[0].State != saga.StateRejected || fin[0].Reason != "card_declined" {
			t.Errorf("OnFinish = %+v, want rejected card_declined", fin)
		}
	})
}

func TestFailureAfterCompensatableStepsCompensatesInReverse(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("grant", func(context.Context, saga.Call[order]) error { return saga.Fail("title_unavailable", nil) })
		var refundSaw []byte
		p.on("refund", func(ctx context.Context, c saga.Call[order]) error {
			refundSaw = c.Outputs["charge"]
			if c.ActionKey != "s1/charge/action" || c.IdempotencyKey != "s1/charge/compensation" || c.Reason != "title_unavailable" {
				return saga.Fail("bad_call", errors.New(c.ActionKey+" "+c.IdempotencyKey+" "+c.Reason))
			}
			return nil
		})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompensated)
		if got, want := p.effectOrder(), []string{"reserve", "charge", "refund", "release"}; !equal(got, want) {
			t.Errorf("effects = %v, want %v", got, want)
		}
		if string(refundSaw) != `{"step":"charge","order":"s1"}` {
			t.Errorf("refund saw charge output %q, want the charge's result", refundSaw)
		}
		if n := p.callsOf("revoke"); n != 0 {
			t.Errorf("revoke called %d times, want 0 (the grant was refused, so it had no effect)", n)
		}
		if s.Reason != "title_unavailable" {
			t.Errorf("reason = %q, want title_unavailable", s.Reason)
		}
		var names []string
		for _, st := range s.Steps {
			names = append(names, st.Name+":"+string(st.State))
		}
		want := []string{"reserve:succeeded", "charge:succeeded", "grant:refused", "notify:skipped", "refund:succeeded", "release:succeeded"}
		if !equal(names, want) {
			t.Errorf("steps = %v, want %v", names, want)
		}
		refund, _ := stepOf(s, "refund", saga.KindCompensation)
		if refund.Compensates != "charge" || refund.Method != "/billing/Refund" {
			t.Errorf("refund step = %+v, want it to compensate charge via /billing/Refund", refund)
		}
		if fin := f.get("s1"); len(fin) != 1 || fin[0].State != saga.StateCompensated || fin[0].Reason != "title_unavailable" {
			t.Errorf("OnFinish = %+v, want compensated title_unavailable", fin)
		}
		p.checkOnce(t)
	})
}

func TestTransientErrorsRetriedThenSuccess(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		var n int
		p.on("charge", func(context.Context, saga.Call[order]) error {
			n++
			if n <= 2 {
				return errUnavailable
			}
			return nil
		})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompleted)
		charge, _ := stepOf(s, "charge", saga.KindAction)
		if charge.Attempts != 3 || charge.State != saga.StepSucceeded {
			t.Errorf("charge = %s after %d attempts, want succeeded after 3", charge.State, charge.Attempts)
		}
		if len(charge.Errors) != 2 || charge.Errors[0].Code != "UNAVAILABLE" || !charge.Errors[0].Retryable || charge.Errors[1].Attempt != 2 {
			t.Errorf("charge errors = %+v, want 2 retryable UNAVAILABLE (attempts 1, 2)", charge.Errors)
		}
		p.checkOnce(t)
	})
}

func TestTransientErrorsExhaustedCompensateTheStepItself(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("charge", func(context.Context, saga.Call[order]) error { return errUnavailable })
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompensated)
		if s.Reason != "payment_unavailable" {
			t.Errorf("reason = %q, want payment_unavailable", s.Reason)
		}
		if n := p.callsOf("charge"); n != fast.MaxAttempts {
			t.Errorf("charge called %d times, want %d", n, fast.MaxAttempts)
		}
		// The charge may have happened on the processor: its refund runs.
		if got, want := p.effectOrder(), []string{"reserve", "refund", "release"}; !equal(got, want) {
			t.Errorf("effects = %v, want %v", got, want)
		}
		charge, _ := stepOf(s, "charge", saga.KindAction)
		if charge.State != saga.StepFailed || charge.Attempts != fast.MaxAttempts {
			t.Errorf("charge = %s after %d attempts, want failed after %d", charge.State, charge.Attempts, fast.MaxAttempts)
		}
	})
}

func TestPanickingStepIsAFailedAttempt(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("charge", func(context.Context, saga.Call[order]) error { panic("bug in a step") })
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompensated)
		charge, _ := stepOf(s, "charge", saga.KindAction)
		if charge.Attempts != fast.MaxAttempts || !strings.Contains(charge.Error, "bug in a step") {
			t.Errorf("charge = %d attempts, error %q, want %d attempts and the panic", charge.Attempts, charge.Error, fast.MaxAttempts)
		}
	})
}

func TestStepTimeoutIsTransient(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		var calls int
		def := saga.MustDefine("slow", []saga.Step[order]{
			{Name: "charge", Class: saga.Pivot, Timeout: 50 * time.Millisecond, Retry: fast,
				Action: func(ctx context.Context, c saga.Call[order]) ([]byte, error) {
					calls++
					if calls == 1 {
						<-ctx.Done() // the first attempt hangs
						return nil, ctx.Err()
					}
					return p.fn("charge", "a")(ctx, c)
				}},
		}, saga.DefinitionOptions[order]{OnFinish: f.onFinish})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompleted)
		charge, _ := stepOf(s, "charge", saga.KindAction)
		if charge.Attempts != 2 || len(charge.Errors) != 1 || charge.Errors[0].Code != "DEADLINE_EXCEEDED" {
			t.Errorf("charge = %d attempts, errors %+v, want 2 attempts and one DEADLINE_EXCEEDED", charge.Attempts, charge.Errors)
		}
	})
}

func TestCompensationRetriedUntilItSucceeds(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("grant", func(context.Context, saga.Call[order]) error { return saga.Fail("title_unavailable", nil) })
		var n int
		p.on("refund", func(context.Context, saga.Call[order]) error {
			n++
			if n <= 3 {
				return errUnavailable
			}
			return nil
		})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateCompensated)
		refund, _ := stepOf(s, "refund", saga.KindCompensation)
		if refund.Attempts != 4 || refund.State != saga.StepSucceeded || len(refund.Errors) != 3 {
			t.Errorf("refund = %s after %d attempts with %d errors, want succeeded after 4 with 3", refund.State, refund.Attempts, len(refund.Errors))
		}
		if got, want := p.effectOrder(), []string{"reserve", "charge", "refund", "release"}; !equal(got, want) {
			t.Errorf("effects = %v, want %v", got, want)
		}
	})
}

func TestNeedsAttentionThenOperatorRetry(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("grant", func(context.Context, saga.Call[order]) error { return saga.Fail("title_unavailable", nil) })
		var mu sync.Mutex
		broken := true
		p.on("refund", func(context.Context, saga.Call[order]) error {
			mu.Lock()
			defer mu.Unlock()
			if broken {
				return errUnavailable
			}
			return nil
		})
		e := start(t, db, saga.Options{}, def)
		create(t, db, e.Engine, def, "s1", true)
		s := waitFor(t, e.Engine, "s1", saga.StateNeedsAttention)
		if s.PausedState != saga.StateCompensating || s.StepName != "charge" || !strings.Contains(s.LastError, "processor unavailable") {
			t.Errorf("paused saga = state %s step %s last error %q, want compensating at charge with the refund's error", s.PausedState, s.StepName, s.LastError)
		}
		if n := p.callsOf("refund"); n != fast.MaxAttempts {
			t.Errorf("refund called %d times, want %d (its budget)", n, fast.MaxAttempts)
		}
		if len(f.get("s1")) != 0 {
			t.Errorf("OnFinish ran for a saga that needs attention")
		}
		// It stays put: nothing drives a saga that needs attention.
		time.Sleep(100 * time.Millisecond)
		if n := p.callsOf("refund"); n != fast.MaxAttempts {
			t.Errorf("refund called %d times while in needs_attention, want it left alone", n)
		}
		if _, err := e.Retry(context.Background(), "nope", "alice", "x"); !errors.Is(err, saga.ErrNotFound) {
			t.Errorf("Retry(unknown) = %v, want ErrNotFound", err)
		}

		mu.Lock()
		broken = false
		mu.Unlock()
		if _, err := e.Retry(context.Background(), "s1", "alice", "processor fixed"); err != nil {
			t.Fatalf("Retry = %v", err)
		}
		s = waitFor(t, e.Engine, "s1", saga.StateCompensated)
		if s.Reason != "title_unavailable" {
			t.Errorf("reason = %q, want title_unavailable", s.Reason)
		}
		var audit []saga.LogEntry
		for _, l := range s.Log {
			if l.Actor != "" {
				audit = append(audit, l)
			}
		}
		if len(audit) != 1 || audit[0].Event != "operator_retry" || audit[0].Actor != "alice" || audit[0].Message != "processor fixed" || audit[0].At.IsZero() {
			t.Errorf("audit = %+v, want one operator_retry by alice saying why", audit)
		}
		if _, err := e.Retry(context.Background(), "s1", "alice", "again"); !errors.Is(err, saga.ErrFinished) {
			t.Errorf("Retry(finished) = %v, want ErrFinished", err)
		}
		p.checkOnce(t)
	})
}

func TestForceCompensate(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		entered := make(chan struct{}, 10)
		p.on("grant", func(ctx context.Context, c saga.Call[order]) error {
			if c.SagaID == "s1" {
				entered <- struct{}{}
				<-ctx.Done() // a participant that never answers
				return ctx.Err()
			}
			return nil
		})
		// The grant hangs for s1 (its attempt timeout is long); an operator
		// gives up on it.
		e := start(t, db, saga.Options{Lease: 300 * time.Millisecond}, def)
		create(t, db, e.Engine, def, "s1", true)
		<-entered
		s, err := e.ForceCompensate(context.Background(), "s1", "bob", "customer asked")
		if err != nil {
			t.Fatalf("ForceCompensate = %v", err)
		}
		if s.State != saga.StateCompensating && s.State != saga.StateCompensated {
			t.Errorf("state after ForceCompensate = %s, want compensating", s.State)
		}
		s = waitFor(t, e.Engine, "s1", saga.StateCompensated)
		if s.Reason != saga.ReasonForced {
			t.Errorf("reason = %q, want %q", s.Reason, saga.ReasonForced)
		}
		// The grant may have reached the participant: it is revoked too.
		if got, want := p.effectOrder(), []string{"reserve", "charge", "revoke", "refund", "release"}; !equal(got, want) {
			t.Errorf("effects = %v, want %v", got, want)
		}
		var audit int
		for _, l := range s.Log {
			if l.Event == "operator_compensate" && l.Actor == "bob" && l.Message == "customer asked" {
				audit++
			}
		}
		if audit != 1 {
			t.Errorf("log = %+v, want one operator_compensate by bob", s.Log)
		}
		if _, err := e.ForceCompensate(context.Background(), "s1", "bob", "again"); !errors.Is(err, saga.ErrFinished) {
			t.Errorf("ForceCompensate(finished) = %v, want ErrFinished", err)
		}

		// Past the pivot, a saga can only complete.
		p.on("notify", func(context.Context, saga.Call[order]) error { return saga.Fail("broken", nil) })
		create(t, db, e.Engine, def, "s2", true)
		waitFor(t, e.Engine, "s2", saga.StateNeedsAttention)
		if _, err := e.ForceCompensate(context.Background(), "s2", "bob", "x"); !errors.Is(err, saga.ErrPastPivot) {
			t.Errorf("ForceCompensate(past pivot) = %v, want ErrPastPivot", err)
		}
	})
}

// TestCrashResume stops an engine while a step is in flight and starts
// another on the same database: the saga finishes as it would have, each
// effect once. A graceful stop hands the saga over at once (the lease is a
// minute); a crash (leases kept) hands it over when the lease expires.
func TestCrashResume(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := map[bool]string{false: "graceful", true: "crash"}[crash]
		t.Run(name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, db *storage.DB) {
				p, f := newParticipant(), &finishes{}
				entered := make(chan struct{}, 1)
				var mu sync.Mutex
				hang := true
				p.on("grant", func(ctx context.Context, c saga.Call[order]) error {
					mu.Lock()
					h := hang
					hang = false
					mu.Unlock()
					if h {
						entered <- struct{}{}
						<-ctx.Done() // in flight when the engine stops
						return ctx.Err()
					}
					return nil
				})
				lease := time.Minute
				if crash {
					lease = 400 * time.Millisecond
				}
				e1, err := saga.New(db, saga.Options{Lease: lease, PollInterval: 50 * time.Millisecond}, purchase(p, f, "e1"))
				if err != nil {
					t.Fatal(err)
				}
				if crash {
					saga.AbandonOnStop(e1)
				}
				r1 := run(t, e1)
				def := purchase(p, f, "e1")
				create(t, db, e1, def, "s1", true)
				<-entered
				r1.stop()
				s, err := e1.Get(context.Background(), "s1")
				if err != nil {
					t.Fatal(err)
				}
				if s.State != saga.StateRunning || s.StepName != "grant" {
					t.Fatalf("after the stop: %s at %s, want running at grant", s.State, s.StepName)
				}
				if crash && s.Owner != e1.Owner() {
					t.Fatalf("after a crash the owner is %q, want the dead engine %q still holding the lease", s.Owner, e1.Owner())
				}
				if !crash && s.Owner != "" {
					t.Fatalf("after a graceful stop the owner is %q, want none", s.Owner)
				}

				e2 := start(t, db, saga.Options{Lease: lease}, purchase(p, f, "e2"))
				s = waitFor(t, e2.Engine, "s1", saga.StateCompleted)
				if got, want := p.effectOrder(), []string{"reserve", "charge", "grant", "notify"}; !equal(got, want) {
					t.Errorf("effects = %v, want %v", got, want)
				}
				if n := p.callsOf("grant"); n != 2 {
					t.Errorf("grant called %d times, want 2 (the interrupted attempt, then again)", n)
				}
				if s.FencingToken != 2 {
					t.Errorf("fencing token = %d, want 2 (one takeover)", s.FencingToken)
				}
				if fin := f.get("s1"); len(fin) != 1 || fin[0].State != saga.StateCompleted {
					t.Errorf("OnFinish = %+v, want one completed", fin)
				}
				grant, _ := stepOf(s, "grant", saga.KindAction)
				if grant.Attempts != 2 {
					t.Errorf("grant attempts = %d, want 2", grant.Attempts)
				}
				p.checkOnce(t)
			})
		})
	}
}

// TestTwoEnginesNeverDriveOneSagaAtOnce runs two engines on one database
// over sagas whose creator died before starting them: every saga
// completes, each effect once, and no step is ever invoked by both at the
// same time.
func TestTwoEnginesNeverDriveOneSagaAtOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		for _, step := range []string{"reserve", "charge", "grant", "notify"} {
			p.on(step, func(ctx context.Context, c saga.Call[order]) error {
				// Slow enough that A cannot finish them all before B starts.
				time.Sleep(10 * time.Millisecond)
				return nil
			})
		}
		creator, err := saga.New(db, saga.Options{Lease: 50 * time.Millisecond}, purchase(p, f, "creator"))
		if err != nil {
			t.Fatal(err)
		}
		const n = 30
		def := purchase(p, f, "creator")
		for i := range n {
			create(t, db, creator, def, "s"+string(rune('a'+i/26))+string(rune('a'+i%26)), false)
		}
		opts := saga.Options{Lease: 5 * time.Second, PollInterval: 20 * time.Millisecond, PollBatch: 4, Concurrency: 3}
		a := start(t, db, opts, purchase(p, f, "A"))
		b := start(t, db, opts, purchase(p, f, "B"))
		deadline := time.Now().Add(20 * time.Second)
		for {
			sagas, _, err := a.List(context.Background(), saga.ListOptions{State: saga.StateCompleted, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(sagas) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d sagas completed after 20s", len(sagas), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = b
		p.checkOnce(t)
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, step := range []string{"reserve", "charge", "grant", "notify"} {
			if p.calls[step] != n {
				t.Errorf("%s invoked %d times, want %d (no saga driven twice)", step, p.calls[step], n)
			}
		}
		if !p.who["reserve"]["A"] || !p.who["reserve"]["B"] {
			t.Errorf("engines that drove sagas = %v, want both A and B", p.who["reserve"])
		}
		if p.who["reserve"]["creator"] {
			t.Errorf("the creator, never run, drove a saga")
		}
	})
}

// counter sums the samples of a counter family in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
