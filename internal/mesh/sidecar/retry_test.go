package sidecar

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

func TestRetryUnavailable(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Retries = &meshv1.RetryPolicy{Attempts: 2, RetryOn: []string{"unavailable"}, BudgetPercent: 20, MinRetriesConcurrent: 3}
	})
	if _, _, err := check(context.Background(), pr.health, svcFailOnce); err != nil {
		t.Fatalf("call failing once, with retries: %v", err)
	}
	if got := pr.app.calls.Load(); got != 2 {
		t.Errorf("app calls = %d, want 2", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_retries_total", map[string]string{"destination": "echo"}); got != 1 {
		t.Errorf("retries_total = %v, want 1", got)
	}
}

func TestRetryBudgetZero(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Retries = &meshv1.RetryPolicy{Attempts: 2, RetryOn: []string{"unavailable"}, BudgetPercent: 0, MinRetriesConcurrent: 0}
	})
	_, _, err := check(context.Background(), pr.health, svcFailOnce)
	// The application's own answer, passed through.
	mustStatus(t, err, codes.Unavailable, "app: not yet")
	if got := pr.app.calls.Load(); got != 1 {
		t.Errorf("app calls = %d, want 1", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_retries_total", map[string]string{"destination": "echo"}); got != 0 {
		t.Errorf("retries_total = %v, want 0", got)
	}
}

func TestRetryNotConfiguredFailure(t *testing.T) {
	// "reset" is retried, but UNAVAILABLE is not named.
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Retries = &meshv1.RetryPolicy{Attempts: 2, RetryOn: []string{"reset"}, MinRetriesConcurrent: 5}
	})
	_, _, err := check(context.Background(), pr.health, svcFailOnce)
	mustStatus(t, err, codes.Unavailable, "app: not yet")
}

// resetFirst listens in front of target: it resets the first connection
// before any byte, and relays later ones.
func resetFirst(t *testing.T, target string) string {
	t.Helper()
	ln := listen(t)
	t.Cleanup(func() { ln.Close() })
	var first atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if first.CompareAndSwap(false, true) {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRetryReset(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	front := resetFirst(t, srv.InboundAddr())
	cli := m.start("client", sidecarOpts{})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{{
		Service:   "echo",
		Endpoints: []*meshv1.Endpoint{{InstanceId: "echo-1", Address: front, Version: "v1", Healthy: true}},
		Retries:   &meshv1.RetryPolicy{Attempts: 1, RetryOn: []string{"reset"}, MinRetriesConcurrent: 1},
	}}})
	hc := healthpb.NewHealthClient(dialOutbound(t, cli, "echo"))
	if _, _, err := check(context.Background(), hc, svcOK); err != nil {
		t.Fatalf("call whose first connection is reset, with retries: %v", err)
	}
	if got := metric(t, cli.reg, "marquee_mesh_retries_total", map[string]string{"destination": "echo"}); got != 1 {
		t.Errorf("retries_total = %v, want 1", got)
	}
}

func TestResetWithoutRetry(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Endpoints[0].Address = closedPort(t)
	})
	hdr, trl, err := check(context.Background(), pr.health, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: upstream reset calling echo")
	if got := meshErrorOf(hdr, trl); got != "upstream_reset" {
		t.Errorf("x-marquee-mesh-error = %q, want upstream_reset", got)
	}
}

// closedPort returns an address where nothing listens.
func closedPort(t *testing.T) string {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOutlierEjection(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Endpoints = append(d.Endpoints, &meshv1.Endpoint{InstanceId: "echo-dead", Address: closedPort(t), Version: "v1", Healthy: true})
		d.Retries = &meshv1.RetryPolicy{Attempts: 1, RetryOn: []string{"reset"}, MinRetriesConcurrent: 10}
		d.Outlier = &meshv1.OutlierDetection{ConsecutiveErrors: 2, BaseEjection: dur(time.Minute), MaxEjectionPercent: 50}
	})
	for i := range 100 {
		if _, _, err := check(context.Background(), pr.health, svcOK); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_ejections_total", map[string]string{"destination": "echo"}); got != 1 {
		t.Errorf("ejections_total = %v, want 1", got)
	}
	// Once ejected, the dead endpoint gets nothing: no more retries.
	retries := metric(t, pr.client.reg, "marquee_mesh_retries_total", nil)
	if retries < 2 || retries > 10 {
		t.Errorf("retries_total = %v, want the few before the ejection", retries)
	}
	for range 50 {
		if _, _, err := check(context.Background(), pr.health, svcOK); err != nil {
			t.Fatal(err)
		}
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_retries_total", nil); got != retries {
		t.Errorf("retries_total went from %v to %v after the ejection", retries, got)
	}
}

func TestOutlierNeverEjectsTheLastEndpoint(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Endpoints[0].Address = closedPort(t)
		d.Outlier = &meshv1.OutlierDetection{ConsecutiveErrors: 1, MaxEjectionPercent: 100}
	})
	for range 5 {
		_, _, err := check(context.Background(), pr.health, svcOK)
		mustStatus(t, err, codes.Unavailable, "mesh: upstream reset")
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_ejections_total", nil); got != 0 {
		t.Errorf("ejections_total = %v, want 0 (a lone endpoint stays)", got)
	}
}

func TestPickUnit(t *testing.T) {
	a, b, c := &endpoint{addr: "a"}, &endpoint{addr: "b"}, &endpoint{addr: "c"}
	now := time.Now().UnixNano()
	a.inflight.Store(5)
	b.inflight.Store(1)
	c.ejectedUntil.Store(now + int64(time.Hour))
	// With c ejected, the two choices are a and b: b has fewer requests.
	for range 100 {
		if got := pick([]*endpoint{a, b, c}, nil, now); got != b {
			t.Fatalf("pick = %s, want b", got.addr)
		}
	}
	// Avoiding b leaves a.
	if got := pick([]*endpoint{a, b, c}, b, now); got != a {
		t.Fatalf("pick avoiding b = %s, want a", got.addr)
	}
	// All ejected: still an answer.
	a.ejectedUntil.Store(now + int64(time.Hour))
	b.ejectedUntil.Store(now + int64(time.Hour))
	if got := pick([]*endpoint{a, b, c}, nil, now); got == nil {
		t.Fatal("pick with all ejected = nil")
	}
}

func TestReplayBody(t *testing.T) {
	src := io.NopCloser(&chunky{data: []byte("hello, replay"), chunk: 4})
	rb := newReplayBody(src)
	first := rb.reader()
	buf := make([]byte, 5)
	n, _ := first.Read(buf)
	if string(buf[:n]) != "hell" {
		t.Fatalf("first read = %q", buf[:n])
	}
	first.Close()
	if !rb.replayable() {
		t.Fatal("not replayable after a small read")
	}
	got, err := io.ReadAll(rb.reader())
	if err != nil || string(got) != "hello, replay" {
		t.Fatalf("replay = %q, %v", got, err)
	}
	if _, err := first.Read(buf); err == nil {
		t.Fatal("closed reader still reads")
	}

	big := newReplayBody(io.NopCloser(&chunky{data: make([]byte, maxReplay+10), chunk: 4096}))
	if _, err := io.Copy(io.Discard, big.reader()); err != nil {
		t.Fatal(err)
	}
	if big.replayable() {
		t.Fatal("replayable beyond maxReplay")
	}
	if _, err := io.ReadAll(big.reader()); err != errReplayLost {
		t.Fatalf("replay beyond maxReplay: %v, want errReplayLost", err)
	}
}

// chunky reads data a chunk at a time.
type chunky struct {
	data  []byte
	chunk int
}

func (c *chunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}
