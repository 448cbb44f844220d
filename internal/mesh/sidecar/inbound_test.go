package sidecar

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// TestInboundRefuses covers the connections an inbound listener must
// refuse, each beside a control that the same path works with a good
// identity.
func TestInboundRefuses(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app})
	srv.apply(t, &snap{Service: "echo", Inbound: &meshv1.Inbound{Allow: []*meshv1.AllowRule{
		{Caller: "client", Methods: []string{"/file", "/grpc.health.v1.Health/*"}},
		{Caller: "reader", Methods: []string{"/grpc.health.v1.Health/Watch"}},
	}}})
	fileURL := "https://" + srv.InboundAddr() + "/file"

	// get fetches fileURL with a client certificate and reports the error,
	// or the status; the app must not have been called on error.
	get := func(t *testing.T, cert *tls.Certificate) (int, error) {
		t.Helper()
		before := app.calls.Load()
		resp, err := tlsClient(cert).Get(fileURL)
		if err != nil {
			if app.calls.Load() != before {
				t.Errorf("the app was called")
			}
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	issue := func(t *testing.T, a *ca.Authority, service string, notBefore, notAfter time.Time) *tls.Certificate {
		t.Helper()
		c, err := a.Issue(service, notBefore, notAfter)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	now := time.Now()

	t.Run("control: a valid mesh certificate is served", func(t *testing.T) {
		status, err := get(t, issue(t, m.auth, "client", now.Add(-time.Minute), now.Add(time.Hour)))
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /file with a valid certificate = %d, %v; want 200", status, err)
		}
	})

	t.Run("plaintext client", func(t *testing.T) {
		before := app.calls.Load()
		conn, err := grpc.NewClient("passthrough:///"+srv.InboundAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		mustStatus(t, err, codes.Unavailable, "")
		// Plain HTTP/1.1 gets Go's TLS server's canned 400, never the app.
		resp, err := http.Get("http://" + srv.InboundAddr() + "/file")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plaintext GET = %d, want a failure or 400", resp.StatusCode)
			}
		}
		if app.calls.Load() != before {
			t.Errorf("the app was called by a plaintext client")
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		if _, err := get(t, nil); err == nil {
			t.Fatal("request without a client certificate succeeded")
		}
	})

	t.Run("certificate from another authority", func(t *testing.T) {
		other, err := ca.NewInMemory()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := get(t, issue(t, other, "client", now.Add(-time.Minute), now.Add(time.Hour))); err == nil {
			t.Fatal("request with a certificate from another authority succeeded")
		}
	})

	t.Run("expired certificate", func(t *testing.T) {
		if _, err := get(t, issue(t, m.auth, "client", now.Add(-2*time.Hour), now.Add(-time.Hour))); err == nil {
			t.Fatal("request with an expired certificate succeeded")
		}
	})

	t.Run("identity not allowed", func(t *testing.T) {
		before := app.calls.Load()
		intruder := m.start("intruder", sidecarOpts{})
		intruder.apply(t, &snap{Service: "intruder", Destinations: []*meshv1.Destination{
			{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})
		hdr, trl, err := check(context.Background(), healthpb.NewHealthClient(dialOutbound(t, intruder, "echo")), svcOK)
		mustStatus(t, err, codes.PermissionDenied, "mesh: denied by policy: intruder may not call /grpc.health.v1.Health/Check")
		if got := meshErrorOf(hdr, trl); got != "denied" {
			t.Errorf("x-marquee-mesh-error = %q, want denied", got)
		}
		if app.calls.Load() != before {
			t.Errorf("the app was called by a caller the policy does not allow")
		}
		if got := metric(t, srv.reg, "marquee_mesh_requests_total", map[string]string{
			"direction": "inbound", "source": "intruder", "code": "PERMISSION_DENIED"}); got != 1 {
			t.Errorf("inbound PERMISSION_DENIED from intruder = %v, want 1", got)
		}
	})

	t.Run("method not allowed", func(t *testing.T) {
		reader := m.start("reader", sidecarOpts{})
		reader.apply(t, &snap{Service: "reader", Destinations: []*meshv1.Destination{
			{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})
		hc := healthpb.NewHealthClient(dialOutbound(t, reader, "echo"))
		_, _, err := check(context.Background(), hc, svcOK)
		mustStatus(t, err, codes.PermissionDenied, "mesh: denied by policy: reader may not call /grpc.health.v1.Health/Check")
		// Its one allowed method goes through.
		stream, err := hc.Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("allowed Watch: %v", err)
		}
	})
}

func TestInboundNotReadyBeforeSnapshot(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app})
	if srv.Ready() {
		t.Fatal("Ready before any snapshot")
	}
	cli := m.start("client", sidecarOpts{})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{
		{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})
	hc := healthpb.NewHealthClient(dialOutbound(t, cli, "echo"))
	hdr, trl, err := check(context.Background(), hc, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: sidecar not ready")
	if got := meshErrorOf(hdr, trl); got != "not_ready" {
		t.Errorf("x-marquee-mesh-error = %q, want not_ready", got)
	}
	if app.calls.Load() != 0 {
		t.Error("the app was called before its sidecar was ready")
	}
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	if !srv.Ready() {
		t.Fatal("not Ready after a snapshot")
	}
	if _, _, err := check(context.Background(), hc, svcOK); err != nil {
		t.Fatal(err)
	}
}

func TestInboundGRPCOnlyApp(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app, noHTTP: true})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	cert, err := m.auth.Issue("client", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tlsClient(&cert).Get("https://" + srv.InboundAddr() + "/file")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || resp.Header.Get("X-Marquee-Mesh-Error") != "unsupported" {
		t.Errorf("HTTP request to a gRPC-only app = %d %q, want 501 unsupported", resp.StatusCode, resp.Header.Get("X-Marquee-Mesh-Error"))
	}
}
