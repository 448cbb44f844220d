package billing_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// TestServer runs every gRPC case on SQLite and on PostgreSQL; cases share
// one database per backend and keep apart by fresh ids.
func TestServer(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, db *storage.DB)
	}{
		{"test cards", testTestCards},
		{"duplicate charge", testDuplicateCharge},
		{"concurrent duplicate charges", testConcurrentDuplicateCharges},
		{"idempotency key reused", testKeyReused},
		{"order charged once", testOrderChargedOnce},
		{"refund before charge", testRefundBeforeCharge},
		{"refund overtakes charge at the barrier", testRefundOvertakesCharge},
		{"void that fails is retried", testVoidRetried},
		{"refund while charging", testRefundWhileCharging},
		{"double refund", testDoubleRefund},
		{"refund of declined charge", testRefundOfDeclined},
		{"transient card leaves no barrier", testTransientLeavesNoBarrier},
		{"transient refund leaves no barrier", testTransientRefund},
		{"payment methods", testPaymentMethods},
		{"validation", testValidation},
		{"plans", testPlans},
		{"invoices", testInvoices},
		{"charges list", testListCharges},
		{"seed", testSeed},
		{"no card number anywhere", testNoCardNumber},
	}
	storagetest.ForEach(t, "billing", billing.Migrations, func(t *testing.T, db *storage.DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.fn(t, db) })
		}
	})
}

func testTestCards(t *testing.T, db *storage.DB) {
	tests := []struct {
		card        string
		status      string
		declineCode string
		code        codes.Code // an error instead of a charge
		reason      string
		slow        bool
	}{
		{card: "4242424242424242", status: "succeeded"},
		{card: "4000000000000002", status: "declined", declineCode: "card_declined"},
		{card: "4000000000009995", status: "declined", declineCode: "insufficient_funds"},
		{card: "4000000000000119", code: codes.Unavailable, reason: billing.ReasonProcessorUnavailable},
		{card: "4000000000000259", status: "succeeded", slow: true},
		{card: "5555 5555 5555 4444", status: "succeeded"},
		{card: "3782-822463-10005", status: "succeeded"},
	}
	e := serve(t, db)
	for _, tt := range tests {
		for _, stored := range []bool{false, true} {
			o := newOrder()
			c := card(tt.card)
			if strings.HasPrefix(tt.card, "37") {
				c.Cvc = "1234"
			}
			req := o.charge(1549, c)
			if stored {
				pm, err := e.client.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{IdempotencyKey: o.chargeKey + "/pm", AccountId: o.account, Card: c})
				if err != nil {
					t.Fatalf("CreatePaymentMethod(%s): %v", tt.card, err)
				}
				req = o.chargeWith(1549, pm.GetPaymentMethod().GetId())
			}
			start := time.Now()
			resp, err := e.client.Charge(context.Background(), req)
			took := time.Since(start)
			what := "Charge(" + tt.card + ")"
			if stored {
				what = "Charge(stored " + tt.card + ")"
			}
			if tt.code != codes.OK {
				wantStatus(t, what, err, tt.code, tt.reason)
				continue
			}
			if err != nil {
				t.Errorf("%s error = %v", what, err)
				continue
			}
			ch := resp.GetCharge()
			if ch.GetStatus() != tt.status || ch.GetDeclineCode() != tt.declineCode {
				t.Errorf("%s = %s %q, want %s %q", what, ch.GetStatus(), ch.GetDeclineCode(), tt.status, tt.declineCode)
			}
			digits := strings.NewReplacer(" ", "", "-", "").Replace(tt.card)
			if pm := ch.GetPaymentMethod(); pm.GetLast4() != digits[len(digits)-4:] || pm.GetBrand() == "" || pm.GetAccountId() != o.account {
				t.Errorf("%s payment method = %v, want last4 %s of %s", what, pm, digits[len(digits)-4:], o.account)
			}
			if !proto.Equal(ch.GetAmount(), usd(1549)) || ch.GetOrderId() != o.orderID || ch.GetSagaId() != o.sagaID || ch.GetIdempotencyKey() != o.chargeKey {
				t.Errorf("%s = %v, want 1549 USD for %s", what, ch, o.orderID)
			}
			if tt.slow && took < slowDelay {
				t.Errorf("%s took %v, want at least the slow delay %v", what, took, slowDelay)
			}
			wantInvoices := 0
			if tt.status == "succeeded" {
				wantInvoices = 1
			}
			if n := count(t, db, "SELECT COUNT(*) FROM invoices WHERE order_id = $1", o.orderID); n != wantInvoices {
				t.Errorf("%s: %d invoices, want %d", what, n, wantInvoices)
			}
			subject := billing.ChargeSucceededSubject
			if tt.status == "declined" {
				subject = billing.ChargeDeclinedSubject
			}
			if n := count(t, db, "SELECT COUNT(*) FROM marquee_outbox WHERE subject = $1 AND ce_subject = $2", subject, o.orderID); n != 1 {
				t.Errorf("%s: %d %s events, want 1", what, n, subject)
			}
		}
	}
}

