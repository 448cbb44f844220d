package sagachaos

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/marquee-tv/marquee/internal/saga"
)

// The CreateOrder saga's step names and participant barrier step, as the
// orders, billing and playback services store them (internal/orders/saga.go,
// internal/billing/charge.go, internal/playback/saga.go).
const (
	StepCharge = "charge"
	StepGrant  = "grant_entitlement"
	// PlaybackBarrierStep is the step playback records its barrier rows
	// under; their saga id is the grant's idempotency key.
	PlaybackBarrierStep = "playback.entitlement"
)

// SagaData is the data orders keeps in the log of a CreateOrder saga (a
// stored JSON format): everything its steps send.
type SagaData struct {
	OrderID         string `json:"order_id"`
	AccountID       string `json:"account_id"`
	Kind            string `json:"kind"`
	PlanID          string `json:"plan_id,omitempty"`
	TitleID         string `json:"title_id,omitempty"`
	AmountMinor     int64  `json:"amount_minor"`
	Currency        string `json:"currency"`
	Description     string `json:"description"`
	PaymentMethodID string `json:"payment_method_id"`
	MaxStreams      int32  `json:"max_streams,omitempty"`
	RentalSeconds   int32  `json:"rental_seconds,omitempty"`
}

// SeedPrefix starts the idempotency keys of the demo data billing and
// playback seed (the demo viewer's subscription charge and plan): no saga
// made them, and Check leaves them out.
const SeedPrefix = "seed:"

// withoutSeed returns s without the seeded demo rows.
func withoutSeed(s *Snapshot) *Snapshot {
	out := *s
	out.Charges, out.Entitlements = nil, nil
	seeded := map[string]bool{}
	for _, c := range s.Charges {
		if strings.HasPrefix(c.IdempotencyKey, SeedPrefix) {
			seeded[c.ID] = true
			continue
		}
		out.Charges = append(out.Charges, c)
	}
	out.Invoices = nil
	for _, i := range s.Invoices {
		if !seeded[i.ChargeID] {
			out.Invoices = append(out.Invoices, i)
		}
	}
	out.Refunds = nil
	for _, f := range s.Refunds {
		if !seeded[f.ChargeID] {
			out.Refunds = append(out.Refunds, f)
		}
	}
	for _, e := range s.Entitlements {
		if !strings.HasPrefix(e.IdempotencyKey, SeedPrefix) {
			out.Entitlements = append(out.Entitlements, e)
		}
	}
	unseeded := func(bs []Barrier) []Barrier {
		var kept []Barrier
		for _, b := range bs {
			if !strings.HasPrefix(b.Step, SeedPrefix) && !strings.HasPrefix(b.SagaID, SeedPrefix) {
				kept = append(kept, b)
			}
		}
		return kept
	}
	out.BillingBarrier, out.PlaybackBarrier = unseeded(s.BillingBarrier), unseeded(s.PlaybackBarrier)
	return &out
}

// Key returns the idempotency key of a step of saga id.
func Key(sagaID, step string, kind saga.Kind) string { return saga.IdempotencyKey(sagaID, step, kind) }

// Report is what Check found.
type Report struct {
	// Orders and Sagas count the rows of orders and marquee_saga.
	Orders, Sagas int
	// ByStatus counts orders by status; ByReason by "STATUS reason".
	ByStatus, ByReason map[string]int
	// SagaStates counts sagas by state.
	SagaStates map[string]int
	// Retried counts the steps that took more than one attempt (faults
	// reached them), by "name/kind".
	Retried map[string]int
	// Charges, Refunds and Entitlements count the participants' rows.
	Charges, Refunds, Entitlements int
	// Violations describes every broken invariant, one per line.
	Violations []string
}

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Summary is the report in a few lines.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "orders %d, sagas %d, charges %d, refunds %d, entitlements %d\n", r.Orders, r.Sagas, r.Charges, r.Refunds, r.Entitlements)
	fmt.Fprintf(&b, "orders by status: %s\n", counts(r.ByStatus))
	fmt.Fprintf(&b, "orders by reason: %s\n", counts(r.ByReason))
	fmt.Fprintf(&b, "sagas by state:   %s\n", counts(r.SagaStates))
	fmt.Fprintf(&b, "steps retried:    %s\n", counts(r.Retried))
	fmt.Fprintf(&b, "violations:       %d", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n  - %s", v)
	}
	return b.String()
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// terminal maps an order status to the state its saga must have ended in.
var terminal = map[string]string{
	"COMPLETED": string(saga.StateCompleted),
	"REJECTED":  string(saga.StateRejected),
	"FAILED":    string(saga.StateCompensated),
}

