package controlplane_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
)

func TestCertifyIssuesForTheTokensServiceOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := startCP(t, sqliteDB(t), "127.0.0.1:0", func(cfg *controlplane.Config) { cfg.Registerer = reg })
	ctx := context.Background()
	resp, err := c.dial(t, ca.JoinToken(secret, "catalog")).Certify(ctx, &meshv1.CertifyRequest{Csr: newCSR(t)})
	if err != nil {
		t.Fatalf("Certify: %v", err)
	}
	cert, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://marquee.local/svc/catalog" {
		t.Errorf("URI SANs = %v, want [spiffe://marquee.local/svc/catalog]", cert.URIs)
	}
	if len(cert.DNSNames) != 0 {
		t.Errorf("DNS SANs = %v, want none (the request's names are ignored)", cert.DNSNames)
	}
	if got, want := resp.GetNotAfter().AsTime(), cert.NotAfter; !got.Equal(want) {
		t.Errorf("not_after = %v, want the certificate's %v", got, want)
	}
	if ttl := time.Until(cert.NotAfter); ttl < 50*time.Minute || ttl > 61*time.Minute {
		t.Errorf("certificate lifetime = %v, want the default hour", ttl)
	}
	if len(resp.GetTrustBundle()) != 1 {
		t.Fatalf("trust bundle has %d certificates, want the root", len(resp.GetTrustBundle()))
	}
	roots := x509.NewCertPool()
	root, err := x509.ParseCertificate(resp.GetTrustBundle()[0])
	if err != nil {
		t.Fatal(err)
	}
	roots.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not verify against the trust bundle: %v", err)
	}
	if svc, err := ca.ServiceOf(cert); err != nil || svc != "catalog" {
		t.Errorf("ca.ServiceOf = %q, %v; want catalog", svc, err)
	}
	if got := metricValue(t, reg, "marquee_mesh_certificates_issued_total", map[string]string{"service": "catalog"}); got != 1 {
		t.Errorf("marquee_mesh_certificates_issued_total{service=catalog} = %v, want 1", got)
	}
}

func TestCertifyRefusesBadTokens(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	good := ca.JoinToken(secret, "catalog")
	_, mac, _ := strings.Cut(ca.JoinToken(secret, "profiles"), ".")
	otherSecret := []byte("fedcba9876543210fedcba9876543210")
	tests := []struct {
		name, token string
	}{
		{"missing", ""},
		{"garbage", "not-a-token"},
		{"other service's mac", "catalog." + mac},
		{"other secret", ca.JoinToken(otherSecret, "catalog")},
		{"truncated", good[:len(good)-3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.dial(t, tt.token).Certify(context.Background(), &meshv1.CertifyRequest{Csr: newCSR(t)})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("Certify with %s token: %v, want Unauthenticated", tt.name, err)
			}
			if _, tok, ok := strings.Cut(tt.token, "."); ok && strings.Contains(status.Convert(err).Message(), tok) {
				t.Errorf("error message %q echoes the token", status.Convert(err).Message())
			}
			if status.Convert(err).Message() == "" {
				t.Error("error has no message")
			}
		})
	}
}

func TestCertifyRefusesBadRequests(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	client := c.dial(t, ca.JoinToken(secret, "catalog"))
	for name, csr := range map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("not a certificate request"),
		"too big":  make([]byte, 20<<10),
		"tampered": func() []byte { b := newCSR(t); b[len(b)-5] ^= 0xff; return b }(),
	} {
		_, err := client.Certify(context.Background(), &meshv1.CertifyRequest{Csr: csr})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Certify(%s csr) = %v, want InvalidArgument", name, err)
		}
	}
}

func TestConnectRefusesAnotherServicesHello(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	err := helloErr(t, c, ca.JoinToken(secret, "catalog"), &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{
		Instance: &meshv1.Instance{Id: "profiles-1", Service: "profiles", Version: "v1", Address: "127.0.0.1:7001"},
	}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("hello as profiles with a catalog token: %v, want PermissionDenied", err)
	}
	if len(c.srv.Instances()) != 0 {
		t.Errorf("registry = %v, want empty", c.srv.Instances())
	}
}

