package saga_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga"
)

// order is the saga data of the test definitions.
type order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

var fast = saga.RetryPolicy{MaxAttempts: 4, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}

var errUnavailable = status.Error(codes.Unavailable, "processor unavailable")

// participant is a fake participant that, like one behind a barrier, runs
// each effect at most once per idempotency key and answers duplicates
// with the first result. Behaviours are scripted per step name.
type participant struct {
	mu       sync.Mutex
	effects  map[string]int    // idempotency key → effects (must stay ≤ 1)
	results  map[string][]byte // idempotency key → first result
	calls    map[string]int    // step name → invocations
	order    []string          // step names in the order their effects happened
	running  map[string]int    // idempotency key → invocations in flight
	overlaps int               // invocations that overlapped another of the same key
	script   map[string]func(ctx context.Context, c saga.Call[order]) error
	who      map[string]map[string]bool // step name → engines that invoked it
}

func newParticipant() *participant {
	return &participant{
		effects: map[string]int{}, results: map[string][]byte{}, calls: map[string]int{},
		running: map[string]int{}, script: map[string]func(context.Context, saga.Call[order]) error{}, who: map[string]map[string]bool{},
	}
}

// on scripts step name: fn runs before the effect and may fail it.
func (p *participant) on(name string, fn func(ctx context.Context, c saga.Call[order]) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script[name] = fn
}

// fn returns the action or compensation called name, invoked by engine
// who.
func (p *participant) fn(name, who string) saga.Func[order] {
	return func(ctx context.Context, c saga.Call[order]) ([]byte, error) {
		p.mu.Lock()
		p.calls[name]++
		if p.who[name] == nil {
			p.who[name] = map[string]bool{}
		}
		p.who[name][who] = true
		p.running[c.IdempotencyKey]++
		if p.running[c.IdempotencyKey] > 1 {
			p.overlaps++
		}
		script := p.script[name]
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.running[c.IdempotencyKey]--
			p.mu.Unlock()
		}()
		if script != nil {
			if err := script(ctx, c); err != nil {
				return nil, err
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if r, ok := p.results[c.IdempotencyKey]; ok {
			return r, nil
		}
		p.effects[c.IdempotencyKey]++
		p.order = append(p.order, name)
		r := []byte(fmt.Sprintf(`{"step":%q,"order":%q}`, name, c.Data.ID))
		p.results[c.IdempotencyKey] = r
		return r, nil
	}
}

func (p *participant) callsOf(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[name]
}

func (p *participant) effectOrder() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...)
}

// checkOnce fails t if any effect happened more than once or two
// invocations of one key overlapped.
func (p *participant) checkOnce(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, n := range p.effects {
		if n > 1 {
			t.Errorf("effect %s happened %d times, want at most 1", k, n)
		}
	}
	if p.overlaps > 0 {
		t.Errorf("%d invocations overlapped another of the same idempotency key, want 0", p.overlaps)
	}
}

// finishes records the OnFinish calls of a definition, and writes each in
// the finishing transaction to the table finished.
type finishes struct {
	mu   sync.Mutex
	list []saga.Finish[order]
	fail error
}

func (f *finishes) onFinish(ctx context.Context, tx *storage.Tx, fin saga.Finish[order]) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	if _, err := tx.Exec(ctx, `INSERT INTO finished (saga_id, state, reason) VALUES ($1, $2, $3)`, fin.SagaID, string(fin.State), fin.Reason); err != nil {
		return err
	}
	f.mu.Lock()
	f.list = append(f.list, fin)
	f.mu.Unlock()
	return nil
}

func (f *finishes) get(id string) []saga.Finish[order] {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []saga.Finish[order]
	for _, x := range f.list {
		if x.SagaID == id {
			out = append(out, x)
		}
	}
	return out
}

// purchase is the shape most tests use:
//
//	reserve (compensatable) → charge (compensatable) → grant (pivot) → notify (retriable)
func purchase(p *participant, f *finishes, who string) *saga.Definition[order] {
	return saga.MustDefine("purchase", []saga.Step[order]{
		{Name: "reserve", Class: saga.Compensatable, Action: p.fn("reserve", who), Compensation: p.fn("release", who), CompensationName: "release", Retry: fast, CompensationRetry: fast},
		{Name: "charge", Class: saga.Compensatable, Action: p.fn("charge", who), Compensation: p.fn("refund", who), CompensationName: "refund",
			Retry: fast, CompensationRetry: fast, ExhaustedReason: "payment_unavailable", Participant: "billing", Method: "/billing/Charge", CompensationMethod: "/billing/Refund"},
		{Name: "grant", Class: saga.Pivot, Action: p.fn("grant", who), Compensation: p.fn("revoke", who), CompensationName: "revoke", Retry: fast, CompensationRetry: fast},
		{Name: "notify", Class: saga.Retriable, Action: p.fn("notify", who), Retry: fast},
	}, saga.DefinitionOptions[order]{OnFinish: f.onFinish})
}

// openDB returns a fresh migrated database per backend.
func forEachDB(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	storagetest.ForEach(t, "sagatest", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := saga.Migrate(ctx, db); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if err := saga.Migrate(ctx, db); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
		if _, err := db.Exec(ctx, `CREATE TABLE finished (saga_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		fn(t, db)
	})
}

type engine struct {
	*saga.Engine
	stop func()
}

// start runs an engine on db until stop or the end of the test.
func start(t *testing.T, db *storage.DB, opts saga.Options, defs ...saga.Definer) *engine {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	e, err := saga.New(db, opts, defs...)
	if err != nil {
		t.Fatalf("saga.New: %v", err)
	}
	return run(t, e)
}

func run(t testing.TB, e *saga.Engine) *engine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("engine did not stop within 10s")
			}
		})
	}
	t.Cleanup(stop)
	return &engine{Engine: e, stop: stop}
}

// create records saga id in its own transaction and notifies e.
func create(t *testing.T, db *storage.DB, e *saga.Engine, def saga.Definer, id string, notify bool) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *storage.Tx) error {
		return e.Create(context.Background(), tx, def, id, order{ID: id, Amount: 799})
	})
	if err != nil {
		t.Fatalf("Create(%s) = %v", id, err)
	}
	if notify {
		e.Notify(id)
	}
}

// waitFor polls saga id until it reaches want, failing on another final
// state or after the deadline.
func waitFor(t *testing.T, e *saga.Engine, id string, want saga.State) saga.Saga {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("Get(%s) = %v", id, err)
		}
		if s.State == want {
			return s
		}
		if s.State.Terminal() || (s.State == saga.StateNeedsAttention && want != s.State) {
			t.Fatalf("saga %s ended %s (reason %q, last error %q), want %s", id, s.State, s.Reason, s.LastError, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("saga %s still %s at step %s (last error %q) after 15s, want %s", id, s.State, s.StepName, s.LastError, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stepOf(s saga.Saga, name string, kind saga.Kind) (saga.StepRecord, bool) {
	for _, st := range s.Steps {
		if st.Name == name && st.Kind == kind {
			return st, true
		}
	}
	return saga.StepRecord{}, false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var errBoom = errors.New("boom")