func testDuplicateCharge(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	for _, number := range []string{processor.CardApproved, processor.CardDeclined} {
		o := newOrder()
		var first *billingv1.Charge
		for i := 0; i < 3; i++ {
			resp, err := e.client.Charge(context.Background(), o.charge(799, card(number)))
			if err != nil {
				t.Fatalf("Charge #%d(%s): %v", i+1, number, err)
			}
			if first == nil {
				first = resp.GetCharge()
			} else if !proto.Equal(resp.GetCharge(), first) {
				t.Errorf("duplicate Charge(%s) = %v, want the original %v", number, resp.GetCharge(), first)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM charges WHERE order_id = $1", o.orderID); n != 1 {
			t.Errorf("Charge(%s) thrice: %d charges, want 1", number, n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM marquee_outbox WHERE ce_subject = $1", o.orderID); n != 1 {
			t.Errorf("Charge(%s) thrice: %d events, want 1", number, n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM payment_methods WHERE account_id = $1", o.account); n != 1 {
			t.Errorf("Charge(%s) thrice: %d payment methods, want 1", number, n)
		}
	}
	if got := e.proc.charges.Load(); got != 2 {
		t.Errorf("processor charged %d times for two orders charged thrice each, want 2", got)
	}
}

func testConcurrentDuplicateCharges(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	const callers = 8
	var wg sync.WaitGroup
	results := make(chan *billingv1.Charge, callers)
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.client.Charge(context.Background(), o.charge(2299, card(processor.CardSlow)))
			if err != nil {
				errs <- err
				return
			}
			results <- resp.GetCharge()
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		wantStatus(t, "concurrent duplicate Charge", err, codes.Aborted, billing.ReasonInProgress)
	}
	id := ""
	for c := range results {
		if id == "" {
			id = c.GetId()
		} else if c.GetId() != id {
			t.Errorf("concurrent duplicate Charge answered charges %s and %s, want one", id, c.GetId())
		}
	}
	// Every caller retries until it gets the charge.
	resp, err := e.client.Charge(context.Background(), o.charge(2299, card(processor.CardSlow)))
	if err != nil || (id != "" && resp.GetCharge().GetId() != id) || resp.GetCharge().GetStatus() != "succeeded" {
		t.Errorf("Charge after the race = %v, %v, want succeeded charge %s", resp.GetCharge(), err, id)
	}
	if got := e.proc.charges.Load(); got != 1 {
		t.Errorf("processor charged %d times, want 1", got)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM charges WHERE order_id = $1", o.orderID); n != 1 {
		t.Errorf("%d charges recorded, want 1", n)
	}
}

func testKeyReused(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	if _, err := e.client.Charge(context.Background(), o.charge(799, card(processor.CardApproved))); err != nil {
		t.Fatal(err)
	}
	other := card("5555555555554444")
	changes := map[string]*billingv1.ChargeRequest{
		"amount": o.charge(800, card(processor.CardApproved)),
		"card":   o.charge(799, other),
		"order": func() *billingv1.ChargeRequest {
			r := o.charge(799, card(processor.CardApproved))
			r.OrderId = "order-x"
			return r
		}(),
		"account": func() *billingv1.ChargeRequest {
			r := o.charge(799, card(processor.CardApproved))
			r.AccountId = "acct-x"
			return r
		}(),
	}
	for what, req := range changes {
		_, err := e.client.Charge(context.Background(), req)
		wantStatus(t, "Charge with the same key and another "+what, err, codes.FailedPrecondition, billing.ReasonIdempotencyKeyReused)
	}
	if _, err := e.client.Refund(context.Background(), o.refund()); err != nil {
		t.Fatal(err)
	}
	r := o.refund()
	r.ChargeIdempotencyKey = "other-charge"
	_, err := e.client.Refund(context.Background(), r)
	wantStatus(t, "Refund with the same key and another charge", err, codes.FailedPrecondition, billing.ReasonIdempotencyKeyReused)
}

func testOrderChargedOnce(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	if _, err := e.client.Charge(context.Background(), o.charge(799, card(processor.CardApproved))); err != nil {
		t.Fatal(err)
	}
	second := o
	second.chargeKey = o.chargeKey + "-again"
	_, err := e.client.Charge(context.Background(), second.charge(799, card(processor.CardApproved)))
	wantStatus(t, "a second Charge of the order with another key", err, codes.FailedPrecondition, billing.ReasonOrderAlreadyCharged)
	if got := e.proc.charges.Load(); got != 1 {
		t.Errorf("processor charged %d times, want 1", got)
	}
}

func testRefundBeforeCharge(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	resp, err := e.client.Refund(context.Background(), o.refund())
	if err != nil {
		t.Fatalf("Refund before Charge: %v", err)
	}
	first := resp.GetRefund()
	if first.GetStatus() != "nothing_to_refund" || first.GetChargeId() != "" || first.GetAmount().GetAmountMinor() != 0 {
		t.Errorf("Refund before Charge = %v, want nothing_to_refund without a charge", first)
	}
	again, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || !proto.Equal(again.GetRefund(), first) {
		t.Errorf("duplicate Refund = %v, %v, want %v", again.GetRefund(), err, first)
	}
	// The late Charge is cancelled, and never reaches the processor.
	for i := 0; i < 2; i++ {
		ch, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardApproved)))
		if err != nil || ch.GetCharge().GetStatus() != "cancelled" {
			t.Errorf("Charge after its Refund #%d = %v, %v, want status cancelled", i+1, ch.GetCharge(), err)
		}
	}
	if got := e.proc.charges.Load() + e.proc.tokenizes.Load(); got != 0 {
		t.Errorf("the processor was called %d times for a cancelled charge, want 0", got)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM invoices WHERE order_id = $1", o.orderID); n != 0 {
		t.Errorf("%d invoices for a cancelled charge, want 0", n)
	}
	// The barrier refuses the action for good.
	_, err = barrier.Action(context.Background(), db, o.sagaID, o.chargeKey, func(*storage.Tx) ([]byte, error) { return []byte("x"), nil })
	if err != barrier.ErrCompensated {
		t.Errorf("barrier.Action after the Refund = %v, want ErrCompensated", err)
	}
}