func TestConnectRefusesBadHellos(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	token := ca.JoinToken(secret, "catalog")
	hello := func(id, version, address string) *meshv1.ConnectRequest {
		return &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{
			Instance: &meshv1.Instance{Id: id, Service: "catalog", Version: version, Address: address},
		}}}
	}
	tests := []struct {
		name  string
		first *meshv1.ConnectRequest
		want  codes.Code
	}{
		{"heartbeat first", &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Heartbeat{Heartbeat: &meshv1.Heartbeat{Healthy: true}}}, codes.InvalidArgument},
		{"no instance", &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{}}}, codes.InvalidArgument},
		{"empty id", hello("", "v1", "127.0.0.1:7000"), codes.InvalidArgument},
		{"upper-case id", hello("Catalog-1", "v1", "127.0.0.1:7000"), codes.InvalidArgument},
		{"long id", hello(strings.Repeat("a", 64), "v1", "127.0.0.1:7000"), codes.InvalidArgument},
		{"no version", hello("catalog-1", "", "127.0.0.1:7000"), codes.InvalidArgument},
		{"bad version", hello("catalog-1", "1 0", "127.0.0.1:7000"), codes.InvalidArgument},
		{"no port", hello("catalog-1", "v1", "127.0.0.1"), codes.InvalidArgument},
		{"port zero", hello("catalog-1", "v1", "127.0.0.1:0"), codes.InvalidArgument},
		{"port too big", hello("catalog-1", "v1", "127.0.0.1:70000"), codes.InvalidArgument},
		{"bad host", hello("catalog-1", "v1", "cat/alog:7000"), codes.InvalidArgument},
		{"empty host", hello("catalog-1", "v1", ":7000"), codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := helloErr(t, c, token, tt.first)
			if status.Code(err) != tt.want {
				t.Fatalf("Connect: %v, want %v", err, tt.want)
			}
		})
	}
	if err := helloErr(t, c, "", hello("catalog-1", "v1", "127.0.0.1:7000")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Connect without a token: %v, want Unauthenticated", err)
	}
}

// helloErr opens a stream, sends first and returns the error the stream
// ends with (nil when a snapshot arrives instead).
func helloErr(t *testing.T, c *cp, token string, first *meshv1.ConnectRequest) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := c.dial(t, token).Connect(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(first); err != nil {
		_, err = stream.Recv()
		return err
	}
	_, err = stream.Recv()
	return err
}

// rawSidecar is a hand-driven Connect stream.
type rawSidecar struct {
	stream meshv1.MeshService_ConnectClient
	cancel context.CancelFunc
}

func connectRaw(t *testing.T, c *cp, inst *meshv1.Instance) *rawSidecar {
	t.Helper()
	// The deadline turns a snapshot that never comes into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	stream, err := c.dial(t, ca.JoinToken(secret, inst.GetService())).Connect(ctx)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := stream.Send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{Instance: inst}}}); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	return &rawSidecar{stream: stream, cancel: cancel}
}

func (r *rawSidecar) recv(t *testing.T) *meshv1.Snapshot {
	t.Helper()
	resp, err := r.stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return resp.GetSnapshot()
}

