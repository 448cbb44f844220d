package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/platform/peers"
)

// TestDefaultRoutesCoverProtos checks the embedded routing document: it is
// valid against the real protos, and every HTTP binding the seven services
// annotate has a route.
func TestDefaultRoutesCoverProtos(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	tbl := g.gen.Load().table
	n := 0
	for svc, bs := range g.bindings {
		for _, b := range bs {
			path := strings.NewReplacer("{id}", "x1", "{profile_id}", "p1", "{title_id}", "t1", "{session_id}", "s1").Replace(b.Path)
			r, status, _ := tbl.Match(b.Method, path)
			if r == nil {
				t.Errorf("%s %s (%s) has no route: %d", b.Method, b.Path, b.RPC, status)
				continue
			}
			if r.Upstream != svc || r.Kind != routes.KindGRPC {
				t.Errorf("%s %s routes to %s %s, want grpc %s", b.Method, b.Path, r.Kind, r.Upstream, svc)
			}
			n++
		}
	}
	if n < 35 {
		t.Errorf("%d bindings covered, want every binding of the seven services", n)
	}
	for _, tt := range []struct {
		method, path string
		auth         routes.Auth
		role         string
	}{
		{"POST", "/api/v1/auth/login", routes.AuthNone, ""},
		{"POST", "/api/v1/auth/logout", routes.AuthRequired, ""},
		{"GET", "/.well-known/jwks.json", routes.AuthNone, ""},
		{"GET", "/api/v1/titles", routes.AuthOptional, ""},
		{"GET", "/api/v1/plans", routes.AuthNone, ""},
		{"GET", "/api/v1/home", routes.AuthRequired, ""},
		{"POST", "/api/v1/orders", routes.AuthRequired, ""},
		{"GET", "/api/v1/admin/sagas", routes.AuthRequired, "admin"},
		{"GET", "/media/demo-1/video.mp4", routes.AuthNone, ""},
	} {
		r, _, _ := tbl.Match(tt.method, tt.path)
		if r == nil || r.Auth != tt.auth || r.Role != tt.role {
			t.Errorf("route %s %s = %+v, want auth %v role %q", tt.method, tt.path, r, tt.auth, tt.role)
		}
	}
}

// testRoutes is a small routing document for the feature tests; classes
// and breakers are set by the caller.
func testRoutes(classes, breakers string) []byte {
	return []byte(`{
  "rate_classes": {` + classes + `},
  "http_upstreams": {"playback-media": {}},
  "breakers": {` + breakers + `},
  "routes": [
    {"method": "POST", "path": "/api/v1/auth/login", "upstream": "identity", "auth": "none",
     "rate_limits": [{"class": "login-address", "by": "client"}, {"class": "login-account", "by": "body:email"}]},
    {"method": "GET", "path": "/api/v1/account", "upstream": "identity", "rate_class": "per-account"},
    {"method": "GET", "path": "/api/v1/titles", "upstream": "catalog", "auth": "optional", "rate_class": "browse"},
    {"method": "GET", "path": "/api/v1/titles/{id}", "upstream": "catalog", "auth": "optional", "rate_class": "browse"},
    {"methods": ["GET", "HEAD"], "prefix": "/media/", "kind": "http", "upstream": "playback-media", "auth": "none", "timeout": "300ms"}
  ]
}`)
}

const generousClasses = `"login-address": {"rate": 1000, "per": "1s", "burst": 1000},
    "login-account": {"rate": 1000, "per": "1s", "burst": 1000},
    "per-account": {"rate": 1000, "per": "1s", "burst": 1000},
    "browse": {"rate": 100000, "per": "1s", "burst": 100000}`

