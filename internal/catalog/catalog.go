// Package catalog is the catalog service: titles (movies and series with
// seasons and episodes), genres, maturity ratings, availability windows,
// media assets and generated artwork, served over gRPC as
// marquee.catalog.v1.CatalogService.
//
// The program wires it by hand:
//
//	db, err := storage.Open(ctx, storage.Config{Service: "catalog", ...}, catalog.Migrations)
//	svc, err := catalog.NewService(ctx, db, catalog.Options{Logger: log})
//	err = svc.Seed(ctx) // demo data, only into an empty catalog
//	svc.Register(grpcServer)
//
// Layout: domain holds the model and its rules, store the SQL repository
// and migrations, demo the generated demo data, artwork the generated
// posters; this package holds the wiring and the gRPC edge, where domain
// errors become status codes (errors.go).
package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	"github.com/marquee-tv/marquee/internal/catalog/demo"
	"github.com/marquee-tv/marquee/internal/catalog/store"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Migrations is the catalog's database schema; open the service database
// with it.
var Migrations = store.Migrations

// ErrorDomain is the Domain of the google.rpc.ErrorInfo detail attached to
// every error status the service returns.
const ErrorDomain = "marquee.catalog"

// WithdrawnTitleID is the demo title whose availability window has ended:
// it is rentable, so renting it is charged and must then be compensated.
const WithdrawnTitleID = demo.WithdrawnTitleID

// Profiles resolves a viewer profile to its maturity level. The profiles
// service implements it (through a client) in production.
type Profiles interface {
	// ProfileMaturity returns the profile's level: "kids", "teen" or
	// "adult". An unknown profile is an error matching domain.ErrNotFound
	// (or a gRPC NotFound or PermissionDenied status); any other error
	// means the lookup is unavailable.
	ProfileMaturity(ctx context.Context, profileID string) (level string, err error)
}

// ProfileMaturityFunc adapts a function to Profiles.
type ProfileMaturityFunc func(ctx context.Context, profileID string) (string, error)

// ProfileMaturity calls f.
func (f ProfileMaturityFunc) ProfileMaturity(ctx context.Context, profileID string) (string, error) {
	return f(ctx, profileID)
}

// Options configure a Service. The zero value is usable.
type Options struct {
	// Profiles resolves profile_id in requests. When nil, a request that
	// names a profile_id is refused as an invalid argument ("profile
	// lookup not available"); callers pass maturity_level instead.
	Profiles Profiles
	// Now is the clock that decides whether titles are available; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives internal errors and seeding notes; nil discards.
	Logger *slog.Logger
	// OnTitleSaved, if set, runs inside the transaction of every title
	// write, seeding included: the place to publish
	// marquee.catalog.title_upserted to the outbox.
	OnTitleSaved store.TitleSavedHook
}

// Service is the catalog service: its repository and its gRPC server.
type Service struct {
	store  *store.Store
	server *server
	log    *slog.Logger
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here).
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("catalog: database is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := store.New(db, store.Options{OnTitleSaved: opts.OnTitleSaved})
	if err := st.CheckSchema(ctx); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return &Service{
		store: st,
		server: &server{
			repo:     st,
			profiles: opts.Profiles,
			now:      opts.Now,
			log:      opts.Logger,
		},
		log: opts.Logger,
	}, nil
}

// Register registers the CatalogService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	catalogv1.RegisterCatalogServiceServer(r, s.server)
}

// Server returns the CatalogService implementation, for calling it in
// process.
func (s *Service) Server() catalogv1.CatalogServiceServer { return s.server }

// Store returns the service's repository (for tools and tests that write
// titles).
func (s *Service) Store() *store.Store { return s.store }

// Seed inserts the demo genres and titles (package demo) when the catalog
// has no title, and does nothing otherwise. It is safe to call on every
// start and from several instances at once.
func (s *Service) Seed(ctx context.Context) error {
	titles := demo.Titles()
	seeded, err := s.store.SeedIfEmpty(ctx, demo.Genres(), titles)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if seeded {
		s.log.InfoContext(ctx, "catalog seeded with demo data", "titles", len(titles))
	}
	return nil
}
