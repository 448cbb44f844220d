// Package orders is the orders service: it takes a customer's order for a
// plan or a rental, and runs the CreateOrder saga (PRODUCT §5) that
// charges the card through billing and grants the entitlement through
// playback, undoing the charge when the grant fails:
//
//  1. CreateOrder validates the request, tokenises the card through
//     billing CreatePaymentMethod (so no card number reaches this
//     service's database or saga log), then records the order PENDING and
//     its saga in one local transaction, and starts the saga at once;
//  2. charge: billing Charge (compensation: billing Refund). A declined
//     card ends the order REJECTED with its decline code;
//  3. grant: playback GrantEntitlement, the pivot (compensation: playback
//     RevokeEntitlement, for a grant given up on after transient errors).
//     A refusal (TITLE_UNAVAILABLE) refunds the charge and ends the order
//     FAILED;
//  4. in the saga's final transaction the order becomes COMPLETED,
//     REJECTED or FAILED with a reason, and marquee.orders.completed
//     (.rejected, .failed) is published through the outbox.
//
// Transient errors (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, ...) are
// retried with backoff; a processor that never recovers fails the order
// (payment_unavailable) after refunding whatever may have been charged.
// The saga engine (package saga) keeps the saga log in this service's
// database, resumes unfinished sagas on start, and with several replicas
// lets one drive each saga at a time.
//
// Layout: domain holds the model and its rules, store the SQL and the
// migrations; this package holds the flows (here and in saga.go), the gRPC
// edge (grpcserver.go, errors mapped in errors.go) and the wiring
// (start.go).
package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/orders/store"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga"
)

// Migrations is the orders schema; open the service database with it,
// then apply the saga tables with saga.Migrate (NewService does).
var Migrations = store.Migrations

// Event subjects, published through the outbox in the saga's final
// transaction; their data is the order as marquee.orders.v1.Order JSON.
const (
	CompletedSubject = "marquee.orders.completed"
	RejectedSubject  = "marquee.orders.rejected"
	FailedSubject    = "marquee.orders.failed"
)

// Options wires a Service.
type Options struct {
	Billing  billingv1.BillingServiceClient
	Playback playbackv1.PlaybackServiceClient
	Catalog  catalogv1.CatalogServiceClient
	Logger   *slog.Logger
	// Engine configures the saga engine (owner, concurrency, lease, poll,
	// metrics registerer).
	Engine saga.Options
	// ActionRetry and CompensationRetry override the saga steps' retry
	// policies (zero fields keep the defaults below).
	ActionRetry, CompensationRetry saga.RetryPolicy
	// Notify, if set, is called after an order's final transaction
	// committed (the outbox relay's Notify).
	Notify func()
	// PlanTTL is how long the plans and prices read from billing are
	// reused (default one minute).
	PlanTTL time.Duration
}

// Service is the orders service.
type Service struct {
	db       *storage.DB
	engine   *saga.Engine
	def      *saga.Definition[sagaData]
	billing  billingv1.BillingServiceClient
	playback playbackv1.PlaybackServiceClient
	catalog  catalogv1.CatalogServiceClient
	log      *slog.Logger
	notify   func()
	prices   *priceCache
}

