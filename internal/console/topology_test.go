package console

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
)

// fakeSidecar serves the sidecar's request metrics from a real registry.
type fakeSidecar struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	srv      *httptest.Server
}

func newFakeSidecar(t *testing.T) *fakeSidecar {
	t.Helper()
	reg := prometheus.NewRegistry()
	f := &fakeSidecar{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "marquee_mesh_requests_total"},
			[]string{"direction", "source", "destination", "destination_version", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "marquee_mesh_request_duration_seconds",
			Buckets: []float64{.001, .01, .1, 1}}, []string{"direction", "source", "destination", "destination_version"}),
	}
	reg.MustRegister(f.requests, f.duration)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSidecar) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

// call records n outbound calls, each taking secs.
func (f *fakeSidecar) call(src, dst, ver, code string, n int, secs float64) {
	f.requests.WithLabelValues("outbound", src, dst, ver, "/x.v1.S/M", code).Add(float64(n))
	for range n {
		f.duration.WithLabelValues("outbound", src, dst, ver).Observe(secs)
	}
	// Inbound samples are the callee's view and must not count twice.
	f.requests.WithLabelValues("inbound", src, dst, ver, "/x.v1.S/M", code).Add(float64(1000 * n))
}

func TestTopology(t *testing.T) {
	gw, cat := newFakeSidecar(t), newFakeSidecar(t)
	// A port nothing listens on: a sidecar that went away.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	instances := []controlplane.InstanceStatus{
		{ID: "gateway-1", Service: "gateway", Version: "v1", Healthy: true, MetricsAddress: gw.addr()},
		{ID: "catalog-1", Service: "catalog", Version: "v1", Healthy: true, MetricsAddress: cat.addr()},
		{ID: "catalog-2", Service: "catalog", Version: "v1", Healthy: false, MetricsAddress: gone},
		{ID: "recommendations-1", Service: "recommendations", Version: "v1", Healthy: true},
		{ID: "recommendations-2", Service: "recommendations", Version: "v2", Healthy: true},
	}
	h := newHarness(t, Config{Instances: func() []controlplane.InstanceStatus { return instances }}, false)

	var topo Topology
	h.getJSON("/api/v1/console/topology", &topo)
	if topo.Note == "" || len(topo.Edges) != 0 || len(topo.Nodes) != 3 {
		t.Fatalf("before any scrape: %+v, want a note, 3 nodes and no edges", topo)
	}

	// Traffic before the window must not count.
	gw.call("gateway", "catalog", "v1", "OK", 100, .0005)
	cat.call("catalog", "recommendations", "v1", "OK", 50, .0005)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	h.c.topo.scrapeOnce(ctx, t0)
	h.getJSON("/api/v1/console/topology", &topo)
	if topo.WindowSeconds != 0 || !strings.Contains(topo.Note, "two scrapes") {
		t.Fatalf("after one scrape: window %v, note %q; want 0 and a wait for a second scrape", topo.WindowSeconds, topo.Note)
	}

	// In 10 s: gateway→catalog 99 fast OK, 4 slow UNAVAILABLE, 2 NOT_FOUND
	// (the caller's mistake, not an error); catalog→recommendations 90 to
	// v1, 10 to v2 of which 5 failed with HTTP 503.
	gw.call("gateway", "catalog", "v1", "OK", 99, .005)
	gw.call("gateway", "catalog", "v1", "UNAVAILABLE", 4, .05)
	gw.call("gateway", "catalog", "v1", "NOT_FOUND", 2, .05)
	cat.call("catalog", "recommendations", "v1", "OK", 90, .0005)
	cat.call("catalog", "recommendations", "v2", "200", 5, .0005)
	cat.call("catalog", "recommendations", "v2", "503", 5, .5)
	h.c.topo.scrapeOnce(ctx, t0.Add(10*time.Second))
	h.getJSON("/api/v1/console/topology", &topo)

	if topo.WindowSeconds != 10 {
		t.Errorf("window = %vs, want 10", topo.WindowSeconds)
	}
	if len(topo.Failures) != 1 || topo.Failures[0].Instance != "catalog-2" {
		t.Errorf("scrape failures = %+v, want catalog-2's", topo.Failures)
	}
	if len(topo.Edges) != 2 {
		t.Fatalf("edges = %+v, want gateway→catalog and catalog→recommendations", topo.Edges)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	p99 := func(tr Traffic) float64 {
		if tr.P99Ms == nil {
			return -1
		}
		return *tr.P99Ms
	}
	cr, gc := topo.Edges[0], topo.Edges[1]
	if gc.Source != "gateway" || gc.Destination != "catalog" || cr.Source != "catalog" || cr.Destination != "recommendations" {
		t.Fatalf("edges = %+v", topo.Edges)
	}
	near("gateway→catalog rps", gc.RPS, 10.5)
	near("gateway→catalog error rate", gc.ErrorRate, 4.0/105)
	// 105 requests: 99 in (1ms,10ms], 6 in (10ms,100ms]; rank 103.95 lies
	// 4.95/6 into the second bucket.
	near("gateway→catalog p99 ms", p99(gc.Traffic), 10+90*4.95/6)
	near("catalog→recommendations rps", cr.RPS, 10)
	near("catalog→recommendations error rate", cr.ErrorRate, 0.05)
	if len(cr.Versions) != 2 || cr.Versions[0].Version != "v1" || cr.Versions[1].Version != "v2" {
		t.Fatalf("catalog→recommendations versions = %+v, want v1 and v2", cr.Versions)
	}
	near("→v1 rps", cr.Versions[0].RPS, 9)
	near("→v1 error rate", cr.Versions[0].ErrorRate, 0)
	near("→v2 rps", cr.Versions[1].RPS, 1)
	near("→v2 error rate", cr.Versions[1].ErrorRate, 0.5)
	// v2: 5 in (0,1ms], 5 in (100ms,1s]; rank 9.9 lies 4.9/5 into the last.
	near("→v2 p99 ms", p99(cr.Versions[1].Traffic), 100+900*4.9/5)

	want := map[string]Node{
		"catalog":         {Service: "catalog", Instances: 2, Healthy: 1, Versions: []string{"v1"}},
		"gateway":         {Service: "gateway", Instances: 1, Healthy: 1, Versions: []string{"v1"}},
		"recommendations": {Service: "recommendations", Instances: 2, Healthy: 2, Versions: []string{"v1", "v2"}},
	}
	if len(topo.Nodes) != len(want) {
		t.Errorf("nodes = %+v, want %d", topo.Nodes, len(want))
	}
	for _, n := range topo.Nodes {
		w := want[n.Service]
		if n.Instances != w.Instances || n.Healthy != w.Healthy || strings.Join(n.Versions, ",") != strings.Join(w.Versions, ",") {
			t.Errorf("node %+v, want %+v", n, w)
		}
	}

	// A window without traffic: the edges stay, at zero.
	h.c.topo.scrapeOnce(ctx, t0.Add(20*time.Second))
	h.c.topo.scrapeOnce(ctx, t0.Add(30*time.Second))
	h.getJSON("/api/v1/console/topology", &topo)
	if len(topo.Edges) != 2 || topo.Edges[0].RPS != 0 || topo.Edges[0].P99Ms != nil || topo.WindowSeconds != 10 {
		t.Errorf("idle window: %+v, want the edges at 0 rps, no p99, over 10s", topo.Edges)
	}
}

