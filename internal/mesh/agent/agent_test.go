package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/agent"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
	"github.com/marquee-tv/marquee/internal/mesh/policy"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const testPolicy = `
services:
  catalog:
    allow:
      - from: profiles
        methods: ["*"]
`

// controlPlane is a real control plane over TLS on 127.0.0.1.
type controlPlane struct {
	srv  *controlplane.Server
	auth *ca.Authority
	addr string
	stop func()
}

func startControlPlane(t *testing.T, db *storage.DB, addr string) *controlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	auth, err := ca.Open(ctx, db)
	if err != nil {
		t.Fatalf("ca.Open: %v", err)
	}
	pol, err := policy.Parse([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := controlplane.New(ctx, controlplane.Config{DB: db, Authority: auth, JoinSecret: secret, InitialPolicy: pol, Log: quietLog()})
	if err != nil {
		t.Fatalf("controlplane.New: %v", err)
	}
	serving, err := auth.ServingCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A restarted control plane takes its predecessor's port.
		lis, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serving}})))
	srv.RegisterGRPC(g)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); g.Serve(lis) }()
	go func() { defer wg.Done(); srv.Run(ctx) }()
	var once sync.Once
	c := &controlPlane{srv: srv, auth: auth, addr: lis.Addr().String()}
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func baseConfig(addr string, roots *x509.CertPool) agent.Config {
	return agent.Config{
		ControlPlane:      addr,
		Token:             ca.JoinToken(secret, "catalog"),
		TLS:               &tls.Config{RootCAs: roots},
		Instance:          &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7000"},
		HeartbeatInterval: 20 * time.Millisecond,
		Apply:             func(*meshv1.Snapshot) error { return nil },
		Log:               quietLog(),
	}
}

// run runs a's Run until the test ends.
func run(t *testing.T, a *agent.Agent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestNewChecksConfig(t *testing.T) {
	good := baseConfig("127.0.0.1:1", x509.NewCertPool())
	tests := []struct {
		name   string
		change func(*agent.Config)
		want   string
	}{
		{"no control plane", func(c *agent.Config) { c.ControlPlane = "" }, "ControlPlane"},
		{"no port", func(c *agent.Config) { c.ControlPlane = "localhost" }, "ControlPlane"},
		{"no TLS", func(c *agent.Config) { c.TLS = nil }, "TLS is required"},
		{"no instance", func(c *agent.Config) { c.Instance = nil }, "Instance is required"},
		{"no id", func(c *agent.Config) { c.Instance = &meshv1.Instance{Service: "catalog"} }, "Instance.Id"},
		{"no token", func(c *agent.Config) { c.Token = "" }, "SERVICE.TOKEN"},
		{"other service's token", func(c *agent.Config) { c.Token = ca.JoinToken(secret, "billing") }, `for service "billing"`},
		{"no apply", func(c *agent.Config) { c.Apply = nil }, "Apply"},
		{"negative interval", func(c *agent.Config) { c.HeartbeatInterval = -time.Second }, "HeartbeatInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Instance = &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1"}
			tt.change(&cfg)
			_, err := agent.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.want)
			}
			if _, mac, ok := strings.Cut(cfg.Token, "."); ok && strings.Contains(err.Error(), mac) {
				t.Errorf("error %q quotes the token", err)
			}
		})
	}
	a, err := agent.New(good)
	if err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	a.Close()
}

