package sagachaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/saga"
)

// Participant calls replayed as a flaky network would deliver them:
// duplicated, reordered, a compensation before its action. For a saga the
// engine ran, only calls the engine itself sends (or will send) are
// replayed, as the saga log shows; for fresh saga ids the engine never
// ran, anything goes. Every answer to one idempotency key must be the
// same, and the one the participant's database records.

// The calls of a CreateOrder saga.
const (
	opCharge = "charge"
	opRefund = "refund"
	opGrant  = "grant"
	opRevoke = "revoke"
)

// delivery is one participant call.
type delivery struct {
	op     string
	sagaID string
	data   SagaData
	reason string
	// fresh marks a saga the engine never ran: the call must get through.
	fresh bool
}

func (d delivery) chargeKey() string { return Key(d.sagaID, StepCharge, saga.KindAction) }
func (d delivery) grantKey() string  { return Key(d.sagaID, StepGrant, saga.KindAction) }

// key is the idempotency key the call carries.
func (d delivery) key() string {
	switch d.op {
	case opRefund:
		return Key(d.sagaID, StepCharge, saga.KindCompensation)
	case opGrant:
		return d.grantKey()
	case opRevoke:
		return Key(d.sagaID, StepGrant, saga.KindCompensation)
	}
	return d.chargeKey()
}

// reply is what a participant answered, reduced to what must not change
// between duplicates.
type reply struct {
	id, status string
	amount     int64
}

func (r reply) String() string { return fmt.Sprintf("{%s %s %d}", r.id, r.status, r.amount) }

// ledger is every answer to a replayed call.
type ledger struct {
	mu      sync.Mutex
	replies map[string][]reply // by key
	ops     map[string]string  // key → op
	engine  map[string]bool    // keys of sagas the engine ran
	sent    map[string]int     // deliveries sent, by op
	fresh   map[string]int     // fresh scenarios, by kind
	dropped int                // engine-saga duplicates never answered (a lost message)
	// problems are answers that must not happen.
	problems []string
}

func newLedger() *ledger {
	return &ledger{replies: map[string][]reply{}, ops: map[string]string{}, engine: map[string]bool{}, sent: map[string]int{}, fresh: map[string]int{}}
}

func (l *ledger) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *ledger) get(key string) []reply {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]reply(nil), l.replies[key]...)
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0
	for _, n := range l.sent {
		total += n
	}
	return fmt.Sprintf("%d calls (charge %d, refund %d, grant %d, revoke %d; %d unanswered) over %d keys; fresh sagas %s",
		total, l.sent[opCharge], l.sent[opRefund], l.sent[opGrant], l.sent[opRevoke], l.dropped, len(l.replies), counts(l.fresh))
}

