// Package agent is the sidecar's client of the mesh control plane: it
// obtains workload certificates (Issue, for the ca package's rotating
// holder), keeps the instance registered over a Connect stream with
// heartbeats carrying the application's health, hands every configuration
// snapshot to the proxy and acknowledges it, and reconnects by itself when
// the stream breaks or the control plane restarts.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// Defaults and bounds of the reconnect loop.
const (
	DefaultHeartbeatInterval = 2 * time.Second
	minBackoff               = 100 * time.Millisecond
	maxBackoff               = 5 * time.Second
)

// Config is what an Agent needs.
type Config struct {
	// ControlPlane is the host:port of the MeshService gRPC server.
	ControlPlane string
	// Token is the sidecar's join token, "SERVICE.TOKEN".
	Token string
	// TLS verifies the control plane (RootCAs: the mesh root). Required:
	// the join token must not travel in the clear.
	TLS *tls.Config
	// Instance is what the sidecar announces; its Healthy field is ignored
	// (Health says).
	Instance *meshv1.Instance
	// Health reports the application's readiness; it is polled every
	// HeartbeatInterval. Nil means always healthy.
	Health func(ctx context.Context) bool
	// HeartbeatInterval is the period of heartbeats; zero means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Apply installs a snapshot (the proxy's Apply). An error refuses it:
	// the proxy keeps the previous one and the control plane is told why.
	// It is called from one goroutine at a time.
	Apply func(*meshv1.Snapshot) error
	// Log receives the agent's logs; nil means slog.Default().
	Log *slog.Logger
}

// Agent is one sidecar's connection to the control plane.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	conn   *grpc.ClientConn
	client meshv1.MeshServiceClient

	syncOnce sync.Once
	synced   chan struct{}
}

// New checks cfg and prepares the connection; nothing is dialled until
// Issue or Run.
func New(cfg Config) (*Agent, error) {
	var errs []error
	if _, _, err := net.SplitHostPort(cfg.ControlPlane); err != nil {
		errs = append(errs, fmt.Errorf("ControlPlane %q is not host:port", cfg.ControlPlane))
	}
	if cfg.TLS == nil {
		errs = append(errs, errors.New("TLS is required: the join token must not travel in the clear"))
	}
	if cfg.Instance == nil {
		errs = append(errs, errors.New("Instance is required"))
	} else {
		if cfg.Instance.GetId() == "" {
			errs = append(errs, errors.New("Instance.Id is required"))
		}
		if cfg.Instance.GetService() == "" {
			errs = append(errs, errors.New("Instance.Service is required"))
		}
	}
	service, _, ok := strings.Cut(cfg.Token, ".")
	switch {
	case !ok || service == "":
		errs = append(errs, errors.New("Token must be a join token SERVICE.TOKEN"))
	case cfg.Instance != nil && service != cfg.Instance.GetService():
		// Only the service part is quoted: it is no secret.
		errs = append(errs, fmt.Errorf("Token is for service %q, but the instance is of %q", service, cfg.Instance.GetService()))
	}
	if cfg.Apply == nil {
		errs = append(errs, errors.New("Apply is required"))
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("HeartbeatInterval %s is negative", cfg.HeartbeatInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent: config: %w", err)
	}
	if cfg.Health == nil {
		cfg.Health = func(context.Context) bool { return true }
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Instance = proto.CloneOf(cfg.Instance)
	conn, err := grpc.NewClient(cfg.ControlPlane,
		grpc.WithTransportCredentials(credentials.NewTLS(cfg.TLS)),
		grpc.WithPerRPCCredentials(joinToken(cfg.Token)),
		// The default channel backoff grows to two minutes; a restarted
		// control plane should see its sidecars back within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: minBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxBackoff},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("agent: control plane %s: %w", cfg.ControlPlane, err)
	}
	return &Agent{
		cfg:    cfg,
		log:    cfg.Log.With("control_plane", cfg.ControlPlane, "instance", cfg.Instance.GetId()),
		conn:   conn,
		client: meshv1.NewMeshServiceClient(conn),
		synced: make(chan struct{}),
	}, nil
}

// joinToken sends the join token with every call, over TLS only.
type joinToken string

var _ credentials.PerRPCCredentials = joinToken("")

func (t joinToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (joinToken) RequireTransportSecurity() bool { return true }

// Issue asks the control plane to sign csrDER and returns the certificate
// and the trust bundle (DER). It waits for the control plane to be
// reachable until ctx ends. It has the signature of ca.IssueFunc.
func (a *Agent) Issue(ctx context.Context, csrDER []byte) ([]byte, [][]byte, error) {
	resp, err := a.client.Certify(ctx, &meshv1.CertifyRequest{Csr: csrDER}, grpc.WaitForReady(true))
	if err != nil {
		return nil, nil, fmt.Errorf("agent: certify: %w", err)
	}
	if len(resp.GetCertificate()) == 0 || len(resp.GetTrustBundle()) == 0 {
		return nil, nil, errors.New("agent: certify: the control plane answered without a certificate or trust bundle")
	}
	return resp.GetCertificate(), resp.GetTrustBundle(), nil
}

// Synced is closed once the first snapshot was applied.
func (a *Agent) Synced() <-chan struct{} { return a.synced }

// Close closes the connection to the control plane; Run and Issue fail
// afterwards.
func (a *Agent) Close() error { return a.conn.Close() }
