package orders_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga/barrier"
)

// The test cards of PRODUCT §4.
const (
	cardOK           = "4242424242424242"
	cardDeclined     = "4000000000000002"
	cardInsufficient = "4000000000009995"
	cardUnavailable  = "4000000000000119"
)

// serveGRPC serves register on 127.0.0.1:0 and returns a client
// connection to it.
func serveGRPC(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func marshal(m proto.Message) ([]byte, error) { return protojson.Marshal(m) }

// fakeBilling is a hand-written billing: it tokenises the test cards,
// charges and refunds behind the saga barrier in a database of its own,
// so each effect happens once per key, a refund before its charge cancels
// the charge, and duplicates answer the original result.
type fakeBilling struct {
	billingv1.UnimplementedBillingServiceServer
	db *storage.DB

	mu sync.Mutex
	// hold, when set, blocks Charge until it is closed.
	hold chan struct{}
	// refundFailures makes that many Refund calls fail as unavailable.
	refundFailures int
	// processorDown makes the unavailable card's charges fail.
	processorDown bool
	calls         map[string]int
}

func newFakeBilling(t testing.TB) *fakeBilling {
	db := storagetest.OpenSQLite(t, "fakebilling", storage.Migrations{})
	for _, q := range []string{
		`CREATE TABLE pms (id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, account_id TEXT NOT NULL, number TEXT NOT NULL)`,
		`CREATE TABLE charges (id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, saga_id TEXT NOT NULL, order_id TEXT NOT NULL,
			amount INTEGER NOT NULL, status TEXT NOT NULL)`,
		`CREATE TABLE refunds (id TEXT PRIMARY KEY, charge_key TEXT NOT NULL, order_id TEXT NOT NULL, amount INTEGER NOT NULL)`,
	} {
		if _, err := db.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeBilling{db: db, processorDown: true, calls: map[string]int{}}
}

func (b *fakeBilling) count(m string) {
	b.mu.Lock()
	b.calls[m]++
	b.mu.Unlock()
}

func (b *fakeBilling) callsOf(m string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[m]
}

func (b *fakeBilling) ListPlans(context.Context, *billingv1.ListPlansRequest) (*billingv1.ListPlansResponse, error) {
	usd := func(n int64) *billingv1.Money { return &billingv1.Money{AmountMinor: n, Currency: "USD"} }
	return &billingv1.ListPlansResponse{
		Plans: []*billingv1.Plan{
			{Id: "basic", Name: "Basic", Price: usd(799), MaxStreams: 1, BillingPeriod: "monthly"},
			{Id: "standard", Name: "Standard", Price: usd(1549), MaxStreams: 2, BillingPeriod: "monthly"},
			{Id: "premium", Name: "Premium", Price: usd(2299), MaxStreams: 4, BillingPeriod: "monthly"},
		},
		Rental: &billingv1.RentalTerms{Price: usd(399), DurationSeconds: 48 * 3600},
	}, nil
}

func luhn(n string) bool {
	sum := 0
	for i := range len(n) {
		d := int(n[len(n)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func (b *fakeBilling) CreatePaymentMethod(ctx context.Context, req *billingv1.CreatePaymentMethodRequest) (*billingv1.CreatePaymentMethodResponse, error) {
	b.count("CreatePaymentMethod")
	n := req.GetCard().GetCardNumber()
	if !luhn(n) {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_CARD", "card number fails the Luhn check")
	}
	id := uuid.NewString()
	_, err := b.db.Exec(ctx, `INSERT INTO pms (id, key, account_id, number) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING`, id, req.GetIdempotencyKey(), req.GetAccountId(), n)
	if err != nil {
		return nil, err
	}
	var got, num string
	if err := b.db.QueryRow(ctx, `SELECT id, number FROM pms WHERE key = $1`, req.GetIdempotencyKey()).Scan(&got, &num); err != nil {
		return nil, err
	}
	if num != n {
		return nil, rpcerr.New(codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED", "key used with another card")
	}
	return &billingv1.CreatePaymentMethodResponse{PaymentMethod: &billingv1.PaymentMethod{Id: got, AccountId: req.GetAccountId(), Last4: n[len(n)-4:]}}, nil
}

func (b *fakeBilling) Charge(ctx context.Context, req *billingv1.ChargeRequest) (*billingv1.ChargeResponse, error) {
	b.count("Charge")
	b.mu.Lock()
	hold, down := b.hold, b.processorDown
	b.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var number string
	if err := b.db.QueryRow(ctx, `SELECT number FROM pms WHERE id = $1`, req.GetPaymentMethodId()).Scan(&number); err != nil {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_ARGUMENT", "unknown payment method")
	}
	if number == cardUnavailable && down {
		return nil, rpcerr.New(codes.Unavailable, "PROCESSOR_UNAVAILABLE", "payment processor unavailable")
	}
	out, err := barrier.Action(ctx, b.db, req.GetSagaId(), req.GetIdempotencyKey(), func(tx *storage.Tx) ([]byte, error) {
		c := &billingv1.Charge{Id: uuid.NewString(), OrderId: req.GetOrderId(), SagaId: req.GetSagaId(), IdempotencyKey: req.GetIdempotencyKey(), Amount: req.GetAmount(), Status: "succeeded"}
		switch number {
		case cardDeclined:
			c.Status, c.DeclineCode = "declined", "card_declined"
		case cardInsufficient:
			c.Status, c.DeclineCode = "declined", "insufficient_funds"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO charges (id, key, saga_id, order_id, amount, status) VALUES ($1, $2, $3, $4, $5, $6)`,
			c.Id, c.IdempotencyKey, c.SagaId, c.OrderId, c.Amount.GetAmountMinor(), c.Status); err != nil {
			return nil, err
		}
		return marshal(c)
	})
	if errors.Is(err, barrier.ErrCompensated) {
		return &billingv1.ChargeResponse{Charge: &billingv1.Charge{OrderId: req.GetOrderId(), IdempotencyKey: req.GetIdempotencyKey(), Status: "cancelled"}}, nil
	}
	if err != nil {
		return nil, err
	}
	c := &billingv1.Charge{}
	if err := protojson.Unmarshal(out, c); err != nil {
		return nil, err
	}
	return &billingv1.ChargeResponse{Charge: c}, nil
}

func (b *fakeBilling) Refund(ctx context.Context, req *billingv1.RefundRequest) (*billingv1.RefundResponse, error) {
	b.count("Refund")
	b.mu.Lock()
	if b.refundFailures > 0 {
		b.refundFailures--
		b.mu.Unlock()
		return nil, rpcerr.New(codes.Unavailable, "PROCESSOR_UNAVAILABLE", "payment processor unavailable")
	}
	b.mu.Unlock()
	out, err := barrier.Compensate(ctx, b.db, req.GetSagaId(), req.GetChargeIdempotencyKey(), func(tx *storage.Tx) ([]byte, error) {
		r := &billingv1.Refund{Id: uuid.NewString(), OrderId: req.GetOrderId(), IdempotencyKey: req.GetIdempotencyKey(), Status: "nothing_to_refund"}
		var amount int64
		var st string
		err := tx.QueryRow(ctx, `SELECT amount, status FROM charges WHERE key = $1`, req.GetChargeIdempotencyKey()).Scan(&amount, &st)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if st == "succeeded" {
			r.Status, r.Amount = "succeeded", &billingv1.Money{AmountMinor: amount, Currency: "USD"}
			if _, err := tx.Exec(ctx, `INSERT INTO refunds (id, charge_key, order_id, amount) VALUES ($1, $2, $3, $4)`, r.Id, req.GetChargeIdempotencyKey(), req.GetOrderId(), amount); err != nil {
				return nil, err
			}
		}
		return marshal(r)
	})
	if err != nil {
		return nil, err
	}
	r := &billingv1.Refund{Status: "nothing_to_refund", OrderId: req.GetOrderId()}
	if out != nil {
		if err := protojson.Unmarshal(out, r); err != nil {
			return nil, err
		}
	}
	return &billingv1.RefundResponse{Refund: r}, nil
}

// ledger returns what billing holds for an order: succeeded charges and
// the net amount charged.
func (b *fakeBilling) ledger(t *testing.T, orderID string) (charges int, net int64) {
	t.Helper()
	ctx := context.Background()
	var charged, refunded sql.NullInt64
	if err := b.db.QueryRow(ctx, `SELECT COUNT(*), SUM(amount) FROM charges WHERE order_id = $1 AND status = 'succeeded'`, orderID).Scan(&charges, &charged); err != nil {
		t.Fatal(err)
	}
	if err := b.db.QueryRow(ctx, `SELECT SUM(amount) FROM refunds WHERE order_id = $1`, orderID).Scan(&refunded); err != nil {
		t.Fatal(err)
	}
	return charges, charged.Int64 - refunded.Int64
}

// fakePlayback grants and revokes entitlements behind the barrier.
type fakePlayback struct {
	playbackv1.UnimplementedPlaybackServiceServer
	db *storage.DB

	mu sync.Mutex
	// hold, when set, blocks GrantEntitlement until it is closed.
	hold  chan struct{}
	calls map[string]int
}

func newFakePlayback(t testing.TB) *fakePlayback {
	db := storagetest.OpenSQLite(t, "fakeplayback", storage.Migrations{})
	if _, err := db.Exec(context.Background(), `CREATE TABLE ents (id TEXT PRIMARY KEY, key TEXT UNIQUE NOT NULL, order_id TEXT NOT NULL, status TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return &fakePlayback{db: db, calls: map[string]int{}}
}

func (p *fakePlayback) callsOf(m string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[m]
}

func (p *fakePlayback) GrantEntitlement(ctx context.Context, req *playbackv1.GrantEntitlementRequest) (*playbackv1.GrantEntitlementResponse, error) {
	p.mu.Lock()
	p.calls["GrantEntitlement"]++
	hold := p.hold
	p.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if (req.GetPlanId() == "") == (req.GetTitleId() == "") || req.GetAccountId() == "" || req.GetOrderId() == "" {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_ARGUMENT", "bad grant")
	}
	if req.GetTitleId() == "t-0007" {
		return nil, rpcerr.New(codes.FailedPrecondition, "TITLE_UNAVAILABLE", "the title's availability window has ended")
	}
	out, err := barrier.Action(ctx, p.db, req.GetSagaId(), req.GetIdempotencyKey(), func(tx *storage.Tx) ([]byte, error) {
		e := &playbackv1.Entitlement{Id: uuid.NewString(), OrderId: req.GetOrderId(), IdempotencyKey: req.GetIdempotencyKey(), Status: "active", PlanId: req.GetPlanId(), TitleId: req.GetTitleId()}
		if _, err := tx.Exec(ctx, `INSERT INTO ents (id, key, order_id, status) VALUES ($1, $2, $3, 'active')`, e.Id, e.IdempotencyKey, e.OrderId); err != nil {
			return nil, err
		}
		return marshal(e)
	})
	if errors.Is(err, barrier.ErrCompensated) {
		return &playbackv1.GrantEntitlementResponse{Entitlement: &playbackv1.Entitlement{OrderId: req.GetOrderId(), Status: "cancelled"}}, nil
	}
	if err != nil {
		return nil, err
	}
	e := &playbackv1.Entitlement{}
	if err := protojson.Unmarshal(out, e); err != nil {
		return nil, err
	}
	return &playbackv1.GrantEntitlementResponse{Entitlement: e}, nil
}

func (p *fakePlayback) RevokeEntitlement(ctx context.Context, req *playbackv1.RevokeEntitlementRequest) (*playbackv1.RevokeEntitlementResponse, error) {
	p.mu.Lock()
	p.calls["RevokeEntitlement"]++
	p.mu.Unlock()
	out, err := barrier.Compensate(ctx, p.db, req.GetSagaId(), req.GetGrantIdempotencyKey(), func(tx *storage.Tx) ([]byte, error) {
		if _, err := tx.Exec(ctx, `UPDATE ents SET status = 'revoked' WHERE key = $1`, req.GetGrantIdempotencyKey()); err != nil {
			return nil, err
		}
		return marshal(&playbackv1.Entitlement{OrderId: req.GetOrderId(), Status: "revoked"})
	})
	if err != nil {
		return nil, err
	}
	e := &playbackv1.Entitlement{OrderId: req.GetOrderId(), Status: "cancelled"}
	if out != nil {
		if err := protojson.Unmarshal(out, e); err != nil {
			return nil, err
		}
	}
	return &playbackv1.RevokeEntitlementResponse{Entitlement: e}, nil
}

// active returns how many active entitlements an order has.
func (p *fakePlayback) active(t *testing.T, orderID string) int {
	t.Helper()
	var n int
	if err := p.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM ents WHERE order_id = $1 AND status = 'active'`, orderID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeCatalog knows a few titles.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
}

func (fakeCatalog) GetTitle(_ context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	switch id := req.GetId(); id {
	case "t-0001", "t-0007":
		return &catalogv1.GetTitleResponse{Title: &catalogv1.Title{Id: id, Name: "Title " + strings.TrimPrefix(id, "t-"), Rentable: true}}, nil
	case "t-0002":
		return &catalogv1.GetTitleResponse{Title: &catalogv1.Title{Id: id, Name: "Not For Rent"}}, nil
	}
	return nil, rpcerr.New(codes.NotFound, "NOT_FOUND", fmt.Sprintf("title %q not found", req.GetId()))
}

func unmarshalJSON(b []byte, v any) error { return json.Unmarshal(b, v) }