// NewService returns the service over db (opened with Migrations); it
// creates the saga tables. Run drives the sagas.
func NewService(ctx context.Context, db *storage.DB, o Options) (*Service, error) {
	if o.Billing == nil || o.Playback == nil || o.Catalog == nil {
		return nil, errors.New("orders: billing, playback and catalog clients are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Notify == nil {
		o.Notify = func() {}
	}
	if o.PlanTTL <= 0 {
		o.PlanTTL = time.Minute
	}
	if err := saga.Migrate(ctx, db); err != nil {
		return nil, err
	}
	s := &Service{
		db: db, billing: o.Billing, playback: o.Playback, catalog: o.Catalog,
		log: o.Logger.With("service", "orders"), notify: o.Notify,
		prices: &priceCache{billing: o.Billing, ttl: o.PlanTTL},
	}
	def, err := s.definition(o.ActionRetry, o.CompensationRetry)
	if err != nil {
		return nil, err
	}
	s.def = def
	if o.Engine.Logger == nil {
		o.Engine.Logger = o.Logger
	}
	if o.Engine.Registerer == nil {
		o.Engine.Registerer = prometheus.NewRegistry()
	}
	s.engine, err = saga.New(db, o.Engine, def)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Engine returns the saga engine.
func (s *Service) Engine() *saga.Engine { return s.engine }

// Run drives the sagas until ctx ends.
func (s *Service) Run(ctx context.Context) error { return s.engine.Run(ctx) }

// CreateOrder places req for its account; see the package comment. The
// same idempotency key with the same request answers the same order
// (replayed true); with another request it fails with
// ErrIdempotencyKeyReused.
func (s *Service) CreateOrder(ctx context.Context, req domain.CreateRequest) (o domain.Order, replayed bool, err error) {
	req.Normalize()
	if err := req.Validate(); err != nil {
		return o, false, err
	}
	if o, ok, err := s.replay(ctx, s.db, req); ok || err != nil {
		return o, ok, err
	}
	o = domain.Order{
		AccountID: req.AccountID, IdempotencyKey: req.IdempotencyKey, Fingerprint: req.Fingerprint(),
		Kind: req.Kind(), PlanID: req.PlanID, TitleID: req.TitleID, Status: domain.StatusPending,
	}
	data := sagaData{AccountID: req.AccountID, Kind: o.Kind, PlanID: req.PlanID, TitleID: req.TitleID}
	if o.Kind == domain.KindPlan {
		plan, err := s.prices.plan(ctx, req.PlanID)
		if err != nil {
			return o, false, err
		}
		o.AmountMinor, o.Currency = plan.GetPrice().GetAmountMinor(), plan.GetPrice().GetCurrency()
		o.Description = plan.GetName() + " plan, " + plan.GetBillingPeriod()
		data.MaxStreams = plan.GetMaxStreams()
		pending, err := store.HasPendingPlan(ctx, s.db, req.AccountID)
		if err != nil {
			return o, false, err
		}
		if pending {
			// The pending order may be this very request, sent again while
			// its first attempt was being recorded.
			if prev, ok, err := s.replay(ctx, s.db, req); ok || err != nil {
				return prev, ok, err
			}
			return o, false, domain.ErrOrderInProgress
		}
	} else {
		title, err := s.rentableTitle(ctx, req.TitleID)
		if err != nil {
			return o, false, err
		}
		terms, err := s.prices.rental(ctx)
		if err != nil {
			return o, false, err
		}
		o.AmountMinor, o.Currency = terms.GetPrice().GetAmountMinor(), terms.GetPrice().GetCurrency()
		o.Description = fmt.Sprintf("Rental: %s (%d hours)", title.GetName(), terms.GetDurationSeconds()/3600)
		data.RentalSeconds = terms.GetDurationSeconds()
	}
	pm, err := s.tokenise(ctx, req)
	if err != nil {
		return o, false, err
	}
	now := time.Now().UTC()
	o.ID, o.SagaID = newID(), newID()
	o.PaymentMethodID = pm
	o.CreatedAt, o.UpdatedAt = now, now
	data.OrderID, data.AmountMinor, data.Currency, data.Description, data.PaymentMethodID = o.ID, o.AmountMinor, o.Currency, o.Description, pm
	err = s.db.InTx(ctx, func(tx *storage.Tx) error {
		if err := store.Insert(ctx, tx, o); err != nil {
			return err
		}
		return s.engine.Create(ctx, tx, s.def, o.SagaID, data)
	})
	if errors.Is(err, store.ErrConflict) {
		// A concurrent request won: the same key (replay) or another
		// pending plan order.
		if prev, ok, err := s.replay(ctx, s.db, req); ok || err != nil {
			return prev, ok, err
		}
		return o, false, domain.ErrOrderInProgress
	}
	if err != nil {
		return o, false, err
	}
	s.engine.Notify(o.SagaID)
	s.log.DebugContext(ctx, "order placed", "order", o.ID, "saga", o.SagaID, "kind", o.Kind, "account", o.AccountID)
	return o, false, nil
}

// replay returns the account's order under req's idempotency key, if any.
func (s *Service) replay(ctx context.Context, q storage.Queryer, req domain.CreateRequest) (domain.Order, bool, error) {
	prev, err := store.ByKey(ctx, q, req.AccountID, req.IdempotencyKey)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Order{}, false, nil
	}
	if err != nil {
		return domain.Order{}, false, err
	}
	if prev.Fingerprint != req.Fingerprint() {
		return domain.Order{}, false, domain.ErrIdempotencyKeyReused
	}
	return prev, true, nil
}

// rentableTitle returns the title of a rental, if it is rentable.
func (s *Service) rentableTitle(ctx context.Context, id string) (*catalogv1.Title, error) {
	resp, err := s.catalog.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: id})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		return nil, fmt.Errorf("title %q: %w", id, domain.ErrNotFound)
	case codes.InvalidArgument:
		return nil, domain.Invalid("title_id", "is not a title id")
	default:
		return nil, fmt.Errorf("catalog: %w: %w", domain.ErrUnavailable, err)
	}
	if !resp.GetTitle().GetRentable() {
		return nil, fmt.Errorf("title %q: %w", id, domain.ErrNotRentable)
	}
	return resp.GetTitle(), nil
}

