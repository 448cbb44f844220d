// Package controlplane is the mesh control plane: the registry of running
// instances, workload certificates, the versioned mesh policy, and the
// push of per-sidecar configuration snapshots.
//
// Sidecars reach it over MeshService (gRPC, TLS): Certify signs workload
// certificates for the service a join token names, and Connect registers an
// instance, carries its heartbeats and acks, and pushes it a Snapshot on
// connect and whenever its view of the mesh changes. Operators reach it
// over an admin JSON API (Handler) that reads the registry and reads,
// replaces and edits the policy; every change is stored as a new policy
// version, so a restarted control plane carries on where it stopped.
//
// Locking: applyMu (policy writes, held across the database write) is
// taken before mu (registry, policy in force, snapshot versions); mu is
// never held while waiting on the network or the database, and a stream's
// outbox lock is taken under mu only for a non-blocking hand-off.
package controlplane

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/policy"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Defaults of Config.
const (
	DefaultCertTTL          = time.Hour
	DefaultHeartbeatTimeout = 10 * time.Second
)

// pushInterval is the shortest time between two recomputations of every
// sidecar's snapshot, so a burst of joins or health flaps costs one push.
const pushInterval = 50 * time.Millisecond

// Config is what a control plane needs.
type Config struct {
	// DB stores the policy versions (tables created by New).
	DB *storage.DB
	// Authority signs workload certificates.
	Authority *ca.Authority
	// JoinSecret verifies the sidecars' join tokens (see ca.JoinToken).
	JoinSecret []byte
	// InitialPolicy is stored as version 1 when the store is empty;
	// nil means policy.Default().
	InitialPolicy *policy.Policy
	// CertTTL is the lifetime of workload certificates; zero means
	// DefaultCertTTL.
	CertTTL time.Duration
	// HeartbeatTimeout marks an instance unhealthy when nothing was heard
	// from it for this long; it leaves the registry only when its stream
	// ends. Zero means DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// Registerer receives the metrics; nil means none.
	Registerer prometheus.Registerer
	// Log receives the control plane's logs; nil means slog.Default().
	Log *slog.Logger
}

// Server is a running control plane. Create it with New, register it on a
// gRPC server with RegisterGRPC, serve Handler to operators and run Run in
// the background.
type Server struct {
	meshv1.UnimplementedMeshServiceServer

	cfg   Config
	log   *slog.Logger
	store store
	m     *metrics

	// applyMu serialises policy writes so that the version checked, the
	// version stored and the version installed are one.
	applyMu sync.Mutex

	mu            sync.Mutex
	pol           *policy.Policy // never modified once installed
	policyVersion uint64
	entries       map[string]*entry // by instance id
	lastVersion   uint64            // last snapshot version handed out
	pushPending   bool
	lastPush      time.Time
	closed        bool
}

var _ meshv1.MeshServiceServer = (*Server)(nil)

// New checks cfg, creates the policy table if needed and loads the latest
// policy version, storing cfg.InitialPolicy as version 1 when there is none.
func New(ctx context.Context, cfg Config) (*Server, error) {
	var errs []error
	if cfg.DB == nil {
		errs = append(errs, errors.New("DB is required"))
	}
	if cfg.Authority == nil {
		errs = append(errs, errors.New("Authority is required"))
	}
	if len(cfg.JoinSecret) < ca.MinJoinSecret {
		errs = append(errs, fmt.Errorf("JoinSecret must be at least %d bytes", ca.MinJoinSecret))
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = DefaultCertTTL
	}
	if cfg.CertTTL < ca.MinTTL || cfg.CertTTL > ca.MaxTTL {
		errs = append(errs, fmt.Errorf("CertTTL %s is out of range [%s, %s]", cfg.CertTTL, ca.MinTTL, ca.MaxTTL))
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.HeartbeatTimeout < 0 {
		errs = append(errs, fmt.Errorf("HeartbeatTimeout %s is negative", cfg.HeartbeatTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("controlplane: config: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("controlplane: metrics: %w", err)
	}
	if err := migrate(ctx, cfg.DB); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Log,
		store:   store{cfg.DB},
		m:       m,
		entries: map[string]*entry{},
	}
	if err := s.loadPolicy(ctx); err != nil {
		return nil, err
	}
	m.policyVersion.Set(float64(s.policyVersion))
	s.updateMetricsLocked()
	return s, nil
}

// loadPolicy installs the latest stored policy, storing the initial one
// first when the store is empty.
func (s *Server) loadPolicy(ctx context.Context) error {
	v, doc, err := s.store.latest(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		p := s.cfg.InitialPolicy
		if p == nil {
			p = policy.Default()
		}
		if doc, p, err = canonical(p); err != nil {
			return fmt.Errorf("controlplane: initial policy: %w", err)
		}
		err = s.store.insert(ctx, 1, doc, "initial", time.Now())
		if errors.Is(err, errVersionTaken) {
			// Another control plane on this database stored its own
			// first; theirs is the one in force.
			return s.loadPolicy(ctx)
		}
		if err != nil {
			return err
		}
		s.pol, s.policyVersion = p, 1
		s.log.Info("mesh policy initialised", "policy_version", 1)
		return nil
	}
	if err != nil {
		return err
	}
	p, err := policy.Parse(doc)
	if err != nil {
		return fmt.Errorf("controlplane: stored policy version %d no longer parses: %w", v, err)
	}
	s.pol, s.policyVersion = p, v
	s.log.Info("mesh policy loaded", "policy_version", v)
	return nil
}

// RegisterGRPC registers MeshService on g. The server must use TLS: join
// tokens travel in its metadata.
func (s *Server) RegisterGRPC(g *grpc.Server) {
	meshv1.RegisterMeshServiceServer(g, s)
}

// Run marks instances unhealthy when they stop heartbeating, until ctx
// ends; then it returns nil.
func (s *Server) Run(ctx context.Context) error {
	every := max(s.cfg.HeartbeatTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// Close ends every Connect stream (sidecars reconnect, to this control
// plane's successor) and refuses new ones, so that a graceful stop of the
// gRPC server does not wait on streams that never end by themselves.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, e := range s.entries {
		e.end(errShuttingDown)
	}
	return nil
}

// InstanceStatus is what the registry knows of one instance.
type InstanceStatus struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Version string `json:"version"`
	Address string `json:"address"`
	// MetricsAddress is the sidecar's admin address (its /metrics).
	MetricsAddress string `json:"metrics_address"`
	// Healthy is the instance's reported health, false as well when it was
	// not heard from within the heartbeat timeout.
	Healthy       bool      `json:"healthy"`
	ConnectedAt   time.Time `json:"connected_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// SnapshotVersion is the last snapshot sent; AckedVersion the last
	// one the sidecar applied.
	SnapshotVersion uint64 `json:"snapshot_version"`
	AckedVersion    uint64 `json:"acked_version"`
	// AckError is why the sidecar refused snapshot NackedVersion; both
	// are cleared when it applies a later one.
	AckError      string `json:"ack_error"`
	NackedVersion uint64 `json:"nacked_version,omitempty"`
}

// Instances returns the registered instances sorted by service, then id.
func (s *Server) Instances() []InstanceStatus {
	s.mu.Lock()
	out := make([]InstanceStatus, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.status())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b InstanceStatus) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Policy returns a copy of the policy in force and its version.
func (s *Server) Policy() (*policy.Policy, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pol.Clone(), s.policyVersion
}