// testRefundOvertakesCharge makes the Refund's barrier row land while the
// processor is approving the Charge (as if the attempt row had expired):
// the approval must be voided and the Charge answer cancelled.
func testRefundOvertakesCharge(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	e.proc.afterCharge = func(req processor.ChargeRequest) {
		if _, err := barrier.Compensate(context.Background(), db, o.sagaID, o.chargeKey, func(*storage.Tx) ([]byte, error) {
			t.Errorf("compensation ran although the action did not")
			return nil, nil
		}); err != nil {
			t.Errorf("barrier.Compensate: %v", err)
		}
	}
	resp, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardApproved)))
	if err != nil || resp.GetCharge().GetStatus() != "cancelled" {
		t.Fatalf("Charge overtaken by its Refund = %v, %v, want status cancelled", resp.GetCharge(), err)
	}
	e.proc.afterCharge = nil
	var ref string
	if err := db.QueryRow(context.Background(), "SELECT processor_ref FROM charges WHERE idempotency_key = $1", o.chargeKey).Scan(&ref); err != nil || ref == "" {
		t.Fatalf("cancelled charge processor_ref = %q, %v, want the voided approval", ref, err)
	}
	if held, ok := e.proc.Held(ref); !ok || held.Minor != 0 {
		t.Errorf("processor holds %v of the voided approval, want 0", held)
	}
	again, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardApproved)))
	if err != nil || again.GetCharge().GetId() != resp.GetCharge().GetId() {
		t.Errorf("duplicate Charge = %v, %v, want the cancelled charge", again.GetCharge(), err)
	}
	if got := e.proc.refunds.Load(); got < 1 {
		t.Errorf("processor refunds = %d, want the void", got)
	}
	// The Refund itself finds nothing to refund.
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "nothing_to_refund" {
		t.Errorf("Refund = %v, %v, want nothing_to_refund", r.GetRefund(), err)
	}
}