func TestRateLimits(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{Routes: testRoutes(`
    "login-address": {"rate": 1, "per": "1h", "burst": 4},
    "login-account": {"rate": 1, "per": "1h", "burst": 2},
    "per-account": {"rate": 1, "per": "1h", "burst": 2},
    "browse": {"rate": 100000, "per": "1s", "burst": 100000}`, "")}, nil)

	login := func(email string) response {
		return g.do(t, http.MethodPost, "/api/v1/auth/login", header("Content-Type", "application/json"),
			strings.NewReader(`{"email":"`+email+`","password":"0123456789"}`))
	}
	// Per account: two attempts for one email, whatever its case.
	for i, email := range []string{"a@example.com", "A@Example.com "} {
		if r := login(email); r.status != 200 {
			t.Fatalf("login %d for a@example.com = %s, want 200", i, describe(r))
		}
	}
	r := login("a@example.com")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third login for a@example.com = %s, want 429", describe(r))
	}
	if e := errorOf(t, r); e.Code != "RATE_LIMITED" {
		t.Errorf("429 code = %q, want RATE_LIMITED", e.Code)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 3500 || ra > 3600 {
		t.Errorf("Retry-After = %q, want about 3600 s (one per hour, the burst of 2 spent)", r.header.Get("Retry-After"))
	}
	if r.header.Get("Ratelimit-Limit") != "2" || r.header.Get("Ratelimit-Remaining") != "0" || r.header.Get("Ratelimit-Reset") == "" {
		t.Errorf("RateLimit headers = %q %q %q, want 2, 0, a reset", r.header.Get("Ratelimit-Limit"), r.header.Get("Ratelimit-Remaining"), r.header.Get("Ratelimit-Reset"))
	}
	// Per address: 4 attempts in all; a refused one counted nothing.
	if r := login("b@example.com"); r.status != 200 {
		t.Fatalf("login for b@example.com = %s, want 200", describe(r))
	}
	if r := login("c@example.com"); r.status != 200 {
		t.Fatalf("login for c@example.com = %s, want 200 (the refused attempt did not count)", describe(r))
	}
	if r := login("d@example.com"); r.status != http.StatusTooManyRequests {
		t.Fatalf("fifth login from one address = %s, want 429", describe(r))
	}
	u.identity.mu.Lock()
	logins := len(u.identity.logins)
	md := u.identity.logins[0].md
	u.identity.mu.Unlock()
	if logins != 4 {
		t.Errorf("logins that reached identity = %d, want 4", logins)
	}
	if got := md.Get("x-marquee-client-addr"); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("login x-marquee-client-addr = %q, want [127.0.0.1] (identity throttles by it too)", got)
	}

	// Per principal: each account has its own budget.
	a, b := header("Authorization", u.bearer(t, "acc-a")), header("Authorization", u.bearer(t, "acc-b"))
	for i, want := range []int{200, 200, 429} {
		if r := g.do(t, http.MethodGet, "/api/v1/account", a, nil); r.status != want {
			t.Errorf("acc-a request %d = %s, want %d", i, describe(r), want)
		}
	}
	if r := g.do(t, http.MethodGet, "/api/v1/account", b, nil); r.status != 200 {
		t.Errorf("acc-b after acc-a is limited = %s, want 200", describe(r))
	}
}

// TestRedisSharedLimit runs two gateways sharing a limit through Redis for
// 10 seconds, offered about four times the limit: the admitted rate stays
// within 5% of the limit.
func TestRedisSharedLimit(t *testing.T) {
	url := os.Getenv("MARQUEE_TEST_REDIS")
	if url == "" {
		t.Skip("MARQUEE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0)")
	}
	u := startUpstream(t)
	class := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	const rate, burst, secs = 50, 5, 10
	doc := []byte(`{"rate_classes": {"` + class + `": {"rate": ` + strconv.Itoa(rate) + `, "per": "1s", "burst": ` + strconv.Itoa(burst) + `}},
	  "routes": [{"method": "GET", "path": "/api/v1/titles", "upstream": "catalog", "auth": "none", "rate_class": "` + class + `"}]}`)
	var gws []*testGateway
	for range 2 {
		gws = append(gws, newGateway(t, u.addr, Config{Routes: doc, RedisURL: url}, nil))
	}
	var admitted, refused, other atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), secs*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		g := gws[w%2]
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond) // 200/s per worker
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/api/v1/titles", nil)
				resp, err := client.Do(req)
				if err != nil {
					continue // the deadline
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	want := float64(burst + rate*secs)
	got := float64(admitted.Load())
	t.Logf("offered %d over %d s to 2 gateways, admitted %d (limit %d/s + burst %d: %v)", admitted.Load()+refused.Load()+other.Load(), secs, admitted.Load(), rate, burst, want)
	if got < want*0.95 || got > want*1.05 {
		t.Errorf("admitted %v over %d s, want within 5%% of %v", got, secs, want)
	}
	if refused.Load() < int64(want) {
		t.Errorf("refused %d: the offered load did not exceed the limit enough to test it", refused.Load())
	}
	if other.Load() != 0 {
		t.Errorf("%d answers neither 200 nor 429", other.Load())
	}
}

