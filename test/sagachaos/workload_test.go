package sagachaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	"github.com/marquee-tv/marquee/internal/catalog"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

// The product's test cards (PRODUCT §4) and how often the workload uses
// each; the slow one least, since each of its charges takes five seconds.
var testCards = []struct {
	number, class string
	weight        int
}{
	{"4242424242424242", "approved", 70},
	{"4000000000000002", "declined", 8},
	{"4000000000009995", "insufficient_funds", 7},
	{"4000000000000119", "unavailable", 12},
	{"4000000000000259", "slow", 3},
}

// classWithdrawn marks a rental of the withdrawn title (with an approved
// card): charged, then refused by playback, so refunded.
const classWithdrawn = "withdrawn"

var plans = []string{"basic", "standard", "premium"}

// orderSpec is one order the workload places.
type orderSpec struct {
	account, key string
	plan, title  string
	card, class  string
	// resend is how many more times the same request is sent with the same
	// key once answered; concurrent sends one more at the same time as the
	// first.
	resend     int
	concurrent bool
	// secondPlan places another plan order (another key) right after this
	// one: ORDER_IN_PROGRESS while this one is pending.
	secondPlan bool
}

// account is the orders of one account, placed one after the other.
type account struct {
	id     string
	orders []*orderSpec
}

type workload []*account

func makeWorkload(rng *rand.Rand, n int, rentable []string) workload {
	total := 0
	for _, c := range testCards {
		total += c.weight
	}
	card := func() (string, string) {
		x := rng.IntN(total)
		for _, c := range testCards {
			if x < c.weight {
				return c.number, c.class
			}
			x -= c.weight
		}
		panic("unreachable")
	}
	key := func() string { return fmt.Sprintf("k-%016x", rng.Uint64()) }
	var w workload
	count := 0
	for i := 0; count < n; i++ {
		a := &account{id: fmt.Sprintf("chaos-%08x-%05d", rng.Uint32(), i)}
		if rng.Float64() < 0.6 {
			o := &orderSpec{account: a.id, key: key(), plan: plans[rng.IntN(len(plans))]}
			o.card, o.class = card()
			o.secondPlan = rng.Float64() < 0.05
			a.orders = append(a.orders, o)
		}
		rentals := rng.IntN(3)
		if len(a.orders) == 0 && rentals == 0 {
			rentals = 1
		}
		for range rentals {
			o := &orderSpec{account: a.id, key: key()}
			if rng.Float64() < 0.06 {
				o.title, o.card, o.class = catalog.WithdrawnTitleID, testCards[0].number, classWithdrawn
			} else {
				o.title = rentable[rng.IntN(len(rentable))]
				o.card, o.class = card()
			}
			a.orders = append(a.orders, o)
		}
		for _, o := range a.orders {
			if x := rng.Float64(); x < 0.12 {
				o.resend = 1 + rng.IntN(2)
			} else if x < 0.17 {
				o.concurrent = true
			}
		}
		if count+len(a.orders) > n {
			a.orders = a.orders[:n-count]
		}
		count += len(a.orders)
		w = append(w, a)
	}
	return w
}

func (w workload) describe() string {
	m := map[string]int{}
	for _, a := range w {
		for _, o := range a.orders {
			kind := "rental"
			if o.plan != "" {
				kind = "plan"
			}
			m[kind+"/"+o.class]++
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func asViewer(ctx context.Context, acct string) context.Context {
	return principal.NewOutgoingContext(ctx, principal.Principal{AccountID: acct, Roles: []string{principal.RoleViewer}})
}

// transient reports whether a call failed for a reason a client retries
// with the same idempotency key: a process down or restarting, a deadline,
// a concurrent duplicate in progress.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// placed is what the clients were answered.
type placed struct {
	mu sync.Mutex
	// byKey is the order id each key was answered with, every time.
	byKey map[string][]string
	specs map[string]*orderSpec // by key
	// failures are requests that never got an answer, or a wrong one.
	failures []string
	// internal counts INTERNAL answers (retried, but suspicious).
	internal map[string]int
	// inProgress counts second plan orders refused with ORDER_IN_PROGRESS;
	// secondAccepted those accepted (the first had ended).
	inProgress, secondAccepted int

	retries atomic.Int64
}

func newPlaced() *placed {
	return &placed{byKey: map[string][]string{}, specs: map[string]*orderSpec{}, internal: map[string]int{}}
}

func (p *placed) record(o *orderSpec, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byKey[o.key] = append(p.byKey[o.key], id)
	p.specs[o.key] = o
}

func (p *placed) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failures = append(p.failures, fmt.Sprintf(format, args...))
}

func (p *placed) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byKey)
}