// testVoidRetried makes the void of an overtaken approval fail: the Charge
// answers UNAVAILABLE, and the compensation that follows voids it.
func testVoidRetried(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	e.proc.afterCharge = func(processor.ChargeRequest) {
		if _, err := barrier.Compensate(context.Background(), db, o.sagaID, o.chargeKey, func(*storage.Tx) ([]byte, error) { return nil, nil }); err != nil {
			t.Errorf("barrier.Compensate: %v", err)
		}
	}
	e.proc.failRefunds.Store(100)
	_, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardApproved)))
	wantStatus(t, "Charge whose void fails", err, codes.Unavailable, billing.ReasonProcessorUnavailable)
	e.proc.afterCharge = nil
	var ref, st string
	if err := db.QueryRow(context.Background(), "SELECT processor_ref, status FROM charges WHERE idempotency_key = $1", o.chargeKey).Scan(&ref, &st); err != nil || ref == "" || st != "cancelled" {
		t.Fatalf("charge = %q %q, %v, want cancelled with the approval to void", st, ref, err)
	}
	if held, _ := e.proc.Held(ref); held.Minor != 1549 {
		t.Fatalf("processor holds %v before the void, want 1549", held)
	}
	e.proc.failRefunds.Store(0)
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "nothing_to_refund" {
		t.Errorf("Refund = %v, %v, want nothing_to_refund", r.GetRefund(), err)
	}
	if held, _ := e.proc.Held(ref); held.Minor != 0 {
		t.Errorf("processor holds %v after the compensation, want 0", held)
	}
}

func testRefundWhileCharging(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	charged := make(chan error, 1)
	go func() {
		_, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardSlow)))
		charged <- err
	}()
	waitFor(t, "the charge attempt", func() bool {
		return count(t, db, "SELECT COUNT(*) FROM charge_attempts WHERE idempotency_key = $1", o.chargeKey) == 1
	})
	_, err := e.client.Refund(context.Background(), o.refund())
	wantStatus(t, "Refund while its Charge is at the processor", err, codes.Aborted, billing.ReasonInProgress)
	if err := <-charged; err != nil {
		t.Fatalf("Charge: %v", err)
	}
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "succeeded" || r.GetRefund().GetAmount().GetAmountMinor() != 1549 {
		t.Errorf("Refund after the Charge = %v, %v, want 1549 refunded", r.GetRefund(), err)
	}
}

func testDoubleRefund(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	ch, err := e.client.Charge(context.Background(), o.charge(2299, card(processor.CardApproved)))
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.client.Refund(context.Background(), o.refund())
	if err != nil {
		t.Fatal(err)
	}
	r := first.GetRefund()
	if r.GetStatus() != "succeeded" || !proto.Equal(r.GetAmount(), usd(2299)) || r.GetChargeId() != ch.GetCharge().GetId() {
		t.Errorf("Refund = %v, want 2299 USD of charge %s", r, ch.GetCharge().GetId())
	}
	again, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || !proto.Equal(again.GetRefund(), r) {
		t.Errorf("duplicate Refund = %v, %v, want %v", again.GetRefund(), err, r)
	}
	// Another compensation key for the same charge answers the same refund.
	other := o
	other.refundKey = o.refundKey + "-2"
	third, err := e.client.Refund(context.Background(), other.refund())
	if err != nil || third.GetRefund().GetId() != r.GetId() {
		t.Errorf("Refund under another key = %v, %v, want refund %s", third.GetRefund(), err, r.GetId())
	}
	if got := e.proc.refunds.Load(); got != 1 {
		t.Errorf("processor refunded %d times, want 1", got)
	}
	got, err := e.client.GetCharge(context.Background(), &billingv1.GetChargeRequest{Id: ch.GetCharge().GetId()})
	if err != nil || !proto.Equal(got.GetCharge().GetRefunded(), usd(2299)) || len(got.GetCharge().GetRefunds()) != 1 {
		t.Errorf("GetCharge = %v, %v, want 2299 refunded in one refund", got.GetCharge(), err)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM marquee_outbox WHERE subject = $1 AND ce_subject = $2", billing.RefundedSubject, o.orderID); n != 1 {
		t.Errorf("%d refunded events, want 1", n)
	}
	inv, err := e.client.ListInvoices(as(o.account), &billingv1.ListInvoicesRequest{})
	if err != nil || len(inv.GetInvoices()) != 1 {
		t.Fatalf("ListInvoices = %v, %v", inv, err)
	}
	if i := inv.GetInvoices()[0]; i.GetStatus() != "refunded" || !proto.Equal(i.GetRefunded(), usd(2299)) || len(i.GetRefunds()) != 1 {
		t.Errorf("invoice = %v, want refunded 2299 with one refund line", i)
	}
}

