// Package billing is the billing service: plans and rental terms,
// customers, payment methods (brand, last four digits, expiry and a
// processor token; never the card number), charges, refunds and invoices,
// served over gRPC as marquee.billing.v1.BillingService, in front of a card
// processor (package processor).
//
// Charge and Refund are the CreateOrder saga's payment step and its
// compensation. Each runs behind the saga barrier (package saga/barrier)
// in billing's own database, keyed by (saga_id, charge idempotency key):
//
//   - The processor call is an external side effect, so it happens outside
//     any transaction, before the barrier: first a charge attempt row is
//     taken (a concurrent duplicate, or a Refund of the same charge, answers
//     ABORTED IN_PROGRESS meanwhile), then the processor is called with the
//     charge's idempotency key, then the charge, its invoice, its outbox
//     event and the barrier row commit in one local transaction.
//   - An approval or a decline is a result and is recorded; a duplicate
//     Charge answers the recorded charge without calling the processor. A
//     transient processor failure records nothing (no barrier row), so the
//     retry runs again.
//   - A Refund that arrives before (or without) its Charge is recorded as
//     "nothing_to_refund"; the late Charge then answers status "cancelled"
//     without touching the card (it is not an error: see Charge in the
//     proto). Should the processor have approved it anyway (the Refund won
//     the race to the barrier), the approval is voided before answering.
//   - A Refund gives back what is left of a succeeded charge, once: the
//     processor refund is idempotent per charge, and the refund row, the
//     charge's refunded total (checked by the schema never to exceed the
//     charge) and the barrier row commit together.
//
// Layout: domain holds the model and its rules, store the SQL and the
// migrations, processor the processor port and its simulator; this package
// holds the flows, the gRPC edge (errors mapped in errors.go) and the
// wiring (start.go).
package billing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	"github.com/marquee-tv/marquee/internal/billing/processor"
	"github.com/marquee-tv/marquee/internal/billing/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Migrations is billing's database schema; open the service database with
// it.
var Migrations = store.Migrations

// Defaults of Options.
const (
	DefaultProcessorTimeout = 30 * time.Second
	// attemptMargin is how much longer than a processor call an attempt
	// row holds its key.
	attemptMargin = 15 * time.Second
	// recordTimeout bounds recording a result after the processor answered
	// (that write does not stop when the caller goes away).
	recordTimeout = 30 * time.Second
)

// Options configure a Service. The zero value is usable.
type Options struct {
	// Processor is the card processor; nil means a processor.Simulator with
	// the product's 5-second slow card.
	Processor processor.Processor
	// Now is the clock (card expiry, record times); nil means time.Now.
	Now func() time.Time
	// Logger receives internal errors and notes; nil discards. Nothing
	// logged ever holds a card number or CVC.
	Logger *slog.Logger
	// ProcessorTimeout bounds one processor call; zero means
	// DefaultProcessorTimeout. A processor call is not cut short when the
	// caller goes away, so that its outcome is recorded for the retry.
	ProcessorTimeout time.Duration
	// Committed, if set, is called after every commit that wrote outbox
	// events (Start passes the relay's Notify).
	Committed func()
}

// Service is the billing service.
type Service struct {
	db        *storage.DB
	store     *store.Store
	proc      processor.Processor
	now       func() time.Time
	log       *slog.Logger
	timeout   time.Duration
	committed func()
	server    *server
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here).
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("billing: database is required")
	}
	if opts.Processor == nil {
		opts.Processor = processor.NewSimulator(processor.DefaultSlowDelay)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.ProcessorTimeout <= 0 {
		opts.ProcessorTimeout = DefaultProcessorTimeout
	}
	if opts.Committed == nil {
		opts.Committed = func() {}
	}
	st := store.New()
	if err := st.CheckSchema(ctx, db); err != nil {
		return nil, fmt.Errorf("billing: %w", err)
	}
	s := &Service{
		db:        db,
		store:     st,
		proc:      opts.Processor,
		now:       func() time.Time { return opts.Now().UTC() },
		log:       opts.Logger,
		timeout:   opts.ProcessorTimeout,
		committed: opts.Committed,
	}
	s.server = &server{svc: s}
	return s, nil
}

// Register registers the BillingService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	billingv1.RegisterBillingServiceServer(r, s.server)
}

// Server returns the BillingService implementation, for calling it in
// process.
func (s *Service) Server() billingv1.BillingServiceServer { return s.server }

// newID returns a fresh random id.
func newID() string { return uuid.NewString() }

// detached returns a context that outlives the caller's cancellation, with
// timeout: for work that must finish once begun (recording what the
// processor did).
func detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), timeout)
}