// tokenise stores req's card with billing and returns the payment method
// id. The billing key is derived from the account and the order's key, so
// a retried request reuses the same payment method.
func (s *Service) tokenise(ctx context.Context, req domain.CreateRequest) (string, error) {
	h := sha256.Sum256([]byte(req.AccountID + "\x00" + req.IdempotencyKey))
	resp, err := s.billing.CreatePaymentMethod(ctx, &billingv1.CreatePaymentMethodRequest{
		IdempotencyKey: "order-pm-" + hex.EncodeToString(h[:20]),
		AccountId:      req.AccountID,
		Card: &billingv1.PaymentCard{
			CardNumber: req.Card.Number, ExpMonth: int32(req.Card.ExpMonth), ExpYear: int32(req.Card.ExpYear), Cvc: req.Card.CVC,
		},
	})
	switch {
	case err == nil:
		return resp.GetPaymentMethod().GetId(), nil
	case rpcerr.Is(err, "INVALID_CARD") || status.Code(err) == codes.InvalidArgument:
		return "", fmt.Errorf("%w: %s", domain.ErrInvalidCard, status.Convert(err).Message())
	case rpcerr.Is(err, "IDEMPOTENCY_KEY_REUSED"):
		return "", domain.ErrIdempotencyKeyReused
	default:
		return "", fmt.Errorf("billing: %w: %w", domain.ErrUnavailable, err)
	}
}

// GetOrder returns the account's order id; another account's order is
// domain.ErrNotFound.
func (s *Service) GetOrder(ctx context.Context, accountID, id string) (domain.Order, error) {
	o, err := store.Get(ctx, s.db, id)
	if err != nil {
		return o, err
	}
	if o.AccountID != accountID {
		return domain.Order{}, domain.ErrNotFound
	}
	return o, nil
}

// ListOrders lists the account's orders newest first.
func (s *Service) ListOrders(ctx context.Context, accountID, statusFilter string, size int, token string) ([]domain.Order, string, error) {
	if statusFilter != "" && !domain.ValidStatus(statusFilter) {
		return nil, "", domain.Invalid("status", "must be PENDING, COMPLETED, REJECTED or FAILED")
	}
	after, ok, err := domain.ParsePageToken(token)
	if err != nil {
		return nil, "", err
	}
	var ap *domain.PageToken
	if ok {
		ap = &after
	}
	return store.List(ctx, s.db, accountID, statusFilter, size, ap)
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// priceCache keeps billing's plans and rental terms for a while.
type priceCache struct {
	billing billingv1.BillingServiceClient
	ttl     time.Duration

	mu      sync.Mutex
	fetched time.Time
	resp    *billingv1.ListPlansResponse
}

func (c *priceCache) get(ctx context.Context) (*billingv1.ListPlansResponse, error) {
	c.mu.Lock()
	resp, fresh := c.resp, time.Since(c.fetched) < c.ttl
	c.mu.Unlock()
	if resp != nil && fresh {
		return resp, nil
	}
	got, err := c.billing.ListPlans(ctx, &billingv1.ListPlansRequest{PageSize: 100})
	if err != nil {
		if resp != nil {
			return resp, nil // stale prices beat no order
		}
		return nil, fmt.Errorf("billing plans: %w: %w", domain.ErrUnavailable, err)
	}
	c.mu.Lock()
	c.resp, c.fetched = got, time.Now()
	c.mu.Unlock()
	return got, nil
}

func (c *priceCache) plan(ctx context.Context, id string) (*billingv1.Plan, error) {
	resp, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range resp.GetPlans() {
		if p.GetId() == id {
			return p, nil
		}
	}
	return nil, fmt.Errorf("plan %q: %w", id, domain.ErrNotFound)
}

func (c *priceCache) rental(ctx context.Context) (*billingv1.RentalTerms, error) {
	resp, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	if resp.GetRental() == nil {
		return nil, fmt.Errorf("billing offers no rental terms: %w", domain.ErrUnavailable)
	}
	return resp.GetRental(), nil
}