// deliver sends d, retrying transient failures (a participant down, a
// duplicate in progress) for up to a minute, or three for a fresh saga's
// call, which must get through.
func (r *run) deliver(ctx context.Context, d delivery) {
	l := r.ledger
	l.mu.Lock()
	l.sent[d.op]++
	l.ops[d.key()] = d.op
	if !d.fresh {
		l.engine[d.key()] = true
	}
	l.mu.Unlock()
	limit := time.Minute
	if d.fresh {
		limit = 3 * time.Minute
	}
	start := time.Now()
	wait := 50 * time.Millisecond
	for {
		rep, err := r.send(ctx, d)
		if err == nil {
			l.mu.Lock()
			l.replies[d.key()] = append(l.replies[d.key()], rep)
			l.mu.Unlock()
			return
		}
		if !transient(err) {
			// A grant of a title that cannot be rented now is refused, and
			// nothing recorded: the engine gets the same answer.
			if d.op == opGrant && rpcerr.Is(err, "TITLE_UNAVAILABLE") {
				l.mu.Lock()
				l.replies[d.key()] = append(l.replies[d.key()], reply{status: "refused TITLE_UNAVAILABLE"})
				l.mu.Unlock()
				return
			}
			l.problem("%s %s: answered %v", d.op, d.key(), err)
			return
		}
		if time.Since(start) > limit || ctx.Err() != nil {
			if d.fresh {
				l.problem("%s %s (a saga never run): no answer in %s: %v", d.op, d.key(), limit, err)
			} else {
				l.mu.Lock()
				l.dropped++
				l.mu.Unlock()
			}
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(wait*2, time.Second)
	}
}

func (r *run) send(ctx context.Context, d delivery) (reply, error) {
	ctx, cancel := context.WithTimeout(asViewer(ctx, d.data.AccountID), 20*time.Second)
	defer cancel()
	g := d.data
	switch d.op {
	case opCharge:
		resp, err := r.billing.Charge(ctx, &billingv1.ChargeRequest{
			IdempotencyKey: d.key(), OrderId: g.OrderID, SagaId: d.sagaID, AccountId: g.AccountID,
			Amount: &billingv1.Money{AmountMinor: g.AmountMinor, Currency: g.Currency}, Description: g.Description,
			Source: &billingv1.ChargeRequest_PaymentMethodId{PaymentMethodId: g.PaymentMethodID},
		})
		if err != nil {
			return reply{}, err
		}
		c := resp.GetCharge()
		return reply{id: c.GetId(), status: c.GetStatus(), amount: c.GetAmount().GetAmountMinor()}, nil
	case opRefund:
		reason := d.reason
		if reason == "" {
			reason = "replayed"
		}
		resp, err := r.billing.Refund(ctx, &billingv1.RefundRequest{
			IdempotencyKey: d.key(), OrderId: g.OrderID, SagaId: d.sagaID, AccountId: g.AccountID,
			ChargeIdempotencyKey: d.chargeKey(), Reason: reason,
		})
		if err != nil {
			return reply{}, err
		}
		f := resp.GetRefund()
		return reply{id: f.GetId(), status: f.GetStatus(), amount: f.GetAmount().GetAmountMinor()}, nil
	case opGrant:
		resp, err := r.play.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{
			IdempotencyKey: d.key(), OrderId: g.OrderID, SagaId: d.sagaID, AccountId: g.AccountID,
			PlanId: g.PlanID, MaxStreams: g.MaxStreams, TitleId: g.TitleID, RentalDurationSeconds: g.RentalSeconds,
		})
		if err != nil {
			return reply{}, err
		}
		e := resp.GetEntitlement()
		return reply{id: e.GetId(), status: e.GetStatus()}, nil
	case opRevoke:
		resp, err := r.play.RevokeEntitlement(ctx, &playbackv1.RevokeEntitlementRequest{
			IdempotencyKey: d.key(), OrderId: g.OrderID, SagaId: d.sagaID, AccountId: g.AccountID,
			GrantIdempotencyKey: d.grantKey(), Reason: d.reason,
		})
		if err != nil {
			return reply{}, err
		}
		e := resp.GetEntitlement()
		return reply{id: e.GetId(), status: e.GetStatus()}, nil
	}
	return reply{}, fmt.Errorf("unknown op %q", d.op)
}

// permitted lists the calls the engine sent or will send for the saga v
// shows: the charge always; the grant once the charge succeeded; the
// refund and the revocation once the saga compensates them.
func permitted(v SagaView) []delivery {
	g := v.Saga
	if g.State == string(saga.StateNeedsAttention) {
		return nil
	}
	var data SagaData
	if err := json.Unmarshal(g.Data, &data); err != nil {
		return nil
	}
	base := delivery{sagaID: g.ID, data: data, reason: g.Reason}
	with := func(op string) delivery { d := base; d.op = op; return d }
	out := []delivery{with(opCharge)}
	if s, ok := v.Step(0, "action"); ok && s.State == string(saga.StepSucceeded) {
		out = append(out, with(opGrant))
	}
	compensating := g.State == string(saga.StateCompensating)
	if _, ok := v.Step(0, "compensation"); ok || compensating {
		out = append(out, with(opRefund))
	}
	if _, ok := v.Step(1, "compensation"); ok || (compensating && g.Step == 1) {
		out = append(out, with(opRevoke))
	}
	return out
}