func newCSR(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestIssue(t *testing.T) {
	c := startControlPlane(t, storagetest.OpenSQLite(t, "controlplane", storage.Migrations{}), "127.0.0.1:0")
	a, err := agent.New(baseConfig(c.addr, c.auth.Roots()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var issue ca.IssueFunc = a.Issue
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	certDER, roots, err := issue(ctx, newCSR(t))
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	if svc, err := ca.ServiceOf(cert); err != nil || svc != "catalog" {
		t.Errorf("certificate is for %q, %v; want catalog", svc, err)
	}
	if len(roots) != 1 || string(roots[0]) != string(c.auth.RootDER()) {
		t.Errorf("trust bundle is not the mesh root")
	}

	cfg := baseConfig(c.addr, c.auth.Roots())
	cfg.Token = ca.JoinToken([]byte("another secret, not the mesh's"), "catalog")
	bad, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, _, err := bad.Issue(ctx, newCSR(t)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Issue with a forged token: %v, want Unauthenticated", err)
	}

	// A control plane whose certificate the agent cannot verify gets no
	// token: the call fails in the handshake.
	cfg = baseConfig(c.addr, x509.NewCertPool())
	untrusting, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	if _, _, err := untrusting.Issue(short, newCSR(t)); err == nil {
		t.Fatal("Issue against an unverifiable control plane succeeded")
	}
}

func TestRunWaitsReconnectsAndAcks(t *testing.T) {
	db := storagetest.OpenSQLite(t, "controlplane", storage.Migrations{})
	first := startControlPlane(t, db, "127.0.0.1:0")
	addr, roots := first.addr, first.auth.Roots()
	first.stop()

	var healthy atomic.Bool
	healthy.Store(true)
	var refuse atomic.Bool
	var applied atomic.Int64
	cfg := baseConfig(addr, roots)
	cfg.Health = func(context.Context) bool { return healthy.Load() }
	cfg.Apply = func(s *meshv1.Snapshot) error {
		if s.GetService() != "catalog" {
			t.Errorf("applied a snapshot for %q", s.GetService())
		}
		if refuse.Load() {
			return errors.New("refused by the test")
		}
		applied.Add(1)
		return nil
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refuse.Store(true)
	run(t, a)

	// No control plane yet: the agent keeps trying.
	c := startControlPlane(t, db, addr)
	waitFor(t, "the refusal to be recorded", func() bool {
		ins := c.srv.Instances()
		return len(ins) == 1 && ins[0].AckError == "refused by the test"
	})
	select {
	case <-a.Synced():
		t.Fatal("Synced closed though every snapshot was refused")
	default:
	}
	refuse.Store(false)
	// The next change of catalog's view (it may now call profiles) is
	// applied.
	pol, err := policy.Parse([]byte(testPolicy + "  profiles:\n    allow:\n      - from: catalog\n        methods: [\"*\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.srv.ApplyPolicy(context.Background(), pol, "test"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "Synced", a.Synced())
	waitFor(t, "the ack to clear the error", func() bool {
		ins := c.srv.Instances()
		return len(ins) == 1 && ins[0].AckError == "" && ins[0].AckedVersion == ins[0].SnapshotVersion
	})

	healthy.Store(false)
	waitFor(t, "the control plane to see the instance unhealthy", func() bool {
		ins := c.srv.Instances()
		return len(ins) == 1 && !ins[0].Healthy
	})
	healthy.Store(true)

	// The control plane restarts: the agent comes back by itself.
	c.stop()
	before := applied.Load()
	c2 := startControlPlane(t, db, addr)
	waitFor(t, "the agent to register with the new control plane", func() bool {
		ins := c2.srv.Instances()
		return len(ins) == 1 && ins[0].Healthy && ins[0].AckedVersion != 0
	})
	if applied.Load() <= before {
		t.Error("no snapshot applied after the restart")
	}
}

func TestRunEndsWithItsContextAndLeaves(t *testing.T) {
	c := startControlPlane(t, storagetest.OpenSQLite(t, "controlplane", storage.Migrations{}), "127.0.0.1:0")
	a, err := agent.New(baseConfig(c.addr, c.auth.Roots()))
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a)
	waitClosed(t, "Synced", a.Synced())
	waitFor(t, "registration", func() bool { return len(c.srv.Instances()) == 1 })
	stop()
	waitFor(t, "the instance to leave", func() bool { return len(c.srv.Instances()) == 0 })
}
