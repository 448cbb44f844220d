package orders_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/orders"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga"
)

// fastRetry keeps the tests quick: an unavailable processor fails the
// order after 4 attempts a few milliseconds apart.
var fastRetry = saga.RetryPolicy{MaxAttempts: 4, Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}

type harness struct {
	db       *storage.DB
	svc      *orders.Service
	client   ordersv1.OrdersServiceClient
	billing  *fakeBilling
	playback *fakePlayback
}

func newHarness(t testing.TB, db *storage.DB) *harness {
	t.Helper()
	h := &harness{db: db, billing: newFakeBilling(t), playback: newFakePlayback(t)}
	bc := serveGRPC(t, func(s *grpc.Server) { billingv1.RegisterBillingServiceServer(s, h.billing) })
	pc := serveGRPC(t, func(s *grpc.Server) { playbackv1.RegisterPlaybackServiceServer(s, h.playback) })
	cc := serveGRPC(t, func(s *grpc.Server) { catalogv1.RegisterCatalogServiceServer(s, fakeCatalog{}) })
	svc, err := orders.NewService(context.Background(), db, orders.Options{
		Billing:           billingv1.NewBillingServiceClient(bc),
		Playback:          playbackv1.NewPlaybackServiceClient(pc),
		Catalog:           catalogv1.NewCatalogServiceClient(cc),
		Engine:            saga.Options{PollInterval: 50 * time.Millisecond, Lease: 2 * time.Second, Registerer: prometheus.NewRegistry()},
		ActionRetry:       fastRetry,
		CompensationRetry: fastRetry,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.client = ordersv1.NewOrdersServiceClient(serveGRPC(t, func(s *grpc.Server) { svc.Register(s) }))
	return h
}

func forEachHarness(t *testing.T, fn func(t *testing.T, h *harness)) {
	storagetest.ForEach(t, "orders", orders.Migrations, func(t *testing.T, db *storage.DB) {
		fn(t, newHarness(t, db))
	})
}

func as(account string, roles ...string) context.Context {
	if len(roles) == 0 {
		roles = []string{principal.RoleViewer}
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(
		principal.KeyAccount, account, principal.KeyRoles, strings.Join(roles, ",")))
}

var admin = as("admin-1", principal.RoleViewer, principal.RoleAdmin)

func card(number string) *billingv1.PaymentCard {
	return &billingv1.PaymentCard{CardNumber: number, ExpMonth: 12, ExpYear: 2099, Cvc: "123"}
}

// waitStatus polls the order until it leaves PENDING and checks it ends
// in want.
func waitStatus(t *testing.T, h *harness, ctx context.Context, id, want string) *ordersv1.Order {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := h.client.GetOrder(ctx, &ordersv1.GetOrderRequest{Id: id})
		if err != nil {
			t.Fatalf("GetOrder(%s) = %v", id, err)
		}
		o := resp.GetOrder()
		if o.GetStatus() != "PENDING" {
			if o.GetStatus() != want {
				t.Fatalf("order %s = %s (%s), want %s", id, o.GetStatus(), o.GetReason(), want)
			}
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s still PENDING after 15s, want %s", id, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantCode(t *testing.T, what string, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || (reason != "" && rpcerr.Reason(err) != reason) {
		t.Errorf("%s = %v (reason %q), want %s %s", what, err, rpcerr.Reason(err), code, reason)
	}
}

// outbox returns the subjects of the events published about an order.
func outbox(t *testing.T, db *storage.DB, orderID string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT subject FROM marquee_outbox WHERE ce_subject = $1 ORDER BY seq`, orderID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestOrderOutcomes runs the saga against each test card and item and
// checks the PRODUCT §5 invariants on the participants' books.
func TestOrderOutcomes(t *testing.T) {
	forEachHarness(t, func(t *testing.T, h *harness) {
		tests := []struct {
			name, plan, title, card string
			status, reason          string
			charges                 int
			net                     int64
			entitled                bool
		}{
			{"plan approved", "basic", "", cardOK, "COMPLETED", "", 1, 799, true},
			{"rental approved", "", "t-0001", cardOK, "COMPLETED", "", 1, 399, true},
			{"card declined", "standard", "", cardDeclined, "REJECTED", "card_declined", 0, 0, false},
			{"insufficient funds", "premium", "", cardInsufficient, "REJECTED", "insufficient_funds", 0, 0, false},
			{"title withdrawn: charged then refunded", "", "t-0007", cardOK, "FAILED", "title_unavailable", 1, 0, false},
			{"processor never recovers", "basic", "", cardUnavailable, "FAILED", "payment_unavailable", 0, 0, false},
		}
		for i, tt := range tests {
			ctx := as(fmt.Sprintf("acct-%d", i))
			resp, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: tt.plan, TitleId: tt.title, Payment: card(tt.card), IdempotencyKey: "k1"})
			if err != nil {
				t.Fatalf("%s: CreateOrder = %v", tt.name, err)
			}
			if resp.GetStatus() != "PENDING" || resp.GetOrderId() == "" {
				t.Errorf("%s: CreateOrder = %v, want a PENDING order", tt.name, resp)
			}
			o := waitStatus(t, h, ctx, resp.GetOrderId(), tt.status)
			if o.GetReason() != tt.reason {
				t.Errorf("%s: reason = %q, want %q", tt.name, o.GetReason(), tt.reason)
			}
			charges, net := h.billing.ledger(t, o.GetId())
			if charges != tt.charges || net != tt.net {
				t.Errorf("%s: billing holds %d charges, net %d; want %d, %d", tt.name, charges, net, tt.charges, tt.net)
			}
			if got := h.playback.active(t, o.GetId()) == 1; got != tt.entitled {
				t.Errorf("%s: active entitlement = %v, want %v", tt.name, got, tt.entitled)
			}
			if tt.status == "COMPLETED" && (o.GetChargeId() == "" || o.GetEntitlementId() == "" || o.GetCompletedAt() == nil) {
				t.Errorf("%s: completed order %v lacks its charge, entitlement or completion time", tt.name, o)
			}
			if want := "marquee.orders." + strings.ToLower(tt.status); !equal(outbox(t, h.db, o.GetId()), []string{want}) {
				t.Errorf("%s: events = %v, want [%s]", tt.name, outbox(t, h.db, o.GetId()), want)
			}
		}
		// The processor was tried the budget's number of times, then the
		// (possible) charge was refunded.
		if n := h.billing.callsOf("Charge"); n < fastRetry.MaxAttempts {
			t.Errorf("Charge calls = %d, want at least %d", n, fastRetry.MaxAttempts)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, storagetest.OpenSQLite(t, "orders", orders.Migrations))
	ctx := as("acct-1")
	req := &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardOK), IdempotencyKey: "same"}
	first, err := h.client.CreateOrder(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, h, ctx, first.GetOrderId(), "COMPLETED")
	again, err := h.client.CreateOrder(ctx, req)
	if err != nil || again.GetOrderId() != first.GetOrderId() || again.GetStatus() != "COMPLETED" {
		t.Fatalf("CreateOrder(same key, same request) = %v, %v, want order %s COMPLETED", again, err, first.GetOrderId())
	}
	_, err = h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "premium", Payment: card(cardOK), IdempotencyKey: "same"})
	wantCode(t, "CreateOrder(same key, other plan)", err, codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
	_, err = h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardDeclined), IdempotencyKey: "same"})
	wantCode(t, "CreateOrder(same key, other card)", err, codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")
	other, err := h.client.CreateOrder(as("acct-2"), req)
	if err != nil || other.GetOrderId() == first.GetOrderId() {
		t.Errorf("CreateOrder(same key, other account) = %v, %v, want a new order", other, err)
	}
	if charges, _ := h.billing.ledger(t, first.GetOrderId()); charges != 1 {
		t.Errorf("charges of the order = %d, want 1", charges)
	}
}

func TestOnePendingPlanOrderPerAccount(t *testing.T) {
	h := newHarness(t, storagetest.OpenSQLite(t, "orders", orders.Migrations))
	hold := make(chan struct{})
	h.billing.mu.Lock()
	h.billing.hold = hold
	h.billing.mu.Unlock()
	ctx := as("acct-1")
	first, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardOK), IdempotencyKey: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "premium", Payment: card(cardOK), IdempotencyKey: "b"})
	wantCode(t, "second plan order while one is pending", err, codes.FailedPrecondition, "ORDER_IN_PROGRESS")
	rental, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{TitleId: "t-0001", Payment: card(cardOK), IdempotencyKey: "c"})
	if err != nil {
		t.Fatalf("rental while a plan order is pending = %v, want it accepted", err)
	}
	if _, err := h.client.CreateOrder(as("acct-2"), &ordersv1.CreateOrderRequest{PlanId: "premium", Payment: card(cardOK), IdempotencyKey: "b"}); err != nil {
		t.Errorf("another account's plan order = %v, want it accepted", err)
	}
	close(hold)
	waitStatus(t, h, ctx, first.GetOrderId(), "COMPLETED")
	waitStatus(t, h, ctx, rental.GetOrderId(), "COMPLETED")
	if _, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "premium", Payment: card(cardOK), IdempotencyKey: "b"}); err != nil {
		t.Errorf("plan order after the first finished = %v, want it accepted", err)
	}
}

func TestCreateOrderRefusesBadRequests(t *testing.T) {
	h := newHarness(t, storagetest.OpenSQLite(t, "orders", orders.Migrations))
	ctx := as("acct-1")
	good := func(f func(r *ordersv1.CreateOrderRequest)) *ordersv1.CreateOrderRequest {
		r := &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardOK), IdempotencyKey: "k"}
		f(r)
		return r
	}
	tests := []struct {
		name   string
		ctx    context.Context
		req    *ordersv1.CreateOrderRequest
		code   codes.Code
		reason string
	}{
		{"no caller", context.Background(), good(func(*ordersv1.CreateOrderRequest) {}), codes.Unauthenticated, "UNAUTHENTICATED"},
		{"no key", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.IdempotencyKey = "" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"key with spaces", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.IdempotencyKey = "a b" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"nothing to buy", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.PlanId = "" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"plan and title", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.TitleId = "t-0001" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no payment", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.Payment = nil }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"short card", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.Payment.CardNumber = "4242" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad month", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.Payment.ExpMonth = 13 }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad cvc", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.Payment.Cvc = "12a" }), codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"card fails Luhn", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.Payment.CardNumber = "4242424242424241" }), codes.InvalidArgument, "INVALID_CARD"},
		{"unknown plan", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.PlanId = "gold" }), codes.NotFound, "NOT_FOUND"},
		{"unknown title", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.PlanId, r.TitleId = "", "t-9999" }), codes.NotFound, "NOT_FOUND"},
		{"title not rentable", ctx, good(func(r *ordersv1.CreateOrderRequest) { r.PlanId, r.TitleId = "", "t-0002" }), codes.FailedPrecondition, "NOT_RENTABLE"},
	}
	for _, tt := range tests {
		_, err := h.client.CreateOrder(tt.ctx, tt.req)
		wantCode(t, "CreateOrder("+tt.name+")", err, tt.code, tt.reason)
	}
	list, err := h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{})
	if err != nil || len(list.GetOrders()) != 0 {
		t.Errorf("orders after bad requests = %v, %v, want none", list.GetOrders(), err)
	}
}

func TestOrdersAreTheCallers(t *testing.T) {
	h := newHarness(t, storagetest.OpenSQLite(t, "orders", orders.Migrations))
	ctx := as("acct-1")
	var ids []string
	for i, c := range []string{cardOK, cardDeclined, cardOK} {
		resp, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{TitleId: "t-0001", Payment: card(c), IdempotencyKey: fmt.Sprint("k", i)})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{cardOK: "COMPLETED", cardDeclined: "REJECTED"}[c]
		waitStatus(t, h, ctx, resp.GetOrderId(), want)
		ids = append(ids, resp.GetOrderId())
	}
	_, err := h.client.GetOrder(as("acct-2"), &ordersv1.GetOrderRequest{Id: ids[0]})
	wantCode(t, "GetOrder(another account's order)", err, codes.NotFound, "NOT_FOUND")
	var got []string
	tok := ""
	for range 5 {
		resp, err := h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range resp.GetOrders() {
			got = append(got, o.GetId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if want := []string{ids[2], ids[1], ids[0]}; !equal(got, want) {
		t.Errorf("ListOrders pages = %v, want %v (newest first)", got, want)
	}
	resp, err := h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{Status: "REJECTED"})
	if err != nil || len(resp.GetOrders()) != 1 || resp.GetOrders()[0].GetId() != ids[1] {
		t.Errorf("ListOrders(REJECTED) = %v, %v, want [%s]", resp.GetOrders(), err, ids[1])
	}
	if resp, err := h.client.ListOrders(as("acct-2"), &ordersv1.ListOrdersRequest{}); err != nil || len(resp.GetOrders()) != 0 {
		t.Errorf("ListOrders(another account) = %v, %v, want none", resp.GetOrders(), err)
	}
	_, err = h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageToken: "not-a-token"})
	wantCode(t, "ListOrders(bad token)", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{Status: "LOST"})
	wantCode(t, "ListOrders(bad status)", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	_, err = h.client.ListOrders(ctx, &ordersv1.ListOrdersRequest{PageSize: 101})
	wantCode(t, "ListOrders(page_size 101)", err, codes.InvalidArgument, "INVALID_ARGUMENT")
}

func TestAdminSagas(t *testing.T) {
	forEachHarness(t, func(t *testing.T, h *harness) {
		ctx := as("acct-1")
		done, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardOK), IdempotencyKey: "a"})
		if err != nil {
			t.Fatal(err)
		}
		o := waitStatus(t, h, ctx, done.GetOrderId(), "COMPLETED")

		_, err = h.client.ListSagas(ctx, &ordersv1.ListSagasRequest{})
		wantCode(t, "ListSagas(viewer)", err, codes.PermissionDenied, "FORBIDDEN")
		_, err = h.client.GetSaga(ctx, &ordersv1.GetSagaRequest{Id: o.GetSagaId()})
		wantCode(t, "GetSaga(viewer)", err, codes.PermissionDenied, "FORBIDDEN")

		list, err := h.client.ListSagas(admin, &ordersv1.ListSagasRequest{OrderId: o.GetId()})
		if err != nil || len(list.GetSagas()) != 1 || list.GetSagas()[0].GetId() != o.GetSagaId() || list.GetSagas()[0].GetOrderId() != o.GetId() {
			t.Fatalf("ListSagas(order) = %v, %v, want the order's saga", list, err)
		}
		got, err := h.client.GetSaga(admin, &ordersv1.GetSagaRequest{Id: o.GetSagaId()})
		if err != nil {
			t.Fatal(err)
		}
		sg := got.GetSaga()
		if sg.GetState() != "completed" || sg.GetKind() != "create_order" || len(sg.GetSteps()) != 2 {
			t.Fatalf("GetSaga = %v, want completed create_order with 2 steps", sg)
		}
		charge := sg.GetSteps()[0]
		if charge.GetName() != "charge" || charge.GetParticipant() != "billing" || charge.GetMethod() != billingv1.BillingService_Charge_FullMethodName ||
			charge.GetState() != "succeeded" || charge.GetIdempotencyKey() != o.GetSagaId()+"/charge/action" {
			t.Errorf("charge step = %v", charge)
		}
		_, err = h.client.RetrySaga(admin, &ordersv1.RetrySagaRequest{Id: o.GetSagaId()})
		wantCode(t, "RetrySaga(completed)", err, codes.FailedPrecondition, "SAGA_FINISHED")
		_, err = h.client.CompensateSaga(admin, &ordersv1.CompensateSagaRequest{Id: o.GetSagaId()})
		wantCode(t, "CompensateSaga(completed)", err, codes.FailedPrecondition, "SAGA_FINISHED")
		_, err = h.client.GetSaga(admin, &ordersv1.GetSagaRequest{Id: "nope"})
		wantCode(t, "GetSaga(unknown)", err, codes.NotFound, "NOT_FOUND")

		// An operator gives up on an order whose grant hangs: the charge is
		// refunded and the grant revoked (it may have landed).
		hold := make(chan struct{})
		h.playback.mu.Lock()
		h.playback.hold = hold
		h.playback.mu.Unlock()
		ctx2 := as("acct-2")
		grants := h.playback.callsOf("GrantEntitlement")
		stuck, err := h.client.CreateOrder(ctx2, &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(cardOK), IdempotencyKey: "a"})
		if err != nil {
			t.Fatal(err)
		}
		for h.playback.callsOf("GrantEntitlement") == grants {
			time.Sleep(5 * time.Millisecond)
		}
		so, _ := h.client.GetOrder(ctx2, &ordersv1.GetOrderRequest{Id: stuck.GetOrderId()})
		_, err = h.client.RetrySaga(admin, &ordersv1.RetrySagaRequest{Id: so.GetOrder().GetSagaId()})
		wantCode(t, "RetrySaga(running)", err, codes.FailedPrecondition, "SAGA_NOT_PAUSED")
		comp, err := h.client.CompensateSaga(admin, &ordersv1.CompensateSagaRequest{Id: so.GetOrder().GetSagaId(), Reason: "customer called"})
		if err != nil {
			t.Fatalf("CompensateSaga = %v", err)
		}
		if comp.GetSaga().GetState() != "compensating" && comp.GetSaga().GetState() != "compensated" {
			t.Errorf("CompensateSaga state = %s, want compensating", comp.GetSaga().GetState())
		}
		close(hold)
		fo := waitStatus(t, h, ctx2, stuck.GetOrderId(), "FAILED")
		if fo.GetReason() != saga.ReasonForced {
			t.Errorf("reason = %q, want %q", fo.GetReason(), saga.ReasonForced)
		}
		if charges, net := h.billing.ledger(t, fo.GetId()); charges != 1 || net != 0 {
			t.Errorf("billing after CompensateSaga: %d charges, net %d; want 1, 0", charges, net)
		}
		// The grant arriving after its revocation is refused by playback.
		time.Sleep(50 * time.Millisecond)
		if n := h.playback.active(t, fo.GetId()); n != 0 {
			t.Errorf("active entitlements after CompensateSaga = %d, want 0", n)
		}

		// A refund that keeps failing stops the saga in needs_attention;
		// the order stays PENDING until an operator retries.
		h.billing.mu.Lock()
		h.billing.refundFailures = 1000
		h.billing.mu.Unlock()
		ctx3 := as("acct-3")
		bad, err := h.client.CreateOrder(ctx3, &ordersv1.CreateOrderRequest{TitleId: "t-0007", Payment: card(cardOK), IdempotencyKey: "a"})
		if err != nil {
			t.Fatal(err)
		}
		bo, _ := h.client.GetOrder(ctx3, &ordersv1.GetOrderRequest{Id: bad.GetOrderId()})
		sagaID := bo.GetOrder().GetSagaId()
		deadline := time.Now().Add(10 * time.Second)
		for {
			list, err := h.client.ListSagas(admin, &ordersv1.ListSagasRequest{State: "needs_attention"})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.GetSagas()) == 1 && list.GetSagas()[0].GetId() == sagaID {
				if !strings.Contains(list.GetSagas()[0].GetLastError(), "unavailable") {
					t.Errorf("needs_attention saga last_error = %q, want the refund's error", list.GetSagas()[0].GetLastError())
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("saga %s not in needs_attention after 10s", sagaID)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if o, _ := h.client.GetOrder(ctx3, &ordersv1.GetOrderRequest{Id: bad.GetOrderId()}); o.GetOrder().GetStatus() != "PENDING" {
			t.Errorf("order of a saga that needs attention = %s, want PENDING", o.GetOrder().GetStatus())
		}
		h.billing.mu.Lock()
		h.billing.refundFailures = 0
		h.billing.mu.Unlock()
		if _, err := h.client.RetrySaga(admin, &ordersv1.RetrySagaRequest{Id: sagaID}); err != nil {
			t.Fatalf("RetrySaga = %v", err)
		}
		fo = waitStatus(t, h, ctx3, bad.GetOrderId(), "FAILED")
		if fo.GetReason() != "title_unavailable" {
			t.Errorf("reason after retry = %q, want title_unavailable", fo.GetReason())
		}
		if _, net := h.billing.ledger(t, fo.GetId()); net != 0 {
			t.Errorf("net charge after retry = %d, want 0", net)
		}
		got, err = h.client.GetSaga(admin, &ordersv1.GetSagaRequest{Id: sagaID})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, st := range got.GetSaga().GetSteps() {
			names = append(names, st.GetName()+":"+st.GetState())
		}
		if want := []string{"charge:succeeded", "grant_entitlement:refused", "refund:succeeded"}; !equal(names, want) {
			t.Errorf("steps = %v, want %v", names, want)
		}
	})
}

// TestNoCardNumberStored looks through every table of the orders database
// for the card numbers of the orders placed.
func TestNoCardNumberStored(t *testing.T) {
	db := storagetest.OpenSQLite(t, "orders", orders.Migrations)
	h := newHarness(t, db)
	for i, c := range []string{cardOK, cardDeclined, cardUnavailable} {
		ctx := as(fmt.Sprint("acct-", i))
		resp, err := h.client.CreateOrder(ctx, &ordersv1.CreateOrderRequest{PlanId: "basic", Payment: card(c), IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, h, ctx, resp.GetOrderId(), map[string]string{cardOK: "COMPLETED", cardDeclined: "REJECTED", cardUnavailable: "FAILED"}[c])
	}
	var seen int
	for _, table := range []string{"orders", "marquee_saga", "marquee_saga_step", "marquee_saga_log", "marquee_outbox"} {
		rows, err := db.Query(context.Background(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			seen++
			for i, v := range vals {
				s := fmt.Sprintf("%s", v)
				for _, c := range []string{cardOK, cardDeclined, cardUnavailable} {
					if strings.Contains(s, c) {
						t.Errorf("%s.%s holds a card number", table, cols[i])
					}
				}
			}
		}
		rows.Close()
	}
	if seen < 10 {
		t.Errorf("looked at %d rows, want the rows of three orders and their sagas", seen)
	}
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