// storm sends each delivery copies times (1 to 3), all at once, in a
// shuffled order with small random delays, and waits for every answer.
func (r *run) storm(ctx context.Context, rng *rand.Rand, ds []delivery, maxCopies int) {
	var all []delivery
	for _, d := range ds {
		for range 1 + rng.IntN(maxCopies) {
			all = append(all, d)
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var wg sync.WaitGroup
	for i, d := range all {
		delay := time.Duration(i)*time.Millisecond + time.Duration(rng.IntN(5))*time.Millisecond
		wg.Go(func() {
			time.Sleep(delay)
			r.deliver(ctx, d)
		})
	}
	wg.Wait()
}

// replayEngineSaga replays a random subset of saga id's permitted calls.
func (r *run) replayEngineSaga(ctx context.Context, rng *rand.Rand, sagaID string, all bool) {
	v, err := r.dbs.SagaView(ctx, sagaID)
	if err != nil {
		return // the orders database is busy being recovered: try another
	}
	ds := permitted(v)
	if !all {
		rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
		ds = ds[:1+rng.IntN(len(ds))]
	}
	r.storm(ctx, rng, ds, 3)
}

// replayLoop replays calls of random sagas, and runs scenarios on fresh
// saga ids, while the faults go on, until ctx ends. The calls it started
// finish on their own (r.replays).
func (r *run) replayLoop(ctx context.Context, rng *rand.Rand) {
	sem := make(chan struct{}, 24)
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(40+rng.IntN(160)) * time.Millisecond):
		}
		ids := r.placed.ids()
		if len(ids) == 0 {
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // enough in flight
		}
		n++
		sub := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		var job func(context.Context)
		if n%12 == 0 {
			i := n / 12
			job = func(ctx context.Context) { r.fresh(ctx, sub, fmt.Sprintf("c%d", i), freshKinds[i%len(freshKinds)]) }
		} else {
			orderID := ids[rng.IntN(len(ids))]
			job = func(ctx context.Context) {
				if sagaID, err := r.dbs.SagaOfOrder(ctx, orderID); err == nil {
					r.replayEngineSaga(ctx, sub, sagaID, false)
				}
			}
		}
		r.replays.Go(func() {
			defer func() { <-sem }()
			job(context.WithoutCancel(ctx))
		})
	}
}

// replayFinished replays every call of a sample of the sagas, now ended.
func (r *run) replayFinished(ctx context.Context, rng *rand.Rand) {
	ids := r.placed.ids()
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:min(len(ids), max(50, len(ids)/8))]
	jobs := make(chan string)
	var wg sync.WaitGroup
	for w := range 8 {
		sub := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
		wg.Go(func() {
			for id := range jobs {
				if sagaID, err := r.dbs.SagaOfOrder(ctx, id); err == nil {
					r.replayEngineSaga(ctx, sub, sagaID, true)
				} else {
					r.ledger.problem("order %s: %v", id, err)
				}
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
}

// The scenarios run on sagas the engine never ran.
var freshKinds = []string{"refund_first", "revoke_first", "charge_storm", "grant_storm"}

// freshScenarios runs n scenarios, four at a time.
func (r *run) freshScenarios(ctx context.Context, rng *rand.Rand, n int) {
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		sub := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r.fresh(ctx, sub, fmt.Sprintf("f%d", i), freshKinds[i%len(freshKinds)])
		})
	}
	wg.Wait()
}