func testRefundOfDeclined(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	if _, err := e.client.Charge(context.Background(), o.charge(799, card(processor.CardInsufficientFunds))); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "nothing_to_refund" || r.GetRefund().GetChargeId() != "" {
		t.Errorf("Refund of a declined charge = %v, %v, want nothing_to_refund", r.GetRefund(), err)
	}
	if got := e.proc.refunds.Load(); got != 0 {
		t.Errorf("processor refunds = %d, want 0", got)
	}
}

func testTransientLeavesNoBarrier(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	for i := 1; i <= 3; i++ {
		_, err := e.client.Charge(context.Background(), o.charge(1549, card(processor.CardUnavailable)))
		wantStatus(t, "Charge(unavailable card)", err, codes.Unavailable, billing.ReasonProcessorUnavailable)
		if got := e.proc.charges.Load(); got != int64(i) {
			t.Errorf("after %d tries the processor was called %d times, want every retry to run again", i, got)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM marquee_barrier WHERE saga_id = $1", o.sagaID); n != 0 {
			t.Errorf("transient failure left %d barrier rows, want 0", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM charges WHERE idempotency_key = $1", o.chargeKey); n != 0 {
			t.Errorf("transient failure left %d charges, want 0", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM charge_attempts WHERE idempotency_key = $1", o.chargeKey); n != 0 {
			t.Errorf("transient failure left %d charge attempts, want 0", n)
		}
	}
	// The saga gives up and compensates: nothing to refund.
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "nothing_to_refund" {
		t.Errorf("Refund after the transient failures = %v, %v, want nothing_to_refund", r.GetRefund(), err)
	}
}

func testTransientRefund(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	if _, err := e.client.Charge(context.Background(), o.charge(399, card(processor.CardApproved))); err != nil {
		t.Fatal(err)
	}
	e.proc.failRefunds.Store(2)
	for i := 0; i < 2; i++ {
		_, err := e.client.Refund(context.Background(), o.refund())
		wantStatus(t, "Refund while the processor is down", err, codes.Unavailable, billing.ReasonProcessorUnavailable)
		if n := count(t, db, "SELECT COUNT(*) FROM marquee_barrier WHERE saga_id = $1 AND op <> 'action'", o.sagaID); n != 0 {
			t.Errorf("failed Refund left %d compensation rows, want 0", n)
		}
	}
	r, err := e.client.Refund(context.Background(), o.refund())
	if err != nil || r.GetRefund().GetStatus() != "succeeded" || r.GetRefund().GetAmount().GetAmountMinor() != 399 {
		t.Errorf("Refund once the processor is back = %v, %v, want 399 refunded", r.GetRefund(), err)
	}
}

func testPaymentMethods(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	req := &billingv1.CreatePaymentMethodRequest{IdempotencyKey: "pm-" + o.orderID, AccountId: o.account, Card: card("4242 4242 4242 4242")}
	first, err := e.client.CreatePaymentMethod(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	pm := first.GetPaymentMethod()
	if pm.GetBrand() != "visa" || pm.GetLast4() != "4242" || pm.GetExpMonth() != 12 || pm.GetExpYear() != 2030 || pm.GetAccountId() != o.account || pm.GetId() == "" {
		t.Errorf("CreatePaymentMethod = %v, want visa 4242 12/2030", pm)
	}
	again, err := e.client.CreatePaymentMethod(context.Background(), req)
	if err != nil || !proto.Equal(again.GetPaymentMethod(), pm) {
		t.Errorf("duplicate CreatePaymentMethod = %v, %v, want %v", again.GetPaymentMethod(), err, pm)
	}
	req.Card = card("5555555555554444")
	_, err = e.client.CreatePaymentMethod(context.Background(), req)
	wantStatus(t, "CreatePaymentMethod with the same key and another card", err, codes.FailedPrecondition, billing.ReasonIdempotencyKeyReused)
	if got := e.proc.tokenizes.Load(); got != 1 {
		t.Errorf("processor tokenised %d times, want 1", got)
	}
	// Another account cannot charge it.
	thief := newOrder()
	_, err = e.client.Charge(context.Background(), thief.chargeWith(799, pm.GetId()))
	wantStatus(t, "Charge of another account's payment method", err, codes.NotFound, billing.ReasonNotFound)
	_, err = e.client.Charge(context.Background(), o.chargeWith(799, "pm-unknown"))
	wantStatus(t, "Charge of an unknown payment method", err, codes.NotFound, billing.ReasonNotFound)
	var stored struct{ class, token string }
	if err := db.QueryRow(context.Background(), "SELECT token_class, token FROM payment_methods WHERE id = $1", pm.GetId()).Scan(&stored.class, &stored.token); err != nil {
		t.Fatal(err)
	}
	if stored.class != processor.ClassApprove || !strings.HasPrefix(stored.token, "tok_") {
		t.Errorf("stored token = %+v, want an approve-class random token", stored)
	}
}

func testValidation(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	bad := []struct {
		name   string
		call   func() error
		reason string
		fields []string
	}{
		{"empty charge", func() error { _, err := e.client.Charge(context.Background(), &billingv1.ChargeRequest{}); return err },
			billing.ReasonInvalidArgument, []string{"idempotency_key", "order_id", "saga_id", "account_id", "amount", "source"}},
		{"charge bad amount", func() error {
			_, err := e.client.Charge(context.Background(), o.charge(-1, card(processor.CardApproved)))
			return err
		},
			billing.ReasonInvalidArgument, []string{"amount.amount_minor"}},
		{"charge bad currency", func() error {
			r := o.charge(1, card(processor.CardApproved))
			r.Amount.Currency = "dollars"
			_, err := e.client.Charge(context.Background(), r)
			return err
		}, billing.ReasonInvalidArgument, []string{"amount.currency"}},
		{"charge bad card", func() error {
			_, err := e.client.Charge(context.Background(), o.charge(1, &billingv1.PaymentCard{CardNumber: "4242424242424241", ExpMonth: 1, ExpYear: 2020, Cvc: "1"}))
			return err
		}, billing.ReasonInvalidCard, []string{"payment.card_number", "payment.exp_year", "payment.cvc"}},
		{"charge empty card", func() error {
			_, err := e.client.Charge(context.Background(), o.charge(1, &billingv1.PaymentCard{}))
			return err
		}, billing.ReasonInvalidCard, []string{"payment.card_number", "payment.exp_month", "payment.exp_year", "payment.cvc"}},
		{"charge control characters", func() error {
			r := o.charge(1, card(processor.CardApproved))
			r.Description = "line\nbreak"
			_, err := e.client.Charge(context.Background(), r)
			return err
		}, billing.ReasonInvalidArgument, []string{"description"}},
		{"payment method bad card", func() error {
			_, err := e.client.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{AccountId: "a", Card: card("4000000000000003")})
			return err
		}, billing.ReasonInvalidCard, []string{"card.card_number"}},
		{"payment method no account", func() error {
			_, err := e.client.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{Card: card(processor.CardApproved)})
			return err
		}, billing.ReasonInvalidArgument, []string{"account_id"}},
		{"empty refund", func() error { _, err := e.client.Refund(context.Background(), &billingv1.RefundRequest{}); return err },
			billing.ReasonInvalidArgument, []string{"idempotency_key", "order_id", "saga_id", "account_id", "charge_idempotency_key"}},
		{"list charges big page", func() error {
			_, err := e.client.ListCharges(context.Background(), &billingv1.ListChargesRequest{PageSize: 1000})
			return err
		}, billing.ReasonInvalidArgument, []string{"page_size"}},
		{"list invoices bad token", func() error {
			_, err := e.client.ListInvoices(as("a"), &billingv1.ListInvoicesRequest{PageToken: "nope"})
			return err
		}, billing.ReasonInvalidArgument, []string{"page_token"}},
		{"get charge no id", func() error {
			_, err := e.client.GetCharge(context.Background(), &billingv1.GetChargeRequest{})
			return err
		},
			billing.ReasonInvalidArgument, []string{"id"}},
	}
	for _, b := range bad {
		wantStatus(t, b.name, b.call(), codes.InvalidArgument, b.reason, b.fields...)
	}
	_, err := e.client.GetCharge(context.Background(), &billingv1.GetChargeRequest{Id: "ch-unknown"})
	wantStatus(t, "GetCharge(unknown)", err, codes.NotFound, billing.ReasonNotFound)
	_, err = e.client.ListInvoices(context.Background(), &billingv1.ListInvoicesRequest{})
	wantStatus(t, "ListInvoices without a caller", err, codes.Unauthenticated, "UNAUTHENTICATED")
	if got := e.proc.charges.Load() + e.proc.tokenizes.Load(); got != 0 {
		t.Errorf("bad requests reached the processor %d times", got)
	}
}

func testPlans(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	var ids []string
	token := ""
	for i := 0; i < 5; i++ {
		resp, err := e.client.ListPlans(context.Background(), &billingv1.ListPlansRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListPlans: %v", err)
		}
		if r := resp.GetRental(); !proto.Equal(r.GetPrice(), usd(399)) || r.GetDurationSeconds() != 48*3600 {
			t.Errorf("rental = %v, want 399 USD for 48 hours", r)
		}
		for _, p := range resp.GetPlans() {
			ids = append(ids, p.GetId())
			want := map[string]struct {
				minor   int64
				streams int32
			}{"basic": {799, 1}, "standard": {1549, 2}, "premium": {2299, 4}}[p.GetId()]
			if !proto.Equal(p.GetPrice(), usd(want.minor)) || p.GetMaxStreams() != want.streams || p.GetBillingPeriod() != "monthly" {
				t.Errorf("plan %s = %v, want %d USD, %d streams, monthly", p.GetId(), p, want.minor, want.streams)
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "basic,standard,premium" {
		t.Errorf("ListPlans pages = %v, want basic, standard, premium", ids)
	}
}

func testInvoices(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	for i := 0; i < 3; i++ {
		oi := newOrder()
		oi.account = o.account
		if _, err := e.client.Charge(context.Background(), oi.charge(int64(100+i), card(processor.CardApproved))); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := e.client.Refund(context.Background(), oi.refund()); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A declined charge makes no invoice; another account's stays its own.
	declined := newOrder()
	declined.account = o.account
	if _, err := e.client.Charge(context.Background(), declined.charge(5, card(processor.CardDeclined))); err != nil {
		t.Fatal(err)
	}
	stranger := newOrder()
	if _, err := e.client.Charge(context.Background(), stranger.charge(7, card(processor.CardApproved))); err != nil {
		t.Fatal(err)
	}
	var got []*billingv1.Invoice
	token := ""
	for i := 0; i < 5; i++ {
		resp, err := e.client.ListInvoices(as(o.account), &billingv1.ListInvoicesRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListInvoices: %v", err)
		}
		got = append(got, resp.GetInvoices()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(got) != 3 {
		t.Fatalf("ListInvoices = %d invoices, want 3", len(got))
	}
	statuses := map[int64]string{}
	for _, inv := range got {
		statuses[inv.GetAmount().GetAmountMinor()] = inv.GetStatus()
		if pm := inv.GetPaymentMethod(); pm.GetBrand() != "visa" || pm.GetLast4() != "4242" || pm.GetId() != "" || pm.GetExpYear() != 0 {
			t.Errorf("invoice payment method = %v, want brand and last4 only", pm)
		}
		if inv.GetDescription() != "Standard plan, monthly" || inv.GetIssuedAt() == nil || inv.GetChargeId() == "" {
			t.Errorf("invoice = %v", inv)
		}
	}
	if statuses[100] != "paid" || statuses[101] != "refunded" || statuses[102] != "paid" {
		t.Errorf("invoice statuses by amount = %v, want 101 refunded, others paid", statuses)
	}
	resp, err := e.client.ListInvoices(as(stranger.account), &billingv1.ListInvoicesRequest{})
	if err != nil || len(resp.GetInvoices()) != 1 || resp.GetInvoices()[0].GetAmount().GetAmountMinor() != 7 {
		t.Errorf("ListInvoices(stranger) = %v, %v, want its own invoice only", resp, err)
	}
}

func testListCharges(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	o := newOrder()
	if _, err := e.client.Charge(context.Background(), o.charge(100, card(processor.CardDeclined))); err != nil {
		t.Fatal(err)
	}
	retry := o
	retry.chargeKey += "-retry"
	if _, err := e.client.Charge(context.Background(), retry.charge(100, card(processor.CardApproved))); err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.ListCharges(context.Background(), &billingv1.ListChargesRequest{OrderId: o.orderID})
	if err != nil || len(resp.GetCharges()) != 2 {
		t.Fatalf("ListCharges(order) = %v, %v, want 2", resp, err)
	}
	statuses := map[string]bool{}
	for _, c := range resp.GetCharges() {
		statuses[c.GetStatus()] = true
	}
	if !statuses["declined"] || !statuses["succeeded"] {
		t.Errorf("ListCharges(order) statuses = %v, want one declined and one succeeded", statuses)
	}
	byAccount, err := e.client.ListCharges(context.Background(), &billingv1.ListChargesRequest{AccountId: o.account, PageSize: 1})
	if err != nil || len(byAccount.GetCharges()) != 1 || byAccount.GetNextPageToken() == "" {
		t.Errorf("ListCharges(account, page 1) = %v, %v, want one and a next page", byAccount, err)
	}
}

func testSeed(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	for i := 0; i < 2; i++ {
		if err := e.svc.Seed(context.Background()); err != nil {
			t.Fatalf("Seed #%d: %v", i+1, err)
		}
	}
	resp, err := e.client.ListInvoices(as("00000000-0000-4000-8000-00000000de70"), &billingv1.ListInvoicesRequest{})
	if err != nil || len(resp.GetInvoices()) != 1 {
		t.Fatalf("demo invoices = %v, %v, want one", resp, err)
	}
	inv := resp.GetInvoices()[0]
	if !proto.Equal(inv.GetAmount(), usd(2299)) || inv.GetStatus() != "paid" || inv.GetPaymentMethod().GetLast4() != "4242" ||
		inv.GetPaymentMethod().GetBrand() != "visa" || inv.GetDescription() != "Premium plan, monthly" || inv.GetOrderId() != billing.DemoSubscriptionOrderID {
		t.Errorf("demo invoice = %v, want a paid premium 2299 USD on visa 4242", inv)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM payment_methods WHERE account_id = $1", "00000000-0000-4000-8000-00000000de70"); n != 1 {
		t.Errorf("demo payment methods = %d, want 1", n)
	}
}

// testNoCardNumber pushes every test card through every path, valid and
// invalid, then looks for the numbers in every table, the database files,
// the logs, the answers and the events.
func testNoCardNumber(t *testing.T, db *storage.DB) {
	e := serve(t, db)
	numbers := []string{processor.CardApproved, processor.CardDeclined, processor.CardInsufficientFunds,
		processor.CardUnavailable, processor.CardSlow, "5555555555554444", "4242424242424241", "4000000000000003"}
	var answers []string
	for _, n := range numbers {
		for _, spelled := range []string{n, n[:4] + " " + n[4:8] + " " + n[8:12] + " " + n[12:], n[:4] + "-" + n[4:]} {
			o := newOrder()
			resp, err := e.client.CreatePaymentMethod(context.Background(), &billingv1.CreatePaymentMethodRequest{IdempotencyKey: o.chargeKey, AccountId: o.account, Card: card(spelled)})
			answers = append(answers, resp.String(), errString(err))
			cr, err := e.client.Charge(context.Background(), o.charge(1549, card(spelled)))
			answers = append(answers, cr.String(), errString(err))
			rr, err := e.client.Refund(context.Background(), o.refund())
			answers = append(answers, rr.String(), errString(err))
			li, err := e.client.ListInvoices(as(o.account), &billingv1.ListInvoicesRequest{})
			answers = append(answers, li.String(), errString(err))
		}
	}
	var dump strings.Builder
	for _, table := range []string{"customers", "payment_methods", "charges", "refunds", "invoices", "charge_attempts", "marquee_outbox", "marquee_barrier"} {
		rows, err := db.Query(context.Background(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					dump.Write(v)
				default:
					dump.WriteString(strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
				}
				dump.WriteByte('|')
			}
		}
		rows.Close()
	}
	files := sqliteFiles(t, db)
	places := map[string]string{"tables": dump.String(), "logs": e.logs.String(), "answers": strings.Join(answers, "\n"), "database files": files}
	for _, n := range numbers {
		for where, text := range places {
			if strings.Contains(text, n) || strings.Contains(text, n[:4]+" "+n[4:8]) {
				t.Errorf("card number %s found in the %s", n, where)
			}
		}
	}
	if !strings.Contains(dump.String(), "4242") || !strings.Contains(e.logs.String(), "charge recorded") {
		t.Fatalf("the scan saw no data: the test is not looking at the right places")
	}
	var ev billing.ChargeEvent
	var data []byte
	if err := db.QueryRow(context.Background(), "SELECT data FROM marquee_outbox WHERE subject = $1 LIMIT 1", billing.ChargeSucceededSubject).Scan(&data); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ev); err != nil || ev.Card.Last4 == "" || ev.Card.Brand == "" || ev.AccountID == "" || ev.Amount.AmountMinor != 1549 {
		t.Errorf("charge_succeeded data = %s, %v, want amount, account, brand and last4", data, err)
	}
}