// TestRedisUnreachable checks the fallback: with Redis at an address
// nothing listens on, limits apply in process, and the metric says so.
func TestRedisUnreachable(t *testing.T) {
	u := startUpstream(t)
	reg := prometheus.NewRegistry()
	g := newGateway(t, u.addr, Config{RedisURL: "redis://" + deadAddr(t) + "/0", Registerer: reg,
		Routes: testRoutes(strings.Replace(generousClasses, `"per-account": {"rate": 1000, "per": "1s", "burst": 1000}`, `"per-account": {"rate": 1, "per": "1h", "burst": 2}`, 1), "")}, nil)
	h := header("Authorization", u.bearer(t, "acc-a"))
	for i, want := range []int{200, 200, 429} {
		if r := g.do(t, http.MethodGet, "/api/v1/account", h, nil); r.status != want {
			t.Errorf("request %d with Redis down = %s, want %d", i, describe(r), want)
		}
	}
	if v := metricValue(g.metrics.redisUp); v != 0 {
		t.Errorf("marquee_gateway_ratelimit_redis_up = %v, want 0", v)
	}
	if v := metricValue(g.metrics.limitFallback); v < 2 {
		t.Errorf("marquee_gateway_ratelimit_fallback_total = %v, want at least 2", v)
	}
	if !strings.Contains(g.logs.String(), "Redis unreachable") {
		t.Errorf("the fallback is not logged:\n%s", g.logs.String())
	}
}

