package sagachaos

import (
	"encoding/json"
	"strings"
	"testing"
)

// sagaData returns the data of a saga of order o.
func sagaData(o Order) []byte {
	b, _ := json.Marshal(SagaData{OrderID: o.ID, AccountID: o.AccountID, Kind: o.Kind, PlanID: o.PlanID, TitleID: o.TitleID, AmountMinor: o.Amount, Currency: o.Currency})
	return b
}

// healthy is a snapshot where every invariant holds: a completed plan, a
// plan that superseded an earlier one, a failed rental refunded in full, a
// rejected plan, and a compensation that came before its action (a saga
// with no order).
func healthy() *Snapshot {
	s := &Snapshot{}
	add := func(o Order, state string) {
		s.Orders = append(s.Orders, o)
		s.Sagas = append(s.Sagas, Saga{ID: o.SagaID, Definition: "create_order", State: state, Data: sagaData(o)})
	}
	charge := func(id, sagaID, orderID, acct, status string, amount, refunded int64) {
		key := Key(sagaID, StepCharge, "action")
		s.Charges = append(s.Charges, Charge{ID: id, IdempotencyKey: key, SagaID: sagaID, OrderID: orderID, AccountID: acct,
			Amount: amount, Currency: "USD", Status: status, Refunded: refunded})
		outcome := "done"
		if status == "cancelled" {
			outcome = "cancelled"
		}
		s.BillingBarrier = append(s.BillingBarrier, Barrier{SagaID: sagaID, Step: key, Op: "action", Outcome: outcome})
		if status == "succeeded" {
			s.Invoices = append(s.Invoices, Invoice{ID: "inv-" + id, ChargeID: id, AccountID: acct, OrderID: orderID, Amount: amount})
		}
	}
	grant := func(id, sagaID, orderID, acct, kind, plan, title, status, supersedes string) {
		key := Key(sagaID, StepGrant, "action")
		s.Entitlements = append(s.Entitlements, Entitlement{ID: id, AccountID: acct, Kind: kind, PlanID: plan, TitleID: title,
			OrderID: orderID, SagaID: sagaID, IdempotencyKey: key, Status: status, SupersedesID: supersedes})
		s.PlaybackBarrier = append(s.PlaybackBarrier, Barrier{SagaID: key, Step: PlaybackBarrierStep, Op: "action", Outcome: "done"})
	}

	add(Order{ID: "o1", AccountID: "a", Kind: "plan", PlanID: "basic", Amount: 799, Currency: "USD", Status: "COMPLETED", SagaID: "s1", ChargeID: "c1", EntitlementID: "e1"}, "completed")
	charge("c1", "s1", "o1", "a", "succeeded", 799, 0)
	grant("e1", "s1", "o1", "a", "plan", "basic", "", "active", "")

	add(Order{ID: "o4", AccountID: "d", Kind: "plan", PlanID: "basic", Amount: 799, Currency: "USD", Status: "COMPLETED", SagaID: "s4", ChargeID: "c4", EntitlementID: "e4"}, "completed")
	charge("c4", "s4", "o4", "d", "succeeded", 799, 0)
	grant("e4", "s4", "o4", "d", "plan", "basic", "", "superseded", "")
	add(Order{ID: "o5", AccountID: "d", Kind: "plan", PlanID: "premium", Amount: 2299, Currency: "USD", Status: "COMPLETED", SagaID: "s5", ChargeID: "c5", EntitlementID: "e5"}, "completed")
	charge("c5", "s5", "o5", "d", "succeeded", 2299, 0)
	grant("e5", "s5", "o5", "d", "plan", "premium", "", "active", "e4")

	add(Order{ID: "o2", AccountID: "b", Kind: "rental", TitleID: "t-0007", Amount: 399, Currency: "USD", Status: "FAILED", Reason: "title_unavailable", SagaID: "s2"}, "compensated")
	charge("c2", "s2", "o2", "b", "succeeded", 399, 399)
	s.Refunds = append(s.Refunds, Refund{ID: "f2", IdempotencyKey: Key("s2", StepCharge, "compensation"), SagaID: "s2", OrderID: "o2", AccountID: "b",
		ChargeIdempotencyKey: Key("s2", StepCharge, "action"), ChargeID: "c2", Amount: 399, Currency: "USD", Status: "succeeded"})
	s.BillingBarrier = append(s.BillingBarrier, Barrier{SagaID: "s2", Step: Key("s2", StepCharge, "action"), Op: "compensation", Outcome: "done"})

	add(Order{ID: "o3", AccountID: "c", Kind: "plan", PlanID: "basic", Amount: 799, Currency: "USD", Status: "REJECTED", Reason: "card_declined", SagaID: "s3"}, "rejected")
	charge("c3", "s3", "o3", "c", "declined", 799, 0)

	// The demo data billing and playback seed, made by no saga.
	s.Charges = append(s.Charges, Charge{ID: "cd", IdempotencyKey: "seed:demo-subscription", SagaID: "seed-demo-subscription", OrderID: "od", AccountID: "demo",
		Amount: 2299, Currency: "USD", Status: "succeeded"})
	s.Invoices = append(s.Invoices, Invoice{ID: "id", ChargeID: "cd", AccountID: "demo", OrderID: "od", Amount: 2299})
	s.BillingBarrier = append(s.BillingBarrier, Barrier{SagaID: "seed-demo-subscription", Step: "seed:demo-subscription", Op: "action", Outcome: "done"})
	s.Entitlements = append(s.Entitlements, Entitlement{ID: "ed", AccountID: "demo", Kind: "plan", PlanID: "premium", IdempotencyKey: "seed:demo-plan", Status: "active"})

	// A Refund that came before its Charge, for a saga never run.
	charge("c9", "x9", "ox9", "z", "cancelled", 399, 0)
	s.Refunds = append(s.Refunds, Refund{ID: "f9", IdempotencyKey: Key("x9", StepCharge, "compensation"), SagaID: "x9", OrderID: "ox9", AccountID: "z",
		ChargeIdempotencyKey: Key("x9", StepCharge, "action"), Status: "nothing_to_refund"})
	s.BillingBarrier = append(s.BillingBarrier, Barrier{SagaID: "x9", Step: Key("x9", StepCharge, "action"), Op: "compensation", Outcome: "skipped"})
	return s
}