func TestTopologyCounterReset(t *testing.T) {
	topo := newTopology(nil, nil)
	k := edgeKey{"a", "b", "v1"}
	at := time.Unix(0, 0)
	mk := func(req, errs float64) series {
		return series{requests: map[edgeKey]float64{k: req}, errors: map[edgeKey]float64{k: errs}, buckets: map[edgeKey][]bucket{}}
	}
	topo.scrapes = []scrape{
		{at: at, instances: map[string]series{"i": mk(500, 10)}},
		{at: at.Add(5 * time.Second), instances: map[string]series{"i": mk(20, 2)}},
	}
	got := topo.snapshot()
	if len(got.Edges) != 1 || got.Edges[0].RPS != 4 || got.Edges[0].ErrorRate != 0.1 {
		t.Errorf("after a sidecar restart: %+v, want 20 requests in 5s (4 rps), 10%% errors", got.Edges)
	}
}

func TestIsError(t *testing.T) {
	for code, want := range map[string]bool{
		"OK": false, "NOT_FOUND": false, "PERMISSION_DENIED": false, "INVALID_ARGUMENT": false,
		"UNAVAILABLE": true, "DEADLINE_EXCEEDED": true, "INTERNAL": true, "UNKNOWN": true, "DATA_LOSS": true,
		"RESOURCE_EXHAUSTED": true, "200": false, "302": false, "404": false, "500": true, "503": true, "": false,
	} {
		if got := isError(code); got != want {
			t.Errorf("isError(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name   string
		bs     []bucket
		want   float64
		wantOK bool
	}{
		{"empty", nil, 0, false},
		{"no observations", []bucket{{1, 0}, {inf, 0}}, 0, false},
		{"first bucket", []bucket{{1, 100}, {inf, 100}}, .99, true},
		{"in +Inf: the last finite bound", []bucket{{1, 0}, {2, 0}, {inf, 10}}, 2, true},
		{"interpolated", []bucket{{1, 50}, {3, 100}, {inf, 100}}, 1 + 2*(99-50)/50.0, true},
	} {
		got, ok := quantile(.99, tc.bs)
		if ok != tc.wantOK || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("quantile(.99, %s) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}