// TestReload rewrites the routing file while requests flow: none fails;
// the new routes apply; a bad file is refused and the routes in force
// stay.
func TestReload(t *testing.T) {
	u := startUpstream(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "routes.json")
	v1 := []byte(`{"routes": [{"method": "GET", "path": "/api/v1/titles", "upstream": "catalog", "auth": "none"}]}`)
	v2 := []byte(`{"routes": [{"method": "GET", "path": "/api/v1/titles", "upstream": "catalog", "auth": "none", "timeout": "5s"},
	  {"method": "GET", "path": "/api/v1/titles/{id}", "upstream": "catalog", "auth": "none"}]}`)
	if err := os.WriteFile(file, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g := newGateway(t, u.addr, Config{RoutesFile: file, RoutesPollInterval: 10 * time.Millisecond, Registerer: reg}, nil)
	ctx, stop := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { g.Run(ctx) })
	t.Cleanup(func() { stop(); run.Wait() })

	if r := g.get(t, "/api/v1/titles/t1"); r.status != 404 {
		t.Fatalf("GET /api/v1/titles/t1 with v1 = %s, want 404", describe(r))
	}
	var served, failed atomic.Int64
	var failures sync.Map
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				r := g.get(t, "/api/v1/titles")
				if r.status == 200 {
					served.Add(1)
				} else {
					failed.Add(1)
					failures.Store(fmt.Sprint(w, i), describe(r))
				}
			}
		})
	}
	for i := range 20 {
		doc := v1
		if i%2 == 0 {
			doc = v2
		}
		// Written in place, not atomically: the poller may read a torn file,
		// which is refused like any bad file.
		if err := os.WriteFile(file, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	close(done)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("request %v failed during reloads: %v", k, v); return true })
	if served.Load() < 20 {
		t.Errorf("served %d requests during reloads, want a stream", served.Load())
	}
	// The last write was v1; make it v2 and wait for it.
	if err := os.WriteFile(file, v2, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 in force", func() bool { return g.get(t, "/api/v1/titles/t1").status == 200 })
	okReloads := metricValue(g.metrics.reloads.WithLabelValues("ok"))
	if okReloads < 2 {
		t.Errorf("reloads ok = %v, want several", okReloads)
	}

	// A bad file is refused; v2 stays.
	if err := os.WriteFile(file, []byte(`{"routes": [{"method": "GET", "path": "/api/v1/nope", "upstream": "catalog"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad file refused", func() bool { return metricValue(g.metrics.reloads.WithLabelValues("error")) >= 1 })
	if err := g.Reload(); err == nil {
		t.Error("Reload of a bad file = nil, want its error")
	}
	if r := g.get(t, "/api/v1/titles/t1"); r.status != 200 {
		t.Errorf("GET /api/v1/titles/t1 after a bad file = %s, want 200 (v2 kept)", describe(r))
	}
	if !strings.Contains(g.logs.String(), "reload refused") {
		t.Errorf("the refused reload is not logged")
	}
	// A missing file too.
	os.Remove(file)
	if err := g.Reload(); err == nil {
		t.Error("Reload of a missing file = nil, want an error")
	}
	if r := g.get(t, "/api/v1/titles/t1"); r.status != 200 {
		t.Errorf("GET /api/v1/titles/t1 after the file vanished = %s, want 200", describe(r))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCircuitBreaker makes the catalog fail: after the configured number
// of consecutive failures the gateway answers 503 CIRCUIT_OPEN without
// calling it, and a good probe after open_for closes the circuit.
func TestCircuitBreaker(t *testing.T) {
	u := startUpstream(t)
	reg := prometheus.NewRegistry()
	g := newGateway(t, u.addr, Config{Registerer: reg, Routes: testRoutes(generousClasses,
		`"catalog": {"failures": 3, "open_for": "300ms"}`)}, nil)
	for i := range 3 {
		if r := g.get(t, "/api/v1/titles/down"); r.status != 503 || errorOf(t, r).Code != "PROCESSOR_UNAVAILABLE" {
			t.Fatalf("failure %d = %s, want 503 from the upstream", i, describe(r))
		}
	}
	// Client errors do not count; but the circuit is open now.
	before := u.calls()
	r := g.get(t, "/api/v1/titles/t1")
	if r.status != 503 {
		t.Fatalf("after 3 failures = %s, want 503 CIRCUIT_OPEN", describe(r))
	}
	e := errorOf(t, r)
	if e.Code != "CIRCUIT_OPEN" || !strings.Contains(e.Message, "catalog") || r.header.Get("Retry-After") == "" {
		t.Errorf("open circuit = %+v (Retry-After %q), want CIRCUIT_OPEN naming catalog, with Retry-After", e, r.header.Get("Retry-After"))
	}
	if u.calls() != before {
		t.Error("the open circuit let a request through")
	}
	if v := metricValue(g.metrics.breakerState.WithLabelValues("catalog")); v != 1 {
		t.Errorf("breaker_state{catalog} = %v, want 1 (open)", v)
	}
	// Other upstreams are not affected.
	if r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", u.bearer(t, "acc-1")), nil); r.status != 200 {
		t.Errorf("identity while catalog's circuit is open = %s, want 200", describe(r))
	}
	waitFor(t, "the circuit closes after a good probe", func() bool { return g.get(t, "/api/v1/titles/t1").status == 200 })
	if r := g.get(t, "/api/v1/titles/missing"); r.status != 404 {
		t.Errorf("after closing = %s, want the upstream's 404", describe(r))
	}
}

// TestMediaRoute proxies /media/ to the playback media endpoint: Range
// requests and their 206 pass through, unbuffered and not recompressed;
// credentials are not passed; a dead or slow upstream is 503 or 504.
func TestMediaRoute(t *testing.T) {
	u := startUpstream(t)
	body := strings.Repeat("video-bytes;", 10000)
	var seen atomic.Value
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
		if r.URL.Path == "/media/slow" {
			time.Sleep(time.Second)
		}
		w.Header().Set("Content-Type", "video/mp4")
		w.Header().Set("ETag", `"e1"`)
		http.ServeContent(w, r, "v.mp4", time.Unix(0, 0), strings.NewReader(body))
	}))
	defer media.Close()
	g := newGateway(t, u.addr, Config{
		Routes:         testRoutes(generousClasses, ""),
		HTTPUpstreams:  map[string][]string{"playback-media": {media.Listener.Addr().String()}},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}, nil)
	r := g.do(t, http.MethodGet, "/media/demo-1/v.mp4?sig=abc", header("Range", "bytes=12-23", "Accept-Encoding", "gzip",
		"Authorization", "Bearer secret", "X-Forwarded-For", "198.51.100.9", "X-Marquee-Account-Id", "evil"), nil)
	if r.status != http.StatusPartialContent || string(r.body) != "video-bytes;" {
		t.Fatalf("GET /media with Range = %d %q, want 206 video-bytes;", r.status, r.body)
	}
	if r.header.Get("Content-Encoding") != "" || r.header.Get("Content-Range") != "bytes 12-23/120000" || r.header.Get("ETag") != `"e1"` {
		t.Errorf("media response headers = %v", r.header)
	}
	if r.header.Get("X-Request-Id") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("media response lacks the gateway's headers: %v", r.header)
	}
	h := seen.Load().(http.Header)
	if h.Get("Authorization") != "" || h.Get("X-Marquee-Account-Id") != "" {
		t.Errorf("the media upstream got credentials or spoofed headers: %v", h)
	}
	if h.Get("X-Forwarded-For") != "198.51.100.9" || h.Get("X-Request-Id") != r.header.Get("X-Request-Id") {
		t.Errorf("the media upstream got X-Forwarded-For %q, X-Request-Id %q", h.Get("X-Forwarded-For"), h.Get("X-Request-Id"))
	}
	if r := g.get(t, "/media/slow"); r.status != http.StatusGatewayTimeout {
		t.Errorf("slow media = %s, want 504", describe(r))
	}
	if r := g.do(t, http.MethodPost, "/media/x", nil, strings.NewReader("x")); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /media = %s, want 405", describe(r))
	}
	media.Close()
	if r := g.get(t, "/media/x"); r.status != http.StatusServiceUnavailable {
		t.Errorf("media down = %s, want 503", describe(r))
	}

	none := newGateway(t, u.addr, Config{Routes: testRoutes(generousClasses, "")}, nil)
	if r := none.get(t, "/media/x"); r.status != http.StatusServiceUnavailable {
		t.Errorf("media without an address = %s, want 503", describe(r))
	}
}

func TestCORS(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{CORSOrigins: []string{"https://app.example.com"}}, nil)
	pre := func(origin, method, headers string) response {
		return g.do(t, http.MethodOptions, "/api/v1/titles", header("Origin", origin,
			"Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers), nil)
	}
	r := pre("https://app.example.com", "GET", "authorization, x-evil")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight from an allowed origin = %s, want 204", describe(r))
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Methods":     "GET",
		"Access-Control-Allow-Headers":     "Authorization",
		"Access-Control-Allow-Credentials": "",
		"Access-Control-Max-Age":           "600",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}
	if r := pre("https://evil.example.com", "GET", ""); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin = %s %v, want 403 without CORS headers", describe(r), r.header)
	}
	if r := pre("https://app.example.com", "DELETE", ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("preflight for a method the route does not take = %s, want 405", describe(r))
	}
	r = g.do(t, http.MethodGet, "/api/v1/titles", header("Origin", "https://app.example.com"), nil)
	if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(r.header.Get("Vary"), "Origin") ||
		!strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("GET from an allowed origin: headers %v", r.header)
	}
	r = g.do(t, http.MethodGet, "/api/v1/titles", header("Origin", "https://evil.example.com"), nil)
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin: Access-Control-Allow-Origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	for _, bad := range [][]string{{"app.example.com"}, {"https://app.example.com/path"}, {"ftp://x"}} {
		if _, err := New(Config{CORSOrigins: bad}, peers.NewDialer(nil), nil); err == nil {
			t.Errorf("New with CORS origins %q = nil error", bad)
		}
	}
	if _, err := New(Config{CORSOrigins: []string{"*"}, CORSAllowCredentials: true}, peers.NewDialer(nil), nil); err == nil {
		t.Error("New with credentials for any origin = nil error")
	}
}

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:1234", nil, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"6.6.6.6"}, "192.0.2.1"}, // not a trusted peer
		{"10.0.0.5:1234", []string{"198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.5:1234", []string{"6.6.6.6, 198.51.100.7, 10.0.0.9"}, "198.51.100.7"},
		{"10.0.0.5:1234", []string{"6.6.6.6", "198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.5:1234", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"10.0.0.5:1234", []string{"garbage, 198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.5:1234", []string{"198.51.100.7, garbage"}, "10.0.0.5"},
		{"10.0.0.5:1234", nil, "10.0.0.5"},
		{"[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
		{"pipe", nil, ""},
	}
	for _, tt := range tests {
		if got := clientAddr(tt.remote, tt.xff, trusted); got != tt.want {
			t.Errorf("clientAddr(%q, %q) = %q, want %q", tt.remote, tt.xff, got, tt.want)
		}
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.5:1", "1.2.3.4, 10.0.0.1")
	f.Add("[::1]:80", "garbage,,")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got := clientAddr(remote, []string{xff}, trusted)
		if got == "" {
			return
		}
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("clientAddr(%q, %q) = %q, not an address", remote, xff, got)
		}
		if !strings.Contains(remote, got) && !strings.Contains(xff, got) && !strings.HasPrefix(remote, "[::ffff:") {
			t.Fatalf("clientAddr(%q, %q) = %q, from nowhere", remote, xff, got)
		}
	})
}

func FuzzBodyField(f *testing.F) {
	f.Add(`{"email":"A@B.c"}`, "email")
	f.Add(`{"email":5}`, "email")
	f.Add(`[`, "email")
	f.Fuzz(func(t *testing.T, body, field string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		v, err := bodyField(r, field)
		if err != nil {
			t.Fatalf("bodyField(%q) error %v", body, err)
		}
		if v != "" && len(v) != 32 {
			t.Fatalf("bodyField(%q, %q) = %q, want a 32-digit hash", body, field, v)
		}
		rest, _ := io.ReadAll(r.Body)
		if string(rest) != body {
			t.Fatalf("body after bodyField = %q, want %q kept for the upstream", rest, body)
		}
	})
}

// TestReadinessDegraded makes a non-core upstream unreachable: the gateway
// stays ready and names it; a core one makes it not ready.
func TestReadinessDegraded(t *testing.T) {
	u := startUpstream(t)
	dead := deadAddr(t)
	build := func(down string) *Gateway {
		table := peers.Table{}
		for _, up := range upstreams {
			table[up.service] = []string{u.addr}
		}
		table[down] = []string{dead}
		d := peers.NewDialer(table)
		t.Cleanup(func() { d.Close() })
		g, err := New(Config{}, d, nil)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := build("billing")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Status   string
		Degraded []string
	}
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 200 || body.Status != "ok" || !slices.Equal(body.Degraded, []string{"billing"}) {
		t.Errorf("/readyz with billing down = %d %s, want 200 naming billing as degraded", rec.Code, rec.Body)
	}
	if err := build("catalog").Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "catalog") {
		t.Errorf("Ready with catalog down = %v, want an error naming catalog", err)
	}
}

// metricValue reads a counter or gauge.
func metricValue(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
