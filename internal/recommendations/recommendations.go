// Package recommendations is the recommendations service: rows of titles
// for a profile, served over gRPC as
// marquee.recommendations.v1.RecommendationsService, from the service's own
// projection of the catalog and of viewing, which it builds only from
// events (never by reading another service's database).
//
// It consumes, through idempotent consumers (one local transaction per
// event, with the inbox insert):
//
//   - marquee.catalog.title_upserted (data: marquee.catalog.v1.Title JSON;
//     fields used: id, name, kind, artwork_url, maturity_rating, genres,
//     year, available_from, available_until, available, and the episode
//     ids of seasons) into its catalog projection;
//   - marquee.playback.started, .progress, .stopped and .completed (see
//     DecodeViewing for the fields it relies on) into its profile × title
//     view matrix, per-title viewers and plays, plays per hour (trending)
//     and co-view counts (similarity).
//
// One build ships two versions, chosen per instance (service.Env.Version):
// v1 answers trending and popular-by-genre rows; v2 answers rows
// personalised by item-to-item cosine similarity learned from co-viewing,
// and v1's rows (reason "cold_start") for a profile it knows nothing
// about. Every row leaves out titles above the profile's maturity level
// (read from the profiles service, GetProfile, on the caller's behalf) and
// titles outside their availability window.
//
// The instances of both versions share the service's database, and so the
// projection and the durable consumers: each event is applied once,
// whichever instance receives it.
//
// Layout: domain holds the model and the algorithms, store the SQL
// projection and its migrations; this package holds the event handlers,
// the gRPC edge (errors.go maps errors to statuses in one place), the
// profiles client, the metrics and the wiring (start.go).
package recommendations

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
	"github.com/marquee-tv/marquee/internal/recommendations/store"
)

// Migrations is the service's database schema; open its database with it.
var Migrations = store.Migrations

// DefaultSnapshotTTL is how long the catalog projection and the aggregate
// figures (viewers, trending) are reused between requests. Viewing history
// and co-views are read fresh on every request.
const DefaultSnapshotTTL = time.Second

// Options configure a Service.
type Options struct {
	// Version is the model the instance answers with; required.
	Version domain.Version
	// Profiles resolves a profile to its maturity level; required.
	Profiles Profiles
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives event and request problems; nil discards.
	Logger *slog.Logger
	// Trending tunes the trending score; zero means domain.DefaultTrending.
	Trending domain.Trending
	// SnapshotTTL is how long a snapshot is reused; zero means
	// DefaultSnapshotTTL, negative means never (load on every request).
	SnapshotTTL time.Duration
	// Registerer receives the service's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Service is the recommendations service: its projection and its gRPC
// server.
type Service struct {
	store   *store.Store
	version domain.Version
	prof    Profiles
	now     func() time.Time
	log     *slog.Logger
	trend   domain.Trending
	ttl     time.Duration
	skipped *prometheus.CounterVec

	snapMu sync.Mutex
	snap   *domain.Snapshot
	snapAt time.Time
}

// NewService returns the service over db, which must have been opened with
// Migrations (checked here).
func NewService(ctx context.Context, db *storage.DB, opts Options) (*Service, error) {
	if db == nil {
		return nil, errors.New("recommendations: database is required")
	}
	if _, err := domain.ParseVersion(string(opts.Version)); err != nil {
		return nil, fmt.Errorf("recommendations: %w", err)
	}
	if opts.Profiles == nil {
		return nil, errors.New("recommendations: a profiles client is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Trending == (domain.Trending{}) {
		opts.Trending = domain.DefaultTrending
	}
	if opts.SnapshotTTL == 0 {
		opts.SnapshotTTL = DefaultSnapshotTTL
	}
	st := store.New(db)
	if err := st.CheckSchema(ctx); err != nil {
		return nil, fmt.Errorf("recommendations: %w", err)
	}
	s := &Service{
		store:   st,
		version: opts.Version,
		prof:    opts.Profiles,
		now:     opts.Now,
		log:     opts.Logger,
		trend:   opts.Trending,
		ttl:     opts.SnapshotTTL,
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_recommendations_events_skipped_total",
			Help: "Events acknowledged without effect because their data could not be used, by subject.",
		}, []string{"subject"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.skipped); err != nil {
			return nil, fmt.Errorf("recommendations: metrics: %w", err)
		}
	}
	return s, nil
}

// Register registers the RecommendationsService on a gRPC server.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	recommendationsv1.RegisterRecommendationsServiceServer(r, &server{svc: s})
}

// Server returns the RecommendationsService implementation, for calling it
// in process.
func (s *Service) Server() recommendationsv1.RecommendationsServiceServer { return &server{svc: s} }

// Store returns the service's projection (for tools and tests).
func (s *Service) Store() *store.Store { return s.store }

// Version is the model this instance answers with.
func (s *Service) Version() domain.Version { return s.version }

// snapshot returns the catalog projection with viewers and trending scores,
// reloading it when older than the TTL; an empty one (a service that has
// not caught up with the catalog yet) is not reused. When a reload fails
// and an older snapshot exists, the older one is answered.
func (s *Service) snapshot(ctx context.Context) (*domain.Snapshot, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	now := s.now()
	if s.snap != nil && len(s.snap.Titles) > 0 && s.ttl > 0 && now.Sub(s.snapAt) < s.ttl {
		return s.snap, nil
	}
	snap, err := s.loadSnapshot(ctx, now)
	if err != nil {
		if s.snap != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "recommendations: snapshot reload failed; serving the previous one",
				"age", now.Sub(s.snapAt).String(), "err", err)
			return s.snap, nil
		}
		return nil, err
	}
	s.snap, s.snapAt = snap, now
	return snap, nil
}

func (s *Service) loadSnapshot(ctx context.Context, now time.Time) (*domain.Snapshot, error) {
	titles, err := s.store.Titles(ctx)
	if err != nil {
		return nil, err
	}
	stats, err := s.store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	acts, err := s.store.Activity(ctx, s.trend.Since(now))
	if err != nil {
		return nil, err
	}
	snap := &domain.Snapshot{
		Titles:   make(map[string]domain.Title, len(titles)),
		Viewers:  make(map[string]int, len(stats)),
		Trending: s.trend.Scores(acts, now),
	}
	for _, t := range titles {
		snap.Titles[t.ID] = t
	}
	for id, st := range stats {
		snap.Viewers[id] = st.Viewers
	}
	return snap, nil
}

// RunMaintenance deletes play counts that trending no longer reads, at
// start and then hourly, until ctx ends. Run it as a background worker of
// one instance or of all (it is idempotent).
func (s *Service) RunMaintenance(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		before := s.trend.Since(s.now()).Add(-domain.BucketSize)
		if n, err := s.store.PruneActivity(ctx, before); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "recommendations: prune activity", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "recommendations: pruned old play counts", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