// ids returns every order id answered so far.
func (p *placed) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.byKey))
	for _, ids := range p.byKey {
		out = append(out, ids[0])
	}
	sort.Strings(out)
	return out
}

// place sends the workload's orders at cfg.rate per second with
// cfg.clients concurrent clients, each account's orders in turn.
func (r *run) place(ctx context.Context, w workload) {
	jobs := make(chan *account)
	var wg sync.WaitGroup
	for range r.cfg.clients {
		wg.Go(func() {
			for a := range jobs {
				for _, o := range a.orders {
					r.placeOne(ctx, o)
				}
			}
		})
	}
	start := time.Now()
	sent := 0
	for _, a := range w {
		// Open loop: account i starts when its orders are due.
		due := start.Add(time.Duration(float64(sent) / r.cfg.rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		sent += len(a.orders)
		select {
		case jobs <- a:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
}

func (o *orderSpec) request() *ordersv1.CreateOrderRequest {
	return &ordersv1.CreateOrderRequest{
		PlanId: o.plan, TitleId: o.title, IdempotencyKey: o.key,
		Payment: &billingv1.PaymentCard{CardNumber: o.card, ExpMonth: 12, ExpYear: int32(time.Now().Year() + 3), Cvc: "123"},
	}
}

// create sends o until it is answered, retrying transient failures with
// the same key as a client would, for up to two minutes.
func (r *run) create(ctx context.Context, o *orderSpec) (string, error) {
	start := time.Now()
	wait := 100 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(asViewer(ctx, o.account), 15*time.Second)
		resp, err := r.orders.CreateOrder(cctx, o.request())
		cancel()
		if err == nil {
			return resp.GetOrderId(), nil
		}
		retry := transient(err)
		if status.Code(err) == codes.Internal {
			r.placed.mu.Lock()
			r.placed.internal[status.Convert(err).Message()]++
			r.placed.mu.Unlock()
			retry = true
		}
		if !retry || time.Since(start) > 2*time.Minute || ctx.Err() != nil {
			return "", err
		}
		r.placed.retries.Add(1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(wait*2, time.Second)
	}
}

func (r *run) placeOne(ctx context.Context, o *orderSpec) {
	var dup sync.WaitGroup
	if o.concurrent {
		dup.Go(func() {
			if id, err := r.create(ctx, o); err == nil {
				r.placed.record(o, id)
			} else {
				r.placed.fail("key %s (concurrent duplicate): %v", o.key, err)
			}
		})
	}
	id, err := r.create(ctx, o)
	if err != nil {
		r.placed.fail("key %s (%s, %s%s): never placed: %v", o.key, o.class, o.plan, o.title, err)
		dup.Wait()
		return
	}
	r.placed.record(o, id)
	for range o.resend {
		if again, err := r.create(ctx, o); err == nil {
			r.placed.record(o, again)
		} else {
			r.placed.fail("key %s: re-sent: %v", o.key, err)
		}
	}
	if o.secondPlan {
		second := *o
		second.key, second.secondPlan, second.resend, second.concurrent = o.key+"-2", false, 0, false
		id, err := r.create(ctx, &second)
		switch {
		case err == nil:
			r.placed.record(&second, id)
			r.placed.mu.Lock()
			r.placed.secondAccepted++
			r.placed.mu.Unlock()
		case rpcerr.Is(err, "ORDER_IN_PROGRESS") && status.Code(err) == codes.FailedPrecondition:
			r.placed.mu.Lock()
			r.placed.inProgress++
			r.placed.mu.Unlock()
		default:
			r.placed.fail("key %s: a second plan order while one is pending: %v, want ORDER_IN_PROGRESS or an order", second.key, err)
		}
	}
	dup.Wait()
}

// resendKeys sends a sample of the placed requests again, now that every
// saga ended: the same key must answer the same order.
func (r *run) resendKeys(ctx context.Context, rng *rand.Rand) {
	r.placed.mu.Lock()
	var specs []*orderSpec
	for _, o := range r.placed.specs {
		specs = append(specs, o)
	}
	r.placed.mu.Unlock()
	sort.Slice(specs, func(i, j int) bool { return specs[i].key < specs[j].key })
	rng.Shuffle(len(specs), func(i, j int) { specs[i], specs[j] = specs[j], specs[i] })
	for _, o := range specs[:min(len(specs), 100)] {
		id, err := r.create(ctx, o)
		if err != nil {
			r.placed.fail("key %s: re-sent after the run: %v", o.key, err)
			continue
		}
		r.placed.record(o, id)
	}
}

// verify checks what the clients were answered against the databases:
// one order per key, whatever the retries and duplicates; every order
// placed; and the outcome each card must have.
func (p *placed) verify(s *Snapshot) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, f := range p.failures {
		out = append(out, "client: "+f)
	}
	byID := map[string]Order{}
	for _, o := range s.Orders {
		byID[o.ID] = o
	}
	keyed := map[string]bool{}
	for key, ids := range p.byKey {
		o := byID[ids[0]]
		spec := p.specs[key]
		keyed[spec.account+" "+key] = true
		for _, id := range ids[1:] {
			if id != ids[0] {
				out = append(out, fmt.Sprintf("key %s answered orders %s and %s", key, ids[0], id))
			}
		}
		if o.ID == "" {
			out = append(out, fmt.Sprintf("key %s answered order %s, which is not in the database", key, ids[0]))
			continue
		}
		if o.AccountID != spec.account || o.IdempotencyKey != key {
			out = append(out, fmt.Sprintf("key %s answered order %s of account %s key %s", key, o.ID, o.AccountID, o.IdempotencyKey))
		}
		if bad := unexpected(spec, o); bad != "" {
			out = append(out, fmt.Sprintf("order %s (%s, card %s, %s%s): %s %s: %s", o.ID, spec.class, spec.card[12:], spec.plan, spec.title, o.Status, o.Reason, bad))
		}
	}
	for _, o := range s.Orders {
		if !keyed[o.AccountID+" "+o.IdempotencyKey] {
			out = append(out, fmt.Sprintf("order %s (account %s, key %s) was never answered to the client", o.ID, o.AccountID, o.IdempotencyKey))
		}
	}
	return out
}

// unexpected says what is wrong with the outcome of order o placed as
// spec, or "". Faults may fail any order whose participant stayed
// unreachable through its retries (payment_unavailable,
// entitlement_unavailable); nothing else may differ from the test card's
// outcome.
func unexpected(spec *orderSpec, o Order) string {
	unreachable := o.Status == "FAILED" && (o.Reason == "payment_unavailable" || o.Reason == "entitlement_unavailable")
	switch spec.class {
	case "approved", "slow":
		if o.Status == "COMPLETED" || unreachable {
			return ""
		}
		return "want COMPLETED"
	case "declined":
		if (o.Status == "REJECTED" && o.Reason == "card_declined") || unreachable {
			return ""
		}
		return "want REJECTED card_declined"
	case "insufficient_funds":
		if (o.Status == "REJECTED" && o.Reason == "insufficient_funds") || unreachable {
			return ""
		}
		return "want REJECTED insufficient_funds"
	case "unavailable":
		if o.Status == "FAILED" && o.Reason == "payment_unavailable" {
			return ""
		}
		return "want FAILED payment_unavailable"
	case classWithdrawn:
		if (o.Status == "FAILED" && o.Reason == "title_unavailable") || unreachable {
			return ""
		}
		return "want FAILED title_unavailable"
	}
	return "unknown class " + spec.class
}

// faultFailures describes the orders the faults failed: those whose card
// should have gone through (or been declined) but that ended FAILED because
// a participant stayed unreachable through the step's retries, with the
// last error of the step that gave up, grouped.
func (p *placed) faultFailures(s *Snapshot) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	bySaga := map[string][]SagaStep{}
	for _, st := range s.Steps {
		bySaga[st.SagaID] = append(bySaga[st.SagaID], st)
	}
	causes := map[string]int{}
	n := 0
	for _, o := range s.Orders {
		spec := p.specs[o.IdempotencyKey]
		if spec == nil || spec.class == "unavailable" || o.Status != "FAILED" || (o.Reason != "payment_unavailable" && o.Reason != "entitlement_unavailable") {
			continue
		}
		n++
		cause := "unknown"
		for _, st := range bySaga[o.SagaID] {
			if st.Kind == "action" && st.State == "failed" {
				cause = errorClass(st.Error)
			}
		}
		causes[o.Reason+": "+cause]++
	}
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%s)", n, counts(causes))
}

// errorClass reduces a step's last error to its kind.
func errorClass(e string) string {
	switch {
	case strings.Contains(e, "attempt budget"):
		return "attempts spent by interrupted attempts (orders killed)"
	case strings.Contains(e, "code = Aborted"):
		return "ABORTED IN_PROGRESS (the charge attempt of a killed billing holds the key)"
	case strings.Contains(e, "connection refused"):
		return "connection refused"
	}
	if _, code, ok := strings.Cut(e, "code = "); ok {
		code, _, _ = strings.Cut(code, " ")
		return code
	}
	if len(e) > 60 {
		e = e[:60]
	}
	return e
}