// fresh runs one scenario of kind on a new saga id, for a new account:
//
//	refund_first  Refund, then Charge and Refund duplicated at once: nothing
//	              refunded, and every Charge answers cancelled (no money taken);
//	revoke_first  RevokeEntitlement, then Grant and Revoke duplicated at
//	              once: every Grant answers cancelled (nothing granted);
//	charge_storm  Charge and Refund duplicated at once: either the charge
//	              succeeded and was refunded in full, or it was cancelled
//	              and there was nothing to refund;
//	grant_storm   Grant and Revoke duplicated at once: either the grant
//	              was given and revoked, or it was cancelled.
func (r *run) fresh(ctx context.Context, rng *rand.Rand, name, kind string) {
	id := fmt.Sprintf("fresh-%d-%s", r.cfg.seed, name)
	acct := "acct-" + id
	data := SagaData{OrderID: "order-" + id, AccountID: acct, Kind: "rental", AmountMinor: 399, Currency: "USD", Description: "Rental: replayed saga"}
	if rng.IntN(2) == 0 {
		data.TitleID, data.RentalSeconds = r.rentable[rng.IntN(len(r.rentable))], 48*3600
	} else {
		data.Kind, data.PlanID, data.MaxStreams, data.AmountMinor, data.Description = "plan", "basic", 1, 799, "Basic plan, monthly"
	}
	if kind == "refund_first" || kind == "charge_storm" {
		pm, err := r.paymentMethod(ctx, acct, id)
		if err != nil {
			r.ledger.problem("fresh %s: payment method: %v", id, err)
			return
		}
		data.PaymentMethodID = pm
	}
	d := func(op string) delivery {
		return delivery{op: op, sagaID: id, data: data, reason: "replayed_" + kind, fresh: true}
	}
	r.ledger.mu.Lock()
	r.ledger.fresh[kind]++
	r.ledger.mu.Unlock()
	switch kind {
	case "refund_first":
		r.deliver(ctx, d(opRefund))
		r.storm(ctx, rng, []delivery{d(opCharge), d(opRefund)}, 3)
	case "revoke_first":
		r.deliver(ctx, d(opRevoke))
		r.storm(ctx, rng, []delivery{d(opGrant), d(opRevoke)}, 3)
	case "charge_storm":
		r.storm(ctx, rng, []delivery{d(opCharge), d(opRefund)}, 3)
	case "grant_storm":
		r.storm(ctx, rng, []delivery{d(opGrant), d(opRevoke)}, 3)
	}
	first := func(op string) (reply, bool) {
		rs := r.ledger.get(d(op).key())
		if len(rs) == 0 {
			return reply{}, false
		}
		return rs[0], true
	}
	switch kind {
	case "refund_first", "charge_storm":
		c, ok1 := first(opCharge)
		f, ok2 := first(opRefund)
		if !ok1 || !ok2 {
			return // reported by deliver
		}
		charged := c.status == "succeeded" && f.status == "succeeded" && f.amount == c.amount
		cancelled := c.status == "cancelled" && f.status == "nothing_to_refund"
		if !(cancelled || (charged && kind == "charge_storm")) {
			r.ledger.problem("fresh %s (%s): charge answered %v and refund %v; want cancelled and nothing_to_refund%s",
				id, kind, c, f, map[bool]string{true: ", or succeeded and refunded in full"}[kind == "charge_storm"])
		}
	case "revoke_first", "grant_storm":
		g, ok1 := first(opGrant)
		v, ok2 := first(opRevoke)
		if !ok1 || !ok2 {
			return
		}
		granted := g.id != "" && g.status == "active" && v.id == g.id && v.status == "revoked"
		cancelled := g.status == "cancelled" && v.status == "cancelled" && g.id == "" && v.id == ""
		if !(cancelled || (granted && kind == "grant_storm")) {
			r.ledger.problem("fresh %s (%s): grant answered %v and revocation %v; want both cancelled%s",
				id, kind, g, v, map[bool]string{true: ", or granted then revoked"}[kind == "grant_storm"])
		}
	}
}