func TestFirstSnapshotComesAtOnceAndAcksAreChecked(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	r := connectRaw(t, c, &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7000", Healthy: true})
	snap := r.recv(t)
	if snap.GetService() != "catalog" || snap.GetVersion() == 0 || snap.GetPolicyVersion() != 1 {
		t.Fatalf("first snapshot = %v, want catalog's with a version and policy_version 1", snap)
	}
	if got := snap.GetInbound().GetAllow(); len(got) != 1 || got[0].GetCaller() != "profiles" {
		t.Errorf("inbound allow = %v, want profiles", got)
	}
	if err := r.stream.Send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Ack{Ack: &meshv1.Ack{Version: snap.GetVersion()}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ack to be recorded", func() bool {
		st, _ := statusByID(c.srv, "catalog-1")
		return st.AckedVersion == snap.GetVersion() && st.SnapshotVersion == snap.GetVersion()
	})
	// An ack of a snapshot never sent ends the stream.
	if err := r.stream.Send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Ack{Ack: &meshv1.Ack{Version: snap.GetVersion() + 1000}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.stream.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("after a bogus ack: %v, want InvalidArgument", err)
	}
	waitFor(t, "the instance to leave", func() bool { return len(c.srv.Instances()) == 0 })
}

func TestSilentInstanceTurnsUnhealthy(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0", func(cfg *controlplane.Config) { cfg.HeartbeatTimeout = 200 * time.Millisecond })
	cat := connectRaw(t, c, &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7000", Healthy: true})
	cat.recv(t)
	prof := connectRaw(t, c, &meshv1.Instance{Id: "profiles-1", Service: "profiles", Version: "v1", Address: "127.0.0.1:7001", Healthy: true})
	// catalog sends nothing more: profiles must see it turn unhealthy.
	var got *meshv1.Endpoint
	for {
		got = endpoint(prof.recv(t), "catalog", "catalog-1")
		if got != nil && !got.GetHealthy() {
			break
		}
	}
	if st, ok := statusByID(c.srv, "catalog-1"); !ok || st.Healthy {
		t.Errorf("registry entry = %+v, %v; want present and unhealthy", st, ok)
	}
	// A heartbeat brings it back.
	if err := cat.stream.Send(&meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Heartbeat{Heartbeat: &meshv1.Heartbeat{Healthy: true}}}); err != nil {
		t.Fatal(err)
	}
	for {
		if e := endpoint(prof.recv(t), "catalog", "catalog-1"); e.GetHealthy() {
			break
		}
	}
}

func TestReconnectReplacesTheOlderStream(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	inst := &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7000", Healthy: true}
	first := connectRaw(t, c, inst)
	first.recv(t)
	inst2 := &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v2", Address: "127.0.0.1:7002", Healthy: true}
	second := connectRaw(t, c, inst2)
	second.recv(t)
	if _, err := first.stream.Recv(); status.Code(err) != codes.Aborted {
		t.Fatalf("older stream ended with %v, want Aborted", err)
	}
	waitFor(t, "one entry with the new address", func() bool {
		ins := c.srv.Instances()
		return len(ins) == 1 && ins[0].Address == "127.0.0.1:7002" && ins[0].Version == "v2"
	})
	// The older stream's end must not remove the newer entry.
	first.cancel()
	if ins := c.srv.Instances(); len(ins) != 1 {
		t.Fatalf("registry = %v, want the newer entry", ins)
	}
	// Another service may not take the id.
	err := helloErr(t, c, ca.JoinToken(secret, "profiles"), &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{
		Instance: &meshv1.Instance{Id: "catalog-1", Service: "profiles", Version: "v1", Address: "127.0.0.1:7001"},
	}}})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("profiles taking catalog-1: %v, want AlreadyExists", err)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	c := startCP(t, sqliteDB(t), "127.0.0.1:0")
	r := connectRaw(t, c, &meshv1.Instance{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7000", Healthy: true})
	r.recv(t)
	c.srv.Close()
	if _, err := r.stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after Close: %v, want Unavailable", err)
	}
	err := helloErr(t, c, ca.JoinToken(secret, "catalog"), &meshv1.ConnectRequest{Message: &meshv1.ConnectRequest_Hello{Hello: &meshv1.Hello{
		Instance: &meshv1.Instance{Id: "catalog-2", Service: "catalog", Version: "v1"},
	}}})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("connect after Close: %v, want Unavailable", err)
	}
}
