package billing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing"
	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// now is the test clock.
var now = time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)

// slowDelay stands in for the product's 5-second slow card.
const slowDelay = 300 * time.Millisecond

// countingProcessor is a hand-written fake around the simulator: it counts
// calls, can fail refunds transiently, and can run a hook when a charge
// has been decided (to interleave another call at that instant).
type countingProcessor struct {
	*processor.Simulator
	tokenizes, charges, refunds atomic.Int64
	// failRefunds is how many next Refund calls fail with ErrUnavailable.
	failRefunds atomic.Int64
	// afterCharge, if set, runs after the simulator answered a charge.
	afterCharge func(req processor.ChargeRequest)
}

var _ processor.Processor = (*countingProcessor)(nil)

func newProcessor() *countingProcessor {
	return &countingProcessor{Simulator: processor.NewSimulator(slowDelay)}
}

func (p *countingProcessor) Tokenize(ctx context.Context, card domain.Card) (processor.Token, error) {
	p.tokenizes.Add(1)
	return p.Simulator.Tokenize(ctx, card)
}

func (p *countingProcessor) Charge(ctx context.Context, req processor.ChargeRequest) (processor.ChargeResult, error) {
	p.charges.Add(1)
	res, err := p.Simulator.Charge(ctx, req)
	if p.afterCharge != nil {
		p.afterCharge(req)
	}
	return res, err
}

func (p *countingProcessor) Refund(ctx context.Context, req processor.RefundRequest) (processor.RefundResult, error) {
	p.refunds.Add(1)
	if p.failRefunds.Load() > 0 {
		p.failRefunds.Add(-1)
		return processor.RefundResult{}, fmt.Errorf("%w: simulated refund outage", processor.ErrUnavailable)
	}
	return p.Simulator.Refund(ctx, req)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one service on a real gRPC server, with its fakes.
type env struct {
	db     *storage.DB
	svc    *billing.Service
	proc   *countingProcessor
	logs   *syncBuffer
	client billingv1.BillingServiceClient
}

// serve starts billing over db on a gRPC server on 127.0.0.1:0.
func serve(t testing.TB, db *storage.DB) *env {
	t.Helper()
	e := &env{db: db, proc: newProcessor(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := billing.NewService(context.Background(), db, billing.Options{
		Processor: e.proc, Now: func() time.Time { return now }, Logger: logger, ProcessorTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	e.svc = svc
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.GracefulStop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	e.client = billingv1.NewBillingServiceClient(conn)
	return e
}

// as returns a context calling as account's viewer.
func as(account string) context.Context {
	return principal.NewOutgoingContext(context.Background(), principal.Principal{AccountID: account, Roles: []string{principal.RoleViewer}})
}

func card(number string) *billingv1.PaymentCard {
	return &billingv1.PaymentCard{CardNumber: number, ExpMonth: 12, ExpYear: 2030, Cvc: "123"}
}

func usd(n int64) *billingv1.Money { return &billingv1.Money{AmountMinor: n, Currency: "USD"} }

// order is one order's saga ids.
type order struct {
	account, orderID, sagaID, chargeKey, refundKey string
}

func newOrder() order {
	id := uuid.NewString()
	return order{account: "acct-" + id[:8], orderID: "order-" + id, sagaID: "saga-" + id, chargeKey: id + "/charge", refundKey: id + "/refund"}
}

func (o order) charge(amount int64, c *billingv1.PaymentCard) *billingv1.ChargeRequest {
	return &billingv1.ChargeRequest{IdempotencyKey: o.chargeKey, OrderId: o.orderID, SagaId: o.sagaID, AccountId: o.account,
		Amount: usd(amount), Description: "Standard plan, monthly", Source: &billingv1.ChargeRequest_Payment{Payment: c}}
}

func (o order) chargeWith(amount int64, paymentMethodID string) *billingv1.ChargeRequest {
	return &billingv1.ChargeRequest{IdempotencyKey: o.chargeKey, OrderId: o.orderID, SagaId: o.sagaID, AccountId: o.account,
		Amount: usd(amount), Description: "Standard plan, monthly", Source: &billingv1.ChargeRequest_PaymentMethodId{PaymentMethodId: paymentMethodID}}
}

func (o order) refund() *billingv1.RefundRequest {
	return &billingv1.RefundRequest{IdempotencyKey: o.refundKey, OrderId: o.orderID, SagaId: o.sagaID, AccountId: o.account,
		ChargeIdempotencyKey: o.chargeKey, Reason: "entitlement failed"}
}

// wantStatus checks err is a status with code and an ErrorInfo with reason
// in the marquee domain, and (when given) exactly the field violations.
func wantStatus(t *testing.T, what string, err error, code codes.Code, reason string, fields ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Errorf("%s: error = %v, want code %v", what, err, code)
		return
	}
	var info *errdetails.ErrorInfo
	var got []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				got = append(got, v.GetField())
			}
		}
	}
	if info == nil || info.GetReason() != reason || info.GetDomain() != rpcerr.Domain {
		t.Errorf("%s: ErrorInfo = %v, want reason %s", what, info, reason)
	}
	if len(fields) > 0 && fmt.Sprint(got) != fmt.Sprint(fields) {
		t.Errorf("%s: field violations = %q, want %q", what, got, fields)
	}
}

// count runs a COUNT(*) query.
func count(t *testing.T, db *storage.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isCode(err error, c codes.Code) bool {
	return status.Code(err) == c && !errors.Is(err, context.Canceled)
}
