package controlplane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/agent"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
	"github.com/marquee-tv/marquee/internal/mesh/policy"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// testPolicy lets profiles call catalog and the gateway call profiles.
const testPolicy = `
services:
  catalog:
    allow:
      - from: profiles
        methods: ["*"]
    timeout: 2s
  profiles:
    allow:
      - from: gateway
        methods: ["/marquee.profiles.v1.ProfilesService/*"]
`

func mustPolicy(t testing.TB, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("policy.Parse: %v", err)
	}
	return p
}

var secret = []byte("0123456789abcdef0123456789abcdef")

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cp is a control plane serving MeshService over TLS on 127.0.0.1.
type cp struct {
	srv  *controlplane.Server
	auth *ca.Authority
	addr string
	g    *grpc.Server
	stop func()
}

type cpOption func(*controlplane.Config)

// startCP starts a control plane on db, listening on addr ("127.0.0.1:0"
// for a fresh port), stopped at cleanup unless stopped before.
func startCP(t testing.TB, db *storage.DB, addr string, opts ...cpOption) *cp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	auth, err := ca.Open(ctx, db)
	if err != nil {
		t.Fatalf("ca.Open: %v", err)
	}
	cfg := controlplane.Config{
		DB: db, Authority: auth, JoinSecret: secret,
		InitialPolicy: mustPolicy(t, testPolicy),
		Log:           quietLog(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := controlplane.New(ctx, cfg)
	if err != nil {
		t.Fatalf("controlplane.New: %v", err)
	}
	serving, err := auth.ServingCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatalf("ServingCertificate: %v", err)
	}
	var lis net.Listener
	// A restarted control plane takes its predecessor's port, which the
	// kernel may hold a moment longer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		lis, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serving}, MinVersion: tls.VersionTLS13})))
	srv.RegisterGRPC(g)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); g.Serve(lis) }()
	go func() { defer wg.Done(); srv.Run(ctx) }()
	var once sync.Once
	c := &cp{srv: srv, auth: auth, addr: lis.Addr().String(), g: g}
	c.stop = func() {
		once.Do(func() {
			srv.Close()
			g.Stop()
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(c.stop)
	return c
}

func (c *cp) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: c.auth.Roots(), MinVersion: tls.VersionTLS13}
}

// dial returns a raw MeshService client presenting token ("" for none).
func (c *cp) dial(t testing.TB, token string) meshv1.MeshServiceClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(c.clientTLS()))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return meshv1.NewMeshServiceClient(conn)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return true }

// recorder is a sidecar's Apply: it keeps every snapshot and can refuse.
type recorder struct {
	mu     sync.Mutex
	snaps  []*meshv1.Snapshot
	refuse func(*meshv1.Snapshot) error
}

func (r *recorder) apply(s *meshv1.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, proto.CloneOf(s))
	if r.refuse != nil {
		return r.refuse(s)
	}
	return nil
}

func (r *recorder) setRefuse(f func(*meshv1.Snapshot) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = f
}

func (r *recorder) last() *meshv1.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return nil
	}
	return r.snaps[len(r.snaps)-1]
}

func (r *recorder) all() []*meshv1.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*meshv1.Snapshot(nil), r.snaps...)
}

// sidecar is a running agent with its recorder and health switch.
type sidecar struct {
	agent   *agent.Agent
	rec     *recorder
	healthy chan bool // capacity 1: the current health
	stop    func()
}

func (s *sidecar) setHealthy(h bool) {
	<-s.healthy
	s.healthy <- h
}

// startSidecar runs an agent for instance id of service against c.
func startSidecar(t testing.TB, c *cp, service, id, version, address string) *sidecar {
	t.Helper()
	sc := &sidecar{rec: &recorder{}, healthy: make(chan bool, 1)}
	sc.healthy <- true
	a, err := agent.New(agent.Config{
		ControlPlane: c.addr,
		Token:        ca.JoinToken(secret, service),
		TLS:          c.clientTLS(),
		Instance:     &meshv1.Instance{Id: id, Service: service, Version: version, Address: address},
		Health: func(context.Context) bool {
			h := <-sc.healthy
			sc.healthy <- h
			return h
		},
		HeartbeatInterval: 20 * time.Millisecond,
		Apply:             sc.rec.apply,
		Log:               quietLog(),
	})
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	sc.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	var once sync.Once
	sc.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			a.Close()
		})
	}
	t.Cleanup(sc.stop)
	return sc
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// destination returns the destination named service in snap, or nil.
func destination(snap *meshv1.Snapshot, service string) *meshv1.Destination {
	for _, d := range snap.GetDestinations() {
		if d.GetService() == service {
			return d
		}
	}
	return nil
}

// endpoint returns the endpoint of instance id toward service in snap.
func endpoint(snap *meshv1.Snapshot, service, id string) *meshv1.Endpoint {
	for _, e := range destination(snap, service).GetEndpoints() {
		if e.GetInstanceId() == id {
			return e
		}
	}
	return nil
}

// newCSR returns a P-256 certificate request that asks for names it must
// not get.
func newCSR(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{"billing.evil.example"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func sqliteDB(t testing.TB) *storage.DB {
	return storagetest.OpenSQLite(t, "controlplane", storage.Migrations{})
}

// statusByID returns the registry entry of instance id.
func statusByID(srv *controlplane.Server, id string) (controlplane.InstanceStatus, bool) {
	for _, st := range srv.Instances() {
		if st.ID == id {
			return st, true
		}
	}
	return controlplane.InstanceStatus{}, false
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
