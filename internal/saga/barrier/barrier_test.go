package barrier_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// participant is a tiny participant: its effects are rows in a table of
// its own, written in the barrier's transaction.
type participant struct {
	db      *storage.DB
	actions atomic.Int64
	comps   atomic.Int64
}

func newParticipant(t *testing.T, db *storage.DB) *participant {
	t.Helper()
	if _, err := db.Exec(context.Background(), `CREATE TABLE effects (saga_id TEXT NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL)`); err != nil {
		t.Fatalf("create effects: %v", err)
	}
	return &participant{db: db}
}

func (p *participant) action(sagaID string, delay time.Duration) func(tx *storage.Tx) ([]byte, error) {
	return func(tx *storage.Tx) ([]byte, error) {
		n := p.actions.Add(1)
		time.Sleep(delay)
		if _, err := tx.Exec(context.Background(), `INSERT INTO effects (saga_id, kind, n) VALUES ($1, 'action', $2)`, sagaID, n); err != nil {
			return nil, err
		}
		return []byte(fmt.Sprintf("charge-%d", n)), nil
	}
}

func (p *participant) compensation(sagaID string) func(tx *storage.Tx) ([]byte, error) {
	return func(tx *storage.Tx) ([]byte, error) {
		n := p.comps.Add(1)
		if _, err := tx.Exec(context.Background(), `INSERT INTO effects (saga_id, kind, n) VALUES ($1, 'compensation', $2)`, sagaID, n); err != nil {
			return nil, err
		}
		return []byte(fmt.Sprintf("refund-%d", n)), nil
	}
}