// Check verifies the CreateOrder saga's invariants (PRODUCT §5) over s,
// once every saga should have ended:
//
//   - no saga is unfinished (running, compensating or needs_attention),
//     no order PENDING, and each order's status is its saga's end
//     (COMPLETED completed, REJECTED rejected, FAILED compensated);
//   - a COMPLETED order has exactly one succeeded, unrefunded charge of its
//     amount, made under its saga's charge key and named by the order, and
//     its entitlement (the one the order names, granted under its saga's
//     grant key) is active, or superseded by a later plan that is;
//   - a REJECTED or FAILED order has a net charge of zero and no active or
//     superseded entitlement; a REJECTED order has no succeeded charge at
//     all (nothing was taken, nothing undone);
//   - no order is charged twice, and no charge is made under another key
//     than its saga's;
//   - charges, refunds and invoices agree (refunded totals, one invoice
//     per succeeded charge); charges and entitlements of sagas that have
//     no order (calls replayed for sagas never run) net to nothing;
//   - each participant's barrier agrees with its effects: an action
//     recorded done has its effect, one recorded cancelled has none;
//   - money is conserved per account: what its charges hold, net of
//     refunds, is what its COMPLETED orders cost;
//   - an account has at most one active plan, and exactly one when it has
//     a COMPLETED plan order.
//
// The demo data the services seed (keys starting with SeedPrefix) is left
// out.
func Check(s *Snapshot) *Report {
	s = withoutSeed(s)
	r := &Report{
		Orders: len(s.Orders), Sagas: len(s.Sagas), Charges: len(s.Charges), Refunds: len(s.Refunds), Entitlements: len(s.Entitlements),
		ByStatus: map[string]int{}, ByReason: map[string]int{}, SagaStates: map[string]int{}, Retried: map[string]int{},
	}
	for _, st := range s.Steps {
		if st.Attempts > 1 {
			r.Retried[st.Name+"/"+st.Kind]++
		}
	}
	sagas := map[string]Saga{}
	for _, g := range s.Sagas {
		sagas[g.ID] = g
		r.SagaStates[g.State]++
	}
	orders := map[string]Order{}
	for _, o := range s.Orders {
		orders[o.ID] = o
	}
	chargesByOrder := map[string][]Charge{}
	chargeByKey := map[string]Charge{}
	for _, c := range s.Charges {
		chargesByOrder[c.OrderID] = append(chargesByOrder[c.OrderID], c)
		chargeByKey[c.IdempotencyKey] = c
	}
	refundedByCharge := map[string]int64{}
	for _, f := range s.Refunds {
		if f.Status == "succeeded" {
			refundedByCharge[f.ChargeID] += f.Amount
		}
	}
	invoicesByCharge := map[string]int{}
	for _, i := range s.Invoices {
		invoicesByCharge[i.ChargeID]++
	}
	entByID := map[string]Entitlement{}
	entByKey := map[string]Entitlement{}
	entsByOrder := map[string][]Entitlement{}
	supersededBy := map[string][]Entitlement{}
	for _, e := range s.Entitlements {
		entByID[e.ID] = e
		entByKey[e.IdempotencyKey] = e
		entsByOrder[e.OrderID] = append(entsByOrder[e.OrderID], e)
		if e.SupersedesID != "" {
			supersededBy[e.SupersedesID] = append(supersededBy[e.SupersedesID], e)
		}
	}
	live := func(e Entitlement) bool { return e.Status == "active" || e.Status == "superseded" }

	// Sagas.
	sagaOrder := map[string]bool{}
	for _, o := range s.Orders {
		sagaOrder[o.SagaID] = true
	}
	for _, g := range s.Sagas {
		if !saga.State(g.State).Terminal() {
			r.violate("saga %s unfinished: state %s at step %d (attempt %d), reason %q, last error %q", g.ID, g.State, g.Step, g.Attempts, g.Reason, g.LastError)
		}
		if !sagaOrder[g.ID] {
			r.violate("saga %s (%s) has no order", g.ID, g.State)
		}
	}

	// Orders.
	completedByAccount := map[string]int64{}
	completedPlan := map[string]bool{}
	for _, o := range s.Orders {
		r.ByStatus[o.Status]++
		r.ByReason[strings.TrimSpace(o.Status+" "+o.Reason)]++
		tag := fmt.Sprintf("order %s (%s %s%s, account %s)", o.ID, o.Status, o.Kind, o.PlanID+o.TitleID, o.AccountID)
		g, ok := sagas[o.SagaID]
		switch {
		case !ok:
			r.violate("%s: its saga %s is missing", tag, o.SagaID)
		case o.Status == "PENDING":
			r.violate("%s: still PENDING (saga %s, step %d attempt %d, last error %q)", tag, g.State, g.Step, g.Attempts, g.LastError)
		case terminal[o.Status] != g.State:
			r.violate("%s: saga %s ended %s (reason %q), want %s", tag, g.ID, g.State, g.Reason, terminal[o.Status])
		}
		if ok {
			var d SagaData
			if err := json.Unmarshal(g.Data, &d); err != nil || d.OrderID != o.ID || d.AccountID != o.AccountID || d.AmountMinor != o.Amount {
				r.violate("%s: saga %s data %s does not describe it (%v)", tag, g.ID, g.Data, err)
			}
		}
		chargeKey := Key(o.SagaID, StepCharge, saga.KindAction)
		grantKey := Key(o.SagaID, StepGrant, saga.KindAction)
		var succeeded []Charge
		var net int64
		for _, c := range chargesByOrder[o.ID] {
			if c.IdempotencyKey != chargeKey {
				r.violate("%s: charge %s made under key %q, not its saga's %q", tag, c.ID, c.IdempotencyKey, chargeKey)
			}
			if c.Status == "succeeded" {
				succeeded = append(succeeded, c)
				net += c.Amount - c.Refunded
			}
		}
		if len(succeeded) > 1 {
			r.violate("%s: charged %d times", tag, len(succeeded))
		}
		switch o.Status {
		case "COMPLETED":
			completedByAccount[o.AccountID+" "+o.Currency] += o.Amount
			if o.Kind == "plan" {
				completedPlan[o.AccountID] = true
			}
			unrefunded := 0
			for _, c := range succeeded {
				if c.Refunded == 0 {
					unrefunded++
				}
			}
			if len(succeeded) != 1 || unrefunded != 1 {
				r.violate("%s: %d succeeded charges, %d unrefunded; want exactly one, unrefunded", tag, len(succeeded), unrefunded)
			} else if c := succeeded[0]; c.ID != o.ChargeID || c.Amount != o.Amount || c.Currency != o.Currency {
				r.violate("%s: charge %s of %d %s, but the order names charge %q of %d %s", tag, c.ID, c.Amount, c.Currency, o.ChargeID, o.Amount, o.Currency)
			}
			e, ok := entByID[o.EntitlementID]
			switch {
			case !ok:
				r.violate("%s: its entitlement %q does not exist", tag, o.EntitlementID)
			case e.OrderID != o.ID || e.IdempotencyKey != grantKey || e.AccountID != o.AccountID || e.Kind != o.Kind || e.PlanID != o.PlanID || e.TitleID != o.TitleID:
				r.violate("%s: entitlement %s is of order %s, key %s, account %s, %s %s%s", tag, e.ID, e.OrderID, e.IdempotencyKey, e.AccountID, e.Kind, e.PlanID, e.TitleID)
			case e.Status == "active":
			case e.Status == "superseded" && e.Kind == "plan" && supersededLive(e, supersededBy, live):
			default:
				r.violate("%s: entitlement %s is %s, want active", tag, e.ID, e.Status)
			}
			for _, other := range entsByOrder[o.ID] {
				if other.ID != o.EntitlementID && live(other) {
					r.violate("%s: a second live entitlement %s (%s)", tag, other.ID, other.Status)
				}
			}
		case "REJECTED", "FAILED":
			if net != 0 {
				r.violate("%s: net charge %d, want 0", tag, net)
			}
			if o.Status == "REJECTED" && len(succeeded) > 0 {
				r.violate("%s: rejected, but charge %s succeeded (refunded %d)", tag, succeeded[0].ID, succeeded[0].Refunded)
			}
			for _, e := range entsByOrder[o.ID] {
				if live(e) {
					r.violate("%s: entitlement %s is %s, want none or revoked", tag, e.ID, e.Status)
				}
			}
		}
	}

	// Charges, refunds, invoices.
	heldByAccount := map[string]int64{}
	for _, c := range s.Charges {
		tag := fmt.Sprintf("charge %s (%s, order %s, key %s)", c.ID, c.Status, c.OrderID, c.IdempotencyKey)
		if c.Refunded != refundedByCharge[c.ID] {
			r.violate("%s: refunded %d, but its refunds total %d", tag, c.Refunded, refundedByCharge[c.ID])
		}
		if c.Refunded > c.Amount || c.Refunded < 0 {
			r.violate("%s: refunded %d of %d", tag, c.Refunded, c.Amount)
		}
		switch c.Status {
		case "succeeded":
			heldByAccount[c.AccountID+" "+c.Currency] += c.Amount - c.Refunded
			if invoicesByCharge[c.ID] != 1 {
				r.violate("%s: %d invoices, want 1", tag, invoicesByCharge[c.ID])
			}
			if _, ok := orders[c.OrderID]; !ok && c.Refunded != c.Amount {
				r.violate("%s: charge of no order (a saga never run) holds %d", tag, c.Amount-c.Refunded)
			}
		default:
			if invoicesByCharge[c.ID] != 0 {
				r.violate("%s: has an invoice", tag)
			}
		}
	}
	for _, e := range s.Entitlements {
		if _, ok := orders[e.OrderID]; !ok && live(e) {
			r.violate("entitlement %s (%s, key %s): of no order (a saga never run), but %s", e.ID, e.Kind, e.IdempotencyKey, e.Status)
		}
	}

	// Barriers against effects.
	barrier := map[string]string{} // saga|step|op → outcome
	for _, b := range s.BillingBarrier {
		barrier["billing|"+b.SagaID+"|"+b.Step+"|"+b.Op] = b.Outcome
	}
	for _, b := range s.PlaybackBarrier {
		barrier["playback|"+b.SagaID+"|"+b.Step+"|"+b.Op] = b.Outcome
	}
	for _, c := range s.Charges {
		out := barrier["billing|"+c.SagaID+"|"+c.IdempotencyKey+"|action"]
		switch {
		case (c.Status == "succeeded" || c.Status == "declined") && out != "done":
			r.violate("charge %s (%s, key %s): billing's barrier says %q, want done", c.ID, c.Status, c.IdempotencyKey, out)
		case c.Status == "cancelled" && out != "cancelled":
			r.violate("charge %s (cancelled, key %s): billing's barrier says %q, want cancelled", c.ID, c.IdempotencyKey, out)
		}
	}
	for _, b := range s.BillingBarrier {
		c, ok := chargeByKey[b.Step]
		switch {
		case b.Op == "action" && b.Outcome == "done" && (!ok || (c.Status != "succeeded" && c.Status != "declined")):
			r.violate("billing barrier %s/%s: action done, but its charge is %q (found %v)", b.SagaID, b.Step, c.Status, ok)
		case b.Op == "action" && b.Outcome == "cancelled" && ok && c.Status != "cancelled":
			r.violate("billing barrier %s/%s: action cancelled, but charge %s is %s", b.SagaID, b.Step, c.ID, c.Status)
		}
	}
	for _, e := range s.Entitlements {
		if out := barrier["playback|"+e.IdempotencyKey+"|"+PlaybackBarrierStep+"|action"]; out != "done" {
			r.violate("entitlement %s (%s, key %s): playback's barrier says %q, want done", e.ID, e.Status, e.IdempotencyKey, out)
		}
		if out := barrier["playback|"+e.IdempotencyKey+"|"+PlaybackBarrierStep+"|compensation"]; out == "done" && e.Status != "revoked" {
			r.violate("entitlement %s (key %s): its revocation ran, but it is %s", e.ID, e.IdempotencyKey, e.Status)
		}
	}
	for _, b := range s.PlaybackBarrier {
		if b.Step != PlaybackBarrierStep || b.Op != "action" {
			continue
		}
		_, ok := entByKey[b.SagaID]
		switch {
		case b.Outcome == "done" && !ok:
			r.violate("playback barrier %s: grant done, but no entitlement has that key", b.SagaID)
		case b.Outcome == "cancelled" && ok:
			r.violate("playback barrier %s: grant cancelled, but entitlement %s exists", b.SagaID, entByKey[b.SagaID].ID)
		}
	}

	// Money conservation per account and currency.
	accounts := map[string]bool{}
	for k := range heldByAccount {
		accounts[k] = true
	}
	for k := range completedByAccount {
		accounts[k] = true
	}
	keys := make([]string, 0, len(accounts))
	for k := range accounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if heldByAccount[k] != completedByAccount[k] {
			r.violate("account %s: charges hold %d net of refunds, completed orders cost %d", k, heldByAccount[k], completedByAccount[k])
		}
	}

	// Plans per account.
	activePlans := map[string][]Entitlement{}
	for _, e := range s.Entitlements {
		if e.Kind == "plan" && e.Status == "active" {
			activePlans[e.AccountID] = append(activePlans[e.AccountID], e)
		}
	}
	for acct, es := range activePlans {
		if len(es) > 1 {
			ids := make([]string, len(es))
			for i, e := range es {
				ids[i] = e.ID
			}
			r.violate("account %s: %d active plans (%s), want at most one", acct, len(es), strings.Join(ids, ", "))
		}
		for _, e := range es {
			if o, ok := orders[e.OrderID]; !ok || o.Status != "COMPLETED" {
				r.violate("account %s: active plan %s is of order %s (%s), want a COMPLETED order", acct, e.ID, e.OrderID, o.Status)
			}
		}
	}
	for acct := range completedPlan {
		if len(activePlans[acct]) != 1 {
			r.violate("account %s: has a COMPLETED plan order but %d active plans", acct, len(activePlans[acct]))
		}
	}
	sort.Strings(r.Violations)
	return r
}

// supersededLive reports whether plan e was superseded by a plan that is
// itself live.
func supersededLive(e Entitlement, by map[string][]Entitlement, live func(Entitlement) bool) bool {
	for _, n := range by[e.ID] {
		if n.Kind == "plan" && live(n) {
			return true
		}
	}
	return false
}
