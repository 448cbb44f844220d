// Package profiles is the profiles service: the viewer profiles of an
// account (at most five, each with a maturity level, a language and an
// avatar) and each profile's My List, served over gRPC as
// marquee.profiles.v1.ProfilesService.
//
// Every RPC acts for the caller that principal.Require finds in the gRPC
// metadata: an account sees and changes only its own profiles, and another
// account's profile is answered NOT_FOUND, exactly as a profile that does
// not exist. An admin may also read (GetProfile) any profile. Other
// services call GetProfile with the user's metadata forwarded, through
// NewMaturityLookup.
//
// The program wires it by hand (Start does this):
//
//	db, err := storage.Open(ctx, storage.Config{Service: "profiles", ...}, profiles.Migrations)
//	svc, err := profiles.NewService(ctx, db, profiles.Options{Catalog: catalogv1.NewCatalogServiceClient(conn)})
//	err = svc.Seed(ctx) // demo profiles, only for accounts that never had one
//	svc.Register(grpcServer)
//
// Layout: domain holds the model and its rules, store the SQL repository
// and migrations; this package holds the wiring, the gRPC edge (where
// domain errors become status codes, in errors.go), the events and the
// maturity lookup other programs use.
package profiles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/profiles/store"
)

// Migrations is the profiles schema; open the service database with it.
var Migrations = store.Migrations

// Options configure a Service.
type Options struct {
	// Catalog is the catalog service, asked whether a title exists (and
	// its rating) before it goes on a My List. When nil, AddToMyList
	// answers UNAVAILABLE.
	Catalog catalogv1.CatalogServiceClient
	// CatalogTimeout bounds each catalog call; zero means 3 seconds.
	CatalogTimeout time.Duration
	// Now is the clock of created_at, updated_at and added_at; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives internal errors and seeding notes; nil discards.
	Logger *slog.Logger
	// OnPublished, if set, runs after a write that published events has
	// committed: the place to wake the outbox relay (Relay.Notify).
	OnPublished func()
}

// Service is the profiles service: its repository and its gRPC server.
type Service struct {
	store  *store.Store
	server *server
	log    *slog.Logger
	now    func() time.Time
	notify func()
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here). Every change is published to db's outbox in
// its transaction (see the Subject constants).
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("profiles: database is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.CatalogTimeout <= 0 {
		opts.CatalogTimeout = 3 * time.Second
	}
	if opts.OnPublished == nil {
		opts.OnPublished = func() {}
	}
	st := store.New(db, store.Options{OnChange: publishChange})
	if err := st.CheckSchema(ctx); err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	return &Service{
		store: st,
		server: &server{
			repo:    st,
			titles:  catalogTitles{client: opts.Catalog, timeout: opts.CatalogTimeout},
			now:     opts.Now,
			log:     opts.Logger,
			written: opts.OnPublished,
		},
		log:    opts.Logger,
		now:    opts.Now,
		notify: opts.OnPublished,
	}, nil
}

// Register registers the ProfilesService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	profilesv1.RegisterProfilesServiceServer(r, s.server)
}

// Server returns the ProfilesService implementation, for calling it in
// process.
func (s *Service) Server() profilesv1.ProfilesServiceServer { return s.server }

// Store returns the service's repository.
func (s *Service) Store() *store.Store { return s.store }