func (p *participant) effects(t *testing.T, sagaID, kind string) int {
	t.Helper()
	var n int
	if err := p.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM effects WHERE saga_id = $1 AND kind = $2`, sagaID, kind).Scan(&n); err != nil {
		t.Fatalf("count effects: %v", err)
	}
	return n
}

func forEach(t *testing.T, fn func(t *testing.T, p *participant)) {
	storagetest.ForEach(t, "barrier", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		fn(t, newParticipant(t, db))
	})
}

func TestDuplicateActionReturnsOriginalResult(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		first, err := barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
		if err != nil {
			t.Fatalf("Action(s1) = %v", err)
		}
		for i := 0; i < 3; i++ {
			got, err := barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
			if err != nil || string(got) != string(first) {
				t.Fatalf("duplicate Action(s1) = %q, %v, want %q, nil", got, err, first)
			}
		}
		if got := p.actions.Load(); got != 1 {
			t.Errorf("action fn ran %d times, want 1", got)
		}
		if got := p.effects(t, "s1", "action"); got != 1 {
			t.Errorf("action effects = %d, want 1", got)
		}
		// Another step of the same saga, and the same step of another saga,
		// are different keys.
		if _, err := barrier.Action(ctx, p.db, "s1", "grant", p.action("s1", 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := barrier.Action(ctx, p.db, "s2", "charge", p.action("s2", 0)); err != nil {
			t.Fatal(err)
		}
		if got := p.actions.Load(); got != 3 {
			t.Errorf("action fn ran %d times, want 3", got)
		}
	})
}

func TestFnErrorRollsBack(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		boom := errors.New("processor unavailable")
		failing := func(tx *storage.Tx) ([]byte, error) {
			if _, err := p.action("s1", 0)(tx); err != nil {
				return nil, err
			}
			return nil, boom
		}
		if _, err := barrier.Action(ctx, p.db, "s1", "charge", failing); !errors.Is(err, boom) {
			t.Fatalf("Action(failing) = %v, want %v", err, boom)
		}
		if got := p.effects(t, "s1", "action"); got != 0 {
			t.Fatalf("effects after failed fn = %d, want 0 (rolled back)", got)
		}
		got, err := barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
		if err != nil || string(got) != "charge-2" {
			t.Fatalf("retried Action = %q, %v, want charge-2, nil", got, err)
		}
		// A failing compensation also leaves nothing behind.
		failingComp := func(tx *storage.Tx) ([]byte, error) { return nil, boom }
		if _, err := barrier.Compensate(ctx, p.db, "s1", "charge", failingComp); !errors.Is(err, boom) {
			t.Fatalf("Compensate(failing) = %v, want %v", err, boom)
		}
		got, err = barrier.Compensate(ctx, p.db, "s1", "charge", p.compensation("s1"))
		if err != nil || string(got) != "refund-1" {
			t.Fatalf("retried Compensate = %q, %v, want refund-1, nil", got, err)
		}
	})
}

func TestCompensationAfterAction(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		act, err := barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
		if err != nil {
			t.Fatal(err)
		}
		first, err := barrier.Compensate(ctx, p.db, "s1", "charge", p.compensation("s1"))
		if err != nil || string(first) != "refund-1" {
			t.Fatalf("Compensate = %q, %v, want refund-1, nil", first, err)
		}
		got, err := barrier.Compensate(ctx, p.db, "s1", "charge", p.compensation("s1"))
		if err != nil || string(got) != string(first) {
			t.Fatalf("duplicate Compensate = %q, %v, want %q, nil", got, err, first)
		}
		if n := p.comps.Load(); n != 1 {
			t.Errorf("compensation fn ran %d times, want 1", n)
		}
		// A late duplicate of the action that did run still answers its
		// original result.
		got, err = barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
		if err != nil || string(got) != string(act) {
			t.Fatalf("Action after its compensation = %q, %v, want %q, nil", got, err, act)
		}
		if n := p.actions.Load(); n != 1 {
			t.Errorf("action fn ran %d times, want 1", n)
		}
	})
}

func TestCompensationBeforeAction(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			got, err := barrier.Compensate(ctx, p.db, "s1", "charge", p.compensation("s1"))
			if err != nil || got != nil {
				t.Fatalf("Compensate without action (call %d) = %q, %v, want nil, nil", i+1, got, err)
			}
		}
		if n := p.comps.Load(); n != 0 {
			t.Errorf("compensation fn ran %d times, want 0 (nothing to undo)", n)
		}
		for i := 0; i < 2; i++ {
			got, err := barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 0))
			if !errors.Is(err, barrier.ErrCompensated) || got != nil {
				t.Fatalf("Action after compensation (call %d) = %q, %v, want nil, ErrCompensated", i+1, got, err)
			}
		}
		if n := p.actions.Load(); n != 0 {
			t.Errorf("action fn ran %d times, want 0", n)
		}
		if got := p.effects(t, "s1", "action") + p.effects(t, "s1", "compensation"); got != 0 {
			t.Errorf("effects = %d, want 0", got)
		}
	})
}

func TestEmptyKeyRefused(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		if _, err := barrier.Action(ctx, p.db, "", "charge", p.action("", 0)); err == nil {
			t.Error(`Action("", charge) = nil error, want an error`)
		}
		if _, err := barrier.Compensate(ctx, p.db, "s1", "", p.compensation("s1")); err == nil {
			t.Error(`Compensate(s1, "") = nil error, want an error`)
		}
		if n := p.actions.Load() + p.comps.Load(); n != 0 {
			t.Errorf("fn ran %d times, want 0", n)
		}
	})
}

func TestConcurrentDuplicates(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		const callers = 8
		results := make([][]byte, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range callers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = barrier.Action(ctx, p.db, "s1", "charge", p.action("s1", 20*time.Millisecond))
			})
		}
		close(start)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: Action = %v", i, errs[i])
			}
			if string(results[i]) != "charge-1" {
				t.Errorf("caller %d: Action = %q, want charge-1", i, results[i])
			}
		}
		if n := p.actions.Load(); n != 1 {
			t.Errorf("action fn ran %d times under %d concurrent duplicates, want 1", n, callers)
		}
		if got := p.effects(t, "s1", "action"); got != 1 {
			t.Errorf("action effects = %d, want 1", got)
		}
	})
}

// TestConcurrentActionAndCompensation races an action with its
// compensation many times: either the action ran and was undone once, or
// it was refused and the compensation had nothing to do. Never an action
// left standing, never a compensation without its action.
func TestConcurrentActionAndCompensation(t *testing.T) {
	forEach(t, func(t *testing.T, p *participant) {
		ctx := context.Background()
		var refused, undone int
		for i := range 20 {
			id := fmt.Sprintf("race-%d", i)
			var actErr, compErr error
			var compRes []byte
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				_, actErr = barrier.Action(ctx, p.db, id, "charge", p.action(id, time.Millisecond))
			})
			wg.Go(func() {
				<-start
				compRes, compErr = barrier.Compensate(ctx, p.db, id, "charge", p.compensation(id))
			})
			close(start)
			wg.Wait()
			if compErr != nil {
				t.Fatalf("%s: Compensate = %v", id, compErr)
			}
			acts, comps := p.effects(t, id, "action"), p.effects(t, id, "compensation")
			switch {
			case errors.Is(actErr, barrier.ErrCompensated):
				refused++
				if acts != 0 || comps != 0 || compRes != nil {
					t.Errorf("%s: action refused but effects action=%d compensation=%d result=%q, want 0, 0, nil", id, acts, comps, compRes)
				}
			case actErr == nil:
				// The action won; the compensation either followed it or
				// came first and was a no-op (then the action is refused,
				// handled above). Compensate after a successful action
				// must have undone it.
				undone++
				if acts != 1 || comps != 1 {
					t.Errorf("%s: action ran but effects action=%d compensation=%d, want 1, 1", id, acts, comps)
				}
			default:
				t.Fatalf("%s: Action = %v", id, actErr)
			}
		}
		t.Logf("refused %d, undone %d", refused, undone)
	})
}