// paymentMethod stores a 4242 card for acct through billing.
func (r *run) paymentMethod(ctx context.Context, acct, id string) (string, error) {
	start := time.Now()
	for {
		cctx, cancel := context.WithTimeout(asViewer(ctx, acct), 10*time.Second)
		resp, err := r.billing.CreatePaymentMethod(cctx, &billingv1.CreatePaymentMethodRequest{
			IdempotencyKey: "pm-" + id, AccountId: acct,
			Card: &billingv1.PaymentCard{CardNumber: "4242424242424242", ExpMonth: 12, ExpYear: int32(time.Now().Year() + 3), Cvc: "123"},
		})
		cancel()
		if err == nil {
			return resp.GetPaymentMethod().GetId(), nil
		}
		if !transient(err) || time.Since(start) > 2*time.Minute {
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// verify checks the answers against each other, against the databases
// and against what the engine recorded from its own calls.
func (l *ledger) verify(s *Snapshot) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.problems...)
	charges := map[string]Charge{}
	for _, c := range s.Charges {
		charges[c.IdempotencyKey] = c
	}
	refunds := map[string]Refund{}
	for _, f := range s.Refunds {
		refunds[f.IdempotencyKey] = f
	}
	ents := map[string]Entitlement{}
	for _, e := range s.Entitlements {
		ents[e.IdempotencyKey] = e
	}
	outputs := map[string][]byte{} // engine's recorded output by the call's key
	for _, st := range s.Steps {
		if st.State != string(saga.StepSucceeded) {
			continue
		}
		step := StepCharge
		if st.Index == 1 {
			step = StepGrant
		}
		outputs[Key(st.SagaID, step, saga.Kind(st.Kind))] = st.Output
	}
	keys := make([]string, 0, len(l.replies))
	for k := range l.replies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		rs := l.replies[key]
		op := l.ops[key]
		first := rs[0]
		for _, x := range rs[1:] {
			if x != first {
				out = append(out, fmt.Sprintf("%s %s: duplicates answered %v and %v", op, key, first, x))
				break
			}
		}
		bad := func(format string, args ...any) {
			out = append(out, fmt.Sprintf("%s %s answered %v, but ", op, key, first)+fmt.Sprintf(format, args...))
		}
		switch op {
		case opCharge:
			c, ok := charges[key]
			if !ok || c.ID != first.id || c.Status != first.status || c.Amount != first.amount {
				bad("billing records %+v (found %v)", c, ok)
			}
			if b, ok := outputs[key]; ok && !strings.Contains(string(b), `"`+first.id+`"`) {
				bad("the engine recorded %s", b)
			}
		case opRefund:
			f, ok := refunds[key]
			if !ok || f.ID != first.id || f.Status != first.status || f.Amount != first.amount {
				bad("billing records %+v (found %v)", f, ok)
			}
			if b, ok := outputs[key]; ok && !strings.Contains(string(b), `"`+first.id+`"`) {
				bad("the engine recorded %s", b)
			}
		case opGrant, opRevoke:
			grantKey := key
			if op == opRevoke {
				grantKey = strings.TrimSuffix(key, string(saga.KindCompensation)) + string(saga.KindAction)
			}
			e, ok := ents[grantKey]
			switch {
			case (first.status == "cancelled" || strings.HasPrefix(first.status, "refused")) && ok:
				bad("playback holds entitlement %s (%s) for it", e.ID, e.Status)
			case first.id != "" && (!ok || e.ID != first.id):
				bad("playback records %+v (found %v)", e, ok)
			case op == opRevoke && first.status != "cancelled" && e.Status != "revoked":
				bad("the entitlement is %s", e.Status)
			}
			if b, ok := outputs[key]; ok && first.id != "" && !strings.Contains(string(b), `"`+first.id+`"`) {
				bad("the engine recorded %s", b)
			}
		}
	}
	return out
}