func chargeOf(s *Snapshot, id string) *Charge {
	for i := range s.Charges {
		if s.Charges[i].ID == id {
			return &s.Charges[i]
		}
	}
	panic("no charge " + id)
}

func barrierOf(s *Snapshot, sagaID, op string) *Barrier {
	for i := range s.BillingBarrier {
		if b := &s.BillingBarrier[i]; b.SagaID == sagaID && b.Op == op {
			return b
		}
	}
	panic("no barrier " + sagaID)
}

func TestCheckHealthy(t *testing.T) {
	r := Check(healthy())
	if len(r.Violations) != 0 {
		t.Fatalf("Check(healthy) = %d violations, want none:\n%s", len(r.Violations), strings.Join(r.Violations, "\n"))
	}
	if r.ByStatus["COMPLETED"] != 3 || r.ByStatus["FAILED"] != 1 || r.ByStatus["REJECTED"] != 1 {
		t.Errorf("Check(healthy).ByStatus = %v, want COMPLETED 3, FAILED 1, REJECTED 1", r.ByStatus)
	}
}

func TestCheckFindsViolations(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *Snapshot)
		want   string
	}{
		{"saga left running", func(s *Snapshot) { s.Sagas[0].State = "running" }, "saga s1 unfinished"},
		{"saga needing attention", func(s *Snapshot) { s.Sagas[3].State = "needs_attention" }, "saga s2 unfinished"},
		{"order still pending", func(s *Snapshot) { s.Orders[0].Status = "PENDING" }, "still PENDING"},
		{"order status not its saga's", func(s *Snapshot) { s.Sagas[0].State = "compensated" }, "ended compensated"},
		{"completed order refunded", func(s *Snapshot) {
			chargeOf(s, "c1").Refunded = 799
			s.Refunds = append(s.Refunds, Refund{ID: "fx", ChargeID: "c1", Amount: 799, Status: "succeeded"})
		}, "1 succeeded charges, 0 unrefunded"},
		{"completed order never charged", func(s *Snapshot) { chargeOf(s, "c1").Status = "declined"; s.Invoices = s.Invoices[1:] }, "0 succeeded charges"},
		{"order charged twice", func(s *Snapshot) {
			s.Charges = append(s.Charges, Charge{ID: "c1b", IdempotencyKey: "other", SagaID: "s1", OrderID: "o1", AccountID: "a", Amount: 799, Currency: "USD", Status: "succeeded"})
			s.Invoices = append(s.Invoices, Invoice{ID: "i1b", ChargeID: "c1b"})
		}, "charged 2 times"},
		{"charge under another key", func(s *Snapshot) { chargeOf(s, "c1").IdempotencyKey = "s1/charge/compensation" }, "made under key"},
		{"completed order's entitlement revoked", func(s *Snapshot) { s.Entitlements[0].Status = "revoked" }, "entitlement e1 is revoked, want active"},
		{"completed order's entitlement missing", func(s *Snapshot) { s.Orders[0].EntitlementID = "nope" }, `entitlement "nope" does not exist`},
		{"superseded by nothing live", func(s *Snapshot) { s.Entitlements[2].Status = "revoked" }, "entitlement e4 is superseded, want active"},
		{"failed order keeps the money", func(s *Snapshot) {
			chargeOf(s, "c2").Refunded = 0
			s.Refunds = s.Refunds[1:]
		}, "net charge 399, want 0"},
		{"failed order keeps an entitlement", func(s *Snapshot) {
			s.Entitlements = append(s.Entitlements, Entitlement{ID: "e2", AccountID: "b", Kind: "rental", TitleID: "t-0007", OrderID: "o2", SagaID: "s2",
				IdempotencyKey: Key("s2", StepGrant, "action"), Status: "active"})
			s.PlaybackBarrier = append(s.PlaybackBarrier, Barrier{SagaID: Key("s2", StepGrant, "action"), Step: PlaybackBarrierStep, Op: "action", Outcome: "done"})
		}, "entitlement e2 is active, want none or revoked"},
		{"rejected order charged", func(s *Snapshot) {
			chargeOf(s, "c3").Status = "succeeded"
			chargeOf(s, "c3").Refunded = 799
			s.Refunds = append(s.Refunds, Refund{ID: "f3", ChargeID: "c3", Amount: 799, Status: "succeeded"})
			s.Invoices = append(s.Invoices, Invoice{ID: "i3", ChargeID: "c3"})
		}, "rejected, but charge c3 succeeded"},
		{"refunded total off", func(s *Snapshot) { s.Refunds[0].Amount = 300 }, "its refunds total 300"},
		{"succeeded charge without invoice", func(s *Snapshot) { s.Invoices = s.Invoices[1:] }, "0 invoices, want 1"},
		{"money of a saga never run", func(s *Snapshot) {
			chargeOf(s, "c9").Status = "succeeded"
			s.Invoices = append(s.Invoices, Invoice{ID: "i9", ChargeID: "c9"})
			barrierOf(s, "x9", "action").Outcome = "done"
		}, "charge of no order"},
		{"money not conserved", func(s *Snapshot) {
			chargeOf(s, "c9").Status = "succeeded"
			s.Invoices = append(s.Invoices, Invoice{ID: "i9", ChargeID: "c9"})
			barrierOf(s, "x9", "action").Outcome = "done"
		}, "account z USD: charges hold 399 net of refunds, completed orders cost 0"},
		{"entitlement of a saga never run", func(s *Snapshot) {
			s.Entitlements = append(s.Entitlements, Entitlement{ID: "e9", AccountID: "z", Kind: "rental", OrderID: "ox9", IdempotencyKey: "x9/grant_entitlement/action", Status: "active"})
			s.PlaybackBarrier = append(s.PlaybackBarrier, Barrier{SagaID: "x9/grant_entitlement/action", Step: PlaybackBarrierStep, Op: "action", Outcome: "done"})
		}, "of no order (a saga never run), but active"},
		{"two active plans", func(s *Snapshot) { s.Entitlements[1].Status = "active" }, "account d: 2 active plans"},
		{"charge without its barrier", func(s *Snapshot) { s.BillingBarrier[0].Outcome = "cancelled" }, "billing's barrier says \"cancelled\", want done"},
		{"barrier done without its charge", func(s *Snapshot) {
			s.BillingBarrier = append(s.BillingBarrier, Barrier{SagaID: "s7", Step: "s7/charge/action", Op: "action", Outcome: "done"})
		}, "billing barrier s7/s7/charge/action: action done"},
		{"grant cancelled but given", func(s *Snapshot) { s.PlaybackBarrier[0].Outcome = "cancelled" }, "grant cancelled, but entitlement e1 exists"},
		{"revocation ran but still active", func(s *Snapshot) {
			s.PlaybackBarrier = append(s.PlaybackBarrier, Barrier{SagaID: Key("s1", StepGrant, "action"), Step: PlaybackBarrierStep, Op: "compensation", Outcome: "done"})
		}, "its revocation ran, but it is active"},
		{"saga without order", func(s *Snapshot) { s.Sagas = append(s.Sagas, Saga{ID: "s8", State: "completed"}) }, "saga s8 (completed) has no order"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			tt.mutate(s)
			r := Check(s)
			for _, v := range r.Violations {
				if strings.Contains(v, tt.want) {
					return
				}
			}
			t.Errorf("Check(%s) violations = %q, want one containing %q", tt.name, r.Violations, tt.want)
		})
	}
}
