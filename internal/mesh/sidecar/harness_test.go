package sidecar

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// The upstream application of the tests is a gRPC health service whose
// behaviour the request's service field picks, plus a plain HTTP server.
const (
	svcOK       = ""          // answers SERVING
	svcFailOnce = "fail-once" // first call: UNAVAILABLE, then SERVING
	svcHold     = "hold"      // waits for app.release (or the deadline)
	svcSleep    = "sleep"     // waits for the deadline
)

// testApp is an application behind a sidecar.
type testApp struct {
	healthpb.UnimplementedHealthServer
	version  string
	grpcAddr string
	httpAddr string
	calls    atomic.Int64
	failed   atomic.Bool
	held     chan struct{} // a value per call that started holding
	release  chan struct{} // closed to let held calls finish
	lastBody atomic.Value  // string: the last HTTP request body
}

func (a *testApp) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	a.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	grpc.SetHeader(ctx, metadata.Pairs("x-version", a.version, "x-seen-caller", strings.Join(md.Get("x-marquee-caller"), ","),
		"x-seen-traceparent", strings.Join(md.Get("traceparent"), ",")))
	switch req.GetService() {
	case svcFailOnce:
		if a.failed.CompareAndSwap(false, true) {
			return nil, status.Error(codes.Unavailable, "app: not yet")
		}
	case svcHold:
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case svcSleep:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// Watch streams three messages, one every few milliseconds.
func (a *testApp) Watch(req *healthpb.HealthCheckRequest, s grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	a.calls.Add(1)
	for i := range 3 {
		st := healthpb.HealthCheckResponse_SERVING
		if i == 1 {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if err := s.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// fileContent is what the HTTP app serves at /file.
var fileContent = []byte("0123456789abcdefghijklmnopqrstuvwxyz")

func (a *testApp) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	a.lastBody.Store(string(body))
	w.Header().Set("X-Seen-Caller", strings.Join(r.Header.Values("X-Marquee-Caller"), ","))
	w.Header().Set("X-Version", a.version)
	switch r.URL.Path {
	case "/file":
		http.ServeContent(w, r, "file.txt", time.Unix(1700000000, 0), bytes.NewReader(fileContent))
	case "/hold":
		a.held <- struct{}{}
		select {
		case <-a.release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "held")
	default:
		http.NotFound(w, r)
	}
}

// startApp starts an application (gRPC and HTTP) for version.
func startApp(t testing.TB, version string) *testApp {
	t.Helper()
	a := &testApp{version: version, held: make(chan struct{}, 100), release: make(chan struct{})}
	gl := listen(t)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, a)
	go gs.Serve(gl)
	hl := listen(t)
	hs := &http.Server{Handler: http.HandlerFunc(a.serveHTTP)}
	go hs.Serve(hl)
	a.grpcAddr, a.httpAddr = gl.Addr().String(), hl.Addr().String()
	t.Cleanup(func() {
		gs.Stop()
		hs.Close()
	})
	return a
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// mesh is a test mesh: one authority, and sidecars with certificates from
// it.
type mesh struct {
	t    testing.TB
	auth *ca.Authority
}

func newMesh(t testing.TB) *mesh {
	t.Helper()
	auth, err := ca.NewInMemory()
	if err != nil {
		t.Fatal(err)
	}
	return &mesh{t: t, auth: auth}
}

// staticCerts returns a workload holding a certificate valid for a day.
func (m *mesh) staticCerts(service string) *ca.Workload {
	m.t.Helper()
	cert, err := m.auth.Issue(service, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	if err != nil {
		m.t.Fatal(err)
	}
	return ca.StaticWorkload(service, cert, m.auth.Roots())
}

// rotatingCerts returns a running workload whose certificates live ttl.
func (m *mesh) rotatingCerts(service string, ttl time.Duration) *ca.Workload {
	m.t.Helper()
	w := ca.NewWorkload(service, func(ctx context.Context, csr []byte) ([]byte, [][]byte, error) {
		cert, err := m.auth.Sign(csr, service, ttl)
		if err != nil {
			return nil, nil, err
		}
		return cert.Raw, [][]byte{m.auth.RootDER()}, nil
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			m.t.Errorf("workload %s: %v", service, err)
		}
	}()
	m.t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		m.t.Fatalf("workload %s: no certificate after 30s", service)
	}
	return w
}

// sidecar is a running Proxy in a test.
type sidecar struct {
	*Proxy
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, once done is closed
}

// sidecarOpts adjust a sidecar's configuration.
type sidecarOpts struct {
	certs   *ca.Workload
	app     *testApp // nil: no inbound
	version string
	noHTTP  bool
	drain   time.Duration
	logTo   io.Writer
}

// start starts the sidecar of service.
func (m *mesh) start(service string, o sidecarOpts) *sidecar {
	m.t.Helper()
	if o.certs == nil {
		o.certs = m.staticCerts(service)
	}
	if o.version == "" {
		o.version = "v1"
		if o.app != nil {
			o.version = o.app.version
		}
	}
	cfg := Config{
		Service:      service,
		Version:      o.version,
		OutboundAddr: "127.0.0.1:0",
		Certs:        o.certs,
		DrainTimeout: o.drain,
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	if o.logTo != nil {
		cfg.Log = slog.New(slog.NewJSONHandler(o.logTo, nil))
		cfg.AccessLog = true
	}
	if o.app != nil {
		cfg.InboundAddr = "127.0.0.1:0"
		cfg.AppGRPC = o.app.grpcAddr
		if !o.noHTTP {
			cfg.AppHTTP = o.app.httpAddr
		}
	}
	p, err := New(cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sidecar{Proxy: p, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = p.Run(ctx)
	}()
	m.t.Cleanup(func() {
		if err := s.stop(); err != nil {
			m.t.Errorf("sidecar %s: Run: %v", service, err)
		}
	})
	return s
}

// stop stops the sidecar and returns what Run returned.
func (s *sidecar) stop() error {
	s.cancel()
	<-s.done
	return s.err
}

// snap is a snapshot builder.
type snap = meshv1.Snapshot

var snapVersion atomic.Uint64

// apply applies s with a fresh version, failing the test on error.
func (s *sidecar) apply(t testing.TB, sn *snap) {
	t.Helper()
	sn.Version = snapVersion.Add(1)
	if err := s.Apply(sn); err != nil {
		t.Fatal(err)
	}
}

// allowAll lets callers call everything.
func allowAll(callers ...string) *meshv1.Inbound {
	in := &meshv1.Inbound{}
	for _, c := range callers {
		in.Allow = append(in.Allow, &meshv1.AllowRule{Caller: c, Methods: []string{"*"}})
	}
	return in
}

// ep is an endpoint of version at the sidecar's inbound address.
func ep(s *sidecar, version string) *meshv1.Endpoint {
	return &meshv1.Endpoint{InstanceId: s.Proxy.cfg.Service + "-" + version + "-" + s.InboundAddr(), Address: s.InboundAddr(), Version: version, Healthy: true}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// pair is the usual setup: a client sidecar calling "echo", whose sidecar
// fronts a test app.
type pair struct {
	m      *mesh
	client *sidecar
	server *sidecar
	app    *testApp
	conn   *grpc.ClientConn
	health healthpb.HealthClient
}

// newPair starts the pair; dest adjusts the client's destination.
func newPair(t testing.TB, dest func(*meshv1.Destination)) *pair {
	t.Helper()
	m := newMesh(t)
	pr := &pair{m: m, app: startApp(t, "v1")}
	pr.server = m.start("echo", sidecarOpts{app: pr.app})
	pr.server.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	pr.client = m.start("client", sidecarOpts{})
	d := &meshv1.Destination{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(pr.server, "v1")}}
	if dest != nil {
		dest(d)
	}
	pr.client.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{d}})
	pr.conn = dialOutbound(t, pr.client, "echo")
	pr.health = healthpb.NewHealthClient(pr.conn)
	return pr
}

// dialOutbound returns a gRPC client that calls service through s, as an
// application would: plaintext h2c to the outbound listener, the service
// name as authority.
func dialOutbound(t testing.TB, s *sidecar, service string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+s.OutboundAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(service))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// check calls Health/Check for service and returns the response headers
// and trailers.
func check(ctx context.Context, hc healthpb.HealthClient, service string) (metadata.MD, metadata.MD, error) {
	var hdr, trl metadata.MD
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.Header(&hdr), grpc.Trailer(&trl))
	return hdr, trl, err
}

// mustStatus checks err is a gRPC status with code and a message
// containing msg.
func mustStatus(t testing.TB, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("error = %v, want %s with %q", err, code, msg)
	}
}

// meshErrorOf returns the x-marquee-mesh-error a gRPC response carried
// (trailers-only responses carry it in what gRPC calls trailers).
func meshErrorOf(hdr, trl metadata.MD) string {
	if v := hdr.Get("x-marquee-mesh-error"); len(v) > 0 {
		return v[0]
	}
	if v := trl.Get("x-marquee-mesh-error"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// metric sums the values of the series of family name whose labels
// include want.
func metric(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelsMatch(m, want) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// httpVia returns an HTTP/1.1 client whose requests all go to the outbound
// listener of s (the request's Host names the service).
func httpVia(s *sidecar) *http.Client {
	addr := s.OutboundAddr()
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
		},
	}
}

// tlsClient returns an HTTP client presenting cert (nil: none) to mesh
// servers, checking nothing of theirs: the tests using it are about what
// the server refuses.
func tlsClient(cert *tls.Certificate) *http.Client {
	conf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS13}
	if cert != nil {
		conf.Certificates = []tls.Certificate{*cert}
	}
	t := &http.Transport{TLSClientConfig: conf, Protocols: new(http.Protocols)}
	t.Protocols.SetHTTP2(true)
	t.Protocols.SetHTTP1(true)
	return &http.Client{Timeout: 20 * time.Second, Transport: t}
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// dialHealth returns a health client calling echo through s.
func dialHealth(t testing.TB, s *sidecar) healthpb.HealthClient {
	return healthpb.NewHealthClient(dialOutbound(t, s, "echo"))
}
