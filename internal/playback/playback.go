// Package playback is the playback service: entitlements (plans and
// rentals, granted and revoked by the CreateOrder saga), playback sessions
// with a per-plan limit of concurrent streams, viewing progress and
// continue watching, and the delivery of the video bytes behind signed,
// expiring URLs. It serves marquee.playback.v1.PlaybackService over gRPC
// and the media over plain HTTP, and publishes marquee.playback.started,
// .progress and .completed through its outbox.
//
// The program wires it by hand (Start does exactly this):
//
//	db, err := storage.Open(ctx, cfg, playback.Migrations)
//	svc, err := playback.NewService(ctx, db, playback.Options{Catalog: catalogConn, Profiles: profilesConn})
//	svc.Register(grpcServer)
//	httpServer.Handler = svc.MediaHandler()
//	go svc.RunExpiry(ctx)
//
// Layout: domain holds the rules (plans, entitlements, sessions, progress),
// store the SQL repository and migrations, media the embedded videos,
// signed URLs and the HTTP handler; this package holds the wiring, the gRPC
// edge (errors become statuses in errors.go only), the saga participant
// (saga.go), events and demo seeding.
package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/media"
	"github.com/marquee-tv/marquee/internal/playback/store"
)

// Migrations is playback's database schema; open the service database
// with it.
var Migrations = store.Migrations

// DefaultStreamURLTTL is how long a stream URL stays valid.
const DefaultStreamURLTTL = 4 * time.Hour

// mediaKeyName names the signing key of media URLs in the database.
const mediaKeyName = "media-url-v1"

// Options configure a Service.
type Options struct {
	// Catalog and Profiles are connections to those services (in a
	// program, env.Peers.Conn("catalog") and ("profiles")). Required.
	Catalog  grpc.ClientConnInterface
	Profiles grpc.ClientConnInterface
	// Now is the clock of entitlements, sessions and URL expiry; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives internal errors and notes; nil discards.
	Logger *slog.Logger
	// Notify, if set, is called after every commit that wrote events to
	// the outbox (the relay's Notify).
	Notify func()
	// StreamURLTTL is how long stream URLs stay valid; 0 means
	// DefaultStreamURLTTL.
	StreamURLTTL time.Duration
	// Media is the library of servable videos; nil means media.Embedded().
	Media *media.Library
}

// Service is the playback service.
type Service struct {
	db       *storage.DB
	store    *store.Store
	catalog  catalogv1.CatalogServiceClient
	profiles profilesv1.ProfilesServiceClient
	lib      *media.Library
	signer   *media.Signer
	media    *media.Handler
	now      func() time.Time
	log      *slog.Logger
	notify   func()
	urlTTL   time.Duration
	server   *server
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here). It loads the media signing key from db,
// creating it on the first start; every replica sharing db signs alike.
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("playback: database is required")
	}
	if opts.Catalog == nil || opts.Profiles == nil {
		return nil, errors.New("playback: catalog and profiles connections are required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Notify == nil {
		opts.Notify = func() {}
	}
	if opts.StreamURLTTL <= 0 {
		opts.StreamURLTTL = DefaultStreamURLTTL
	}
	if opts.Media == nil {
		lib, err := media.Embedded()
		if err != nil {
			return nil, fmt.Errorf("playback: %w", err)
		}
		opts.Media = lib
	}
	st := store.New()
	if err := st.CheckSchema(ctx, db); err != nil {
		return nil, fmt.Errorf("playback: %w", err)
	}
	key, err := st.SigningKey(ctx, db, mediaKeyName)
	if err != nil {
		return nil, fmt.Errorf("playback: %w", err)
	}
	signer, err := media.NewSigner(key)
	if err != nil {
		return nil, fmt.Errorf("playback: %w", err)
	}
	s := &Service{
		db:       db,
		store:    st,
		catalog:  catalogv1.NewCatalogServiceClient(opts.Catalog),
		profiles: profilesv1.NewProfilesServiceClient(opts.Profiles),
		lib:      opts.Media,
		signer:   signer,
		media:    media.NewHandler(opts.Media, signer, opts.Now, opts.Logger),
		now:      opts.Now,
		log:      opts.Logger,
		notify:   opts.Notify,
		urlTTL:   opts.StreamURLTTL,
	}
	s.server = &server{Service: s}
	return s, nil
}

// Register registers the PlaybackService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	playbackv1.RegisterPlaybackServiceServer(r, s.server)
}

// Server returns the PlaybackService implementation, for calling it in
// process.
func (s *Service) Server() playbackv1.PlaybackServiceServer { return s.server }

// MediaHandler returns the plain-HTTP handler of signed media URLs
// (/media/{asset}/{file}?exp&sid&sig). It checks signatures with the key
// alone and calls no other service.
func (s *Service) MediaHandler() http.Handler { return s.media }

// inTx runs fn in a transaction and, once it committed, notifies the
// outbox relay.
func (s *Service) inTx(ctx context.Context, fn func(tx *storage.Tx) error) error {
	if err := s.db.InTx(ctx, fn); err != nil {
		return err
	}
	s.notify()
	return nil
}
