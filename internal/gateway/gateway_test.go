package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/marquee-tv/marquee/internal/platform/peers"
)

func TestListTitles(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)

	tests := []struct {
		path      string
		wantIDs   []string
		wantToken string
	}{
		{"/api/v1/titles", []string{"t1", "t2", "t3"}, ""},
		{"/api/v1/titles?page_size=2", []string{"t1", "t2"}, "2"},
		{"/api/v1/titles?page_size=2&page_token=2", []string{"t3"}, ""},
	}
	for _, tt := range tests {
		r := g.get(t, tt.path)
		if r.status != http.StatusOK {
			t.Errorf("GET %s = %s, want 200", tt.path, describe(r))
			continue
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		var keys []string
		for k := range body {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"next_page_token", "titles"}; !slices.Equal(keys, want) {
			t.Errorf("GET %s keys = %v, want %v", tt.path, keys, want)
		}
		var token string
		json.Unmarshal(body["next_page_token"], &token)
		if token != tt.wantToken {
			t.Errorf("GET %s next_page_token = %q, want %q", tt.path, token, tt.wantToken)
		}
		var titles []map[string]any
		json.Unmarshal(body["titles"], &titles)
		var ids []string
		for _, ti := range titles {
			id, _ := ti["id"].(string)
			ids = append(ids, id)
		}
		if !slices.Equal(ids, tt.wantIDs) {
			t.Errorf("GET %s ids = %v, want %v", tt.path, ids, tt.wantIDs)
		}
	}
}

func TestTitleFieldNames(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)

	r := g.get(t, "/api/v1/titles/t1")
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/titles/t1 = %s, want 200", describe(r))
	}
	var title map[string]any
	if err := json.Unmarshal(r.body, &title); err != nil {
		t.Fatal(err)
	}
	// The body is the title itself (response_body: "title"), with proto
	// field names, unset fields included.
	for _, k := range []string{"id", "name", "kind", "synopsis", "year", "genres", "maturity_rating",
		"duration_seconds", "artwork_url", "rentable", "available_from", "available_until", "seasons",
		"media_asset_id", "available"} {
		if _, ok := title[k]; !ok {
			t.Errorf("GET /api/v1/titles/t1 lacks %q: %s", k, r.body)
		}
	}
	for _, k := range []string{"maturityRating", "durationSeconds", "title"} {
		if _, ok := title[k]; ok {
			t.Errorf("GET /api/v1/titles/t1 has %q, want proto names only", k)
		}
	}
	if got := title["maturity_rating"]; got != "PG-13" {
		t.Errorf("maturity_rating = %v, want PG-13", got)
	}
}

func TestErrors(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	big := strings.Repeat("x", DefaultMaxBodyBytes+1)

	tests := []struct {
		method, path string
		body         string
		wantStatus   int
		wantCode     string
		wantMessage  string // "" means any
		wantHeader   map[string]string
	}{
		{"GET", "/api/v1/titles/missing", "", 404, "NOT_FOUND", "title missing not found", nil},
		{"GET", "/api/v1/titles/invalid", "", 400, "INVALID_ARGUMENT", "id is malformed", nil},
		{"GET", "/api/v1/titles?page_size=abc", "", 400, "INVALID_ARGUMENT", "", nil},
		{"GET", "/api/v1/titles?page_size=1000", "", 400, "INVALID_ARGUMENT", "page_size must be 1..100", nil},
		{"GET", "/api/v1/titles/unauthenticated", "", 401, "UNAUTHENTICATED", "sign in first",
			map[string]string{"WWW-Authenticate": `Bearer realm="marquee"`}},
		{"GET", "/api/v1/titles/restricted", "", 403, "MATURITY_RESTRICTED", "above the profile's maturity level", nil},
		{"GET", "/api/v1/titles/not-entitled", "", 403, "NOT_ENTITLED", "no plan or rental covers this title", nil},
		{"GET", "/api/v1/titles/streams", "", 409, "TOO_MANY_STREAMS", "all 2 streams of the plan are in use", nil},
		{"GET", "/api/v1/titles/exists", "", 409, "ALREADY_EXISTS", "title exists", nil},
		{"GET", "/api/v1/titles/precondition", "", 422, "FAILED_PRECONDITION", "title is not rentable", nil},
		{"GET", "/api/v1/titles/busy", "", 429, "RESOURCE_EXHAUSTED", "slow down",
			map[string]string{"Retry-After": "3"}},
		{"GET", "/api/v1/titles/boom", "", 500, "INTERNAL", msgInternal, nil},
		{"GET", "/api/v1/titles/down", "", 503, "PROCESSOR_UNAVAILABLE", msgUnavailable, nil},
		{"GET", "/api/v1/titles/bad-reason", "", 404, "NOT_FOUND", "gone", nil},
		{"GET", "/api/v1/nope", "", 404, "NOT_FOUND", "", nil},
		{"GET", "/nope", "", 404, "NOT_FOUND", "", nil},
		{"GET", "/api/v1/titles/", "", 404, "NOT_FOUND", "", nil},
		{"POST", "/api/v1/titles", "{}", 405, "METHOD_NOT_ALLOWED", "", map[string]string{"Allow": "GET"}},
		{"DELETE", "/api/v1/titles/t1", "", 405, "METHOD_NOT_ALLOWED", "", map[string]string{"Allow": "GET"}},
		{"GET", "/api/v1/account", "", 401, "UNAUTHENTICATED", "", map[string]string{"WWW-Authenticate": `Bearer realm="marquee"`}},
		{"GET", "/api/v1/../v1/titles", "", 404, "NOT_FOUND", "", nil},
		{"GET", "/api/v1//titles", "", 404, "NOT_FOUND", "", nil},
		{"POST", "/api/v1/titles", big, 413, "PAYLOAD_TOO_LARGE", "", nil},
		{"POST", "/nope", big, 413, "PAYLOAD_TOO_LARGE", "", nil},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		in := tt.method + " " + tt.path
		r := g.do(t, tt.method, tt.path, nil, body)
		if r.status != tt.wantStatus {
			t.Errorf("%s = %s, want %d", in, describe(r), tt.wantStatus)
			continue
		}
		e := errorOf(t, r)
		if e.Code != tt.wantCode {
			t.Errorf("%s code = %q, want %q", in, e.Code, tt.wantCode)
		}
		if tt.wantMessage != "" && e.Message != tt.wantMessage {
			t.Errorf("%s message = %q, want %q", in, e.Message, tt.wantMessage)
		}
		if e.Message == "" {
			t.Errorf("%s message is empty", in)
		}
		if id := r.header.Get("X-Request-Id"); e.RequestID == "" || e.RequestID != id {
			t.Errorf("%s request_id = %q, want the X-Request-Id %q", in, e.RequestID, id)
		}
		for k, want := range tt.wantHeader {
			if got := r.header.Get(k); got != want {
				t.Errorf("%s header %s = %q, want %q", in, k, got, want)
			}
		}
		for _, leak := range []string{"hunter2", "10.0.0.7", "pq:"} {
			if bytes.Contains(r.body, []byte(leak)) {
				t.Errorf("%s body %s leaks %q", in, r.body, leak)
			}
		}
	}
}

// TestBodyDecoding posts bodies to a transcoded route (login): what does
// not decode is refused before the upstream, which sees nothing.
func TestBodyDecoding(t *testing.T) {
	u := startUpstream(t)
	const limit = 1024
	g := newGateway(t, u.addr, Config{MaxBodyBytes: limit}, nil)

	tests := []struct {
		name       string
		body       io.Reader
		wantStatus int
		wantCode   string
	}{
		{"known fields", strings.NewReader(`{"email":"a@example.com","password":"0123456789"}`), 200, ""},
		{"unknown field", strings.NewReader(`{"email":"a@example.com","nope":1}`), 400, "INVALID_ARGUMENT"},
		{"malformed", strings.NewReader(`{"email":`), 400, "INVALID_ARGUMENT"},
		{"wrong type", strings.NewReader(`{"email":5}`), 400, "INVALID_ARGUMENT"},
		{"not an object", strings.NewReader(`[1,2]`), 400, "INVALID_ARGUMENT"},
		// io.MultiReader hides the length: the body goes chunked, and the
		// limit is found while reading it.
		{"streamed over limit", io.MultiReader(strings.NewReader(`{"email":"` + strings.Repeat("x", 2*limit) + `"}`)), 413, "PAYLOAD_TOO_LARGE"},
		{"over limit", strings.NewReader(`{"email":"` + strings.Repeat("x", 2*limit) + `"}`), 413, "PAYLOAD_TOO_LARGE"},
	}
	for _, tt := range tests {
		before := u.calls()
		r := g.do(t, http.MethodPost, "/api/v1/auth/login", header("Content-Type", "application/json"), tt.body)
		if r.status != tt.wantStatus {
			t.Errorf("POST /api/v1/auth/login (%s) = %s, want %d", tt.name, describe(r), tt.wantStatus)
			continue
		}
		if tt.wantCode == "" {
			if u.calls() != before+1 {
				t.Errorf("POST /api/v1/auth/login (%s): upstream calls %d, want %d", tt.name, u.calls(), before+1)
			}
			continue
		}
		if e := errorOf(t, r); e.Code != tt.wantCode {
			t.Errorf("POST /api/v1/auth/login (%s) code = %q, want %q", tt.name, e.Code, tt.wantCode)
		}
		if u.calls() != before {
			t.Errorf("POST /api/v1/auth/login (%s): the upstream was called", tt.name)
		}
	}
}

func TestRequestIDs(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	max := strings.Repeat("a", 64)

	tests := []struct {
		sent     []string
		wantEcho bool
	}{
		{nil, false},
		{[]string{"req-1.A_b"}, true},
		{[]string{max}, true},
		{[]string{max + "b"}, false},
		{[]string{""}, false},
		{[]string{"has space"}, false},
		{[]string{"<script>"}, false},
		{[]string{"caf\u00e9"}, false},
		{[]string{"first", "second"}, true}, // the first one counts
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/titles", "/api/v1/titles/missing", "/nope", "/healthz"} {
			h := http.Header{"X-Request-Id": tt.sent}
			r := g.do(t, http.MethodGet, path, h, nil)
			got := r.header.Get("X-Request-Id")
			if tt.wantEcho && got != tt.sent[0] {
				t.Errorf("GET %s with X-Request-Id %q = %q, want it echoed", path, tt.sent, got)
			}
			if !tt.wantEcho && (!saneID(got) || slices.Contains(tt.sent, got)) {
				t.Errorf("GET %s with X-Request-Id %q = %q, want a new sane id", path, tt.sent, got)
			}
			if len(r.header.Values("X-Request-Id")) != 1 {
				t.Errorf("GET %s X-Request-Id headers = %q, want one", path, r.header.Values("X-Request-Id"))
			}
			if r.status >= 400 {
				if e := errorOf(t, r); e.RequestID != got {
					t.Errorf("GET %s error request_id = %q, want %q", path, e.RequestID, got)
				}
			}
			if strings.HasPrefix(path, "/api/v1/titles") {
				if md := u.catalog.call(t, got).md.Get("x-request-id"); !slices.Equal(md, []string{got}) {
					t.Errorf("GET %s upstream x-request-id = %q, want [%q]", path, md, got)
				}
			}
		}
	}
}

func TestHeaderForwarding(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	h := header(
		"X-Request-Id", "fwd-1",
		"Authorization", u.bearer(t, "acc-1", "viewer", "admin"),
		"Idempotency-Key", "key-1",
		"Traceparent", traceparent,
		"Tracestate", "vendor=1",
		// none of these may reach the upstream
		"X-Marquee-Account-Id", "acct-evil",
		"X-MARQUEE-ROLES", "admin",
		"X-Marquee-Client-Addr", "6.6.6.6",
		"Grpc-Metadata-X-Marquee-Account-Id", "acct-evil",
		"Grpc-Metadata-Foo", "bar",
		"Grpc-Timeout", "1n", // would time the call out at once
		"X-Forwarded-For", "6.6.6.6",
		"Cookie", "session=1",
		"X-Other", "1",
	)
	r := g.do(t, http.MethodGet, "/api/v1/titles", h, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/titles = %s, want 200", describe(r))
	}
	md := u.catalog.call(t, "fwd-1").md
	want := map[string][]string{
		"idempotency-key":       {"key-1"},
		"tracestate":            {"vendor=1"},
		"x-request-id":          {"fwd-1"},
		"x-forwarded-for":       {"127.0.0.1"},
		"x-marquee-account-id":  {"acc-1"},
		"x-marquee-roles":       {"viewer,admin"},
		"x-marquee-session-id":  {"sid-acc-1"},
		"x-marquee-client-addr": {"127.0.0.1"},
	}
	for k, v := range want {
		if got := md.Get(k); !slices.Equal(got, v) {
			t.Errorf("upstream metadata %s = %q, want %q", k, got, v)
		}
	}
	if tp := md.Get("traceparent"); len(tp) != 1 || !strings.Contains(tp[0], "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Errorf("upstream traceparent = %q, want one in trace 4bf92f3577b34da6a3ce929d0e0e4736", tp)
	}
	allowed := []string{"idempotency-key", "traceparent", "tracestate", "x-request-id",
		"x-forwarded-for", "x-forwarded-host",
		"x-marquee-account-id", "x-marquee-roles", "x-marquee-session-id", "x-marquee-client-addr",
		// set by gRPC itself
		":authority", "content-type", "user-agent", "grpc-accept-encoding", "grpc-timeout"}
	for k := range md {
		if !slices.Contains(allowed, k) {
			t.Errorf("upstream metadata has %s = %q, want only the allow-list", k, md[k])
		}
	}

	// Anonymous on an optional route: only the client address.
	r = g.do(t, http.MethodGet, "/api/v1/titles", header("X-Request-Id", "fwd-2", "X-Marquee-Account-Id", "acct-evil"), nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/titles anonymous = %s, want 200", describe(r))
	}
	md = u.catalog.call(t, "fwd-2").md
	if got := md.Get("x-marquee-account-id"); len(got) != 0 {
		t.Errorf("anonymous upstream x-marquee-account-id = %q, want none", got)
	}
	if got := md.Get("x-marquee-client-addr"); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Errorf("anonymous upstream x-marquee-client-addr = %q, want [127.0.0.1]", got)
	}
}

func TestDeadline(t *testing.T) {
	u := startUpstream(t)

	g := newGateway(t, u.addr, Config{}, nil)
	r := g.do(t, http.MethodGet, "/api/v1/titles", header("X-Request-Id", "dl-1"), nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/titles = %s, want 200", describe(r))
	}
	if c := u.catalog.call(t, "dl-1"); !c.hasDeadline || c.remaining <= 0 || c.remaining > DefaultRequestTimeout {
		t.Errorf("upstream deadline = %v in %v, want within %v", c.hasDeadline, c.remaining, DefaultRequestTimeout)
	}

	short := newGateway(t, u.addr, Config{RequestTimeout: 100 * time.Millisecond}, nil)
	r = short.get(t, "/api/v1/titles/slow")
	if r.status != http.StatusGatewayTimeout {
		t.Fatalf("GET /api/v1/titles/slow = %s, want 504", describe(r))
	}
	if e := errorOf(t, r); e.Code != "DEADLINE_EXCEEDED" {
		t.Errorf("GET /api/v1/titles/slow code = %q, want DEADLINE_EXCEEDED", e.Code)
	}
}

func TestGzip(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)

	plain := g.get(t, "/api/v1/titles")
	if enc := plain.header.Get("Content-Encoding"); enc != "" {
		t.Errorf("GET /api/v1/titles without Accept-Encoding: Content-Encoding = %q, want none", enc)
	}
	if len(plain.body) < 1024 {
		t.Fatalf("response of %d bytes is too small for this test", len(plain.body))
	}

	r := g.do(t, http.MethodGet, "/api/v1/titles", header("Accept-Encoding", "gzip"), nil)
	if enc := r.header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("GET /api/v1/titles with Accept-Encoding gzip: Content-Encoding = %q, want gzip", enc)
	}
	if !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary = %q, want Accept-Encoding", r.header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain.body) {
		t.Errorf("gunzipped body = %q, want %q", got, plain.body)
	}
	if len(r.body) >= len(plain.body) {
		t.Errorf("gzip body %d bytes, want fewer than %d", len(r.body), len(plain.body))
	}
}

func TestSecurityHeaders(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	for _, path := range []string{"/api/v1/titles", "/api/v1/titles/missing", "/nope", "/healthz", "/api/openapi.json"} {
		r := g.get(t, path)
		for k, want := range securityHeaders {
			if got := r.header.Get(k); got != want[0] {
				t.Errorf("GET %s header %s = %q, want %q", path, k, got, want)
			}
		}
	}
}

func TestReadiness(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	ctx := context.Background()

	check := func(state string, want int) {
		t.Helper()
		r := g.get(t, "/readyz")
		if r.status != want {
			t.Errorf("GET /readyz with upstream %s = %s, want %d", state, describe(r), want)
		}
		if want != http.StatusOK {
			if e := errorOf(t, r); e.Code != "UNAVAILABLE" {
				t.Errorf("GET /readyz with upstream %s code = %q, want UNAVAILABLE", state, e.Code)
			}
		}
		if err := g.Ready(ctx); (err == nil) != (want == http.StatusOK) {
			t.Errorf("Ready() with upstream %s = %v", state, err)
		}
		if r := g.get(t, "/healthz"); r.status != http.StatusOK {
			t.Errorf("GET /healthz with upstream %s = %s, want 200", state, describe(r))
		}
	}
	check("up", http.StatusOK)
	u.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	check("not serving", http.StatusServiceUnavailable)
	u.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	check("serving again", http.StatusOK)
	g.Drain()
	check("up, gateway draining", http.StatusServiceUnavailable)
	if err := g.Ready(ctx); !errors.Is(err, ErrDraining) {
		t.Errorf("Ready() after Drain = %v, want ErrDraining", err)
	}
	if r := g.get(t, "/api/v1/titles"); r.status != http.StatusOK {
		t.Errorf("GET /api/v1/titles while draining = %s, want 200", describe(r))
	}

	g = newGateway(t, u.addr, Config{}, nil)
	u.server.Stop()
	check("stopped", http.StatusServiceUnavailable)
}

func TestDeadUpstream(t *testing.T) {
	g := newGateway(t, deadAddr(t), Config{}, nil)
	for _, path := range []string{"/api/v1/titles", "/api/v1/titles/t1", "/readyz"} {
		r := g.get(t, path)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with the catalog down = %s, want 503", path, describe(r))
			continue
		}
		e := errorOf(t, r)
		if e.Code != "UNAVAILABLE" {
			t.Errorf("GET %s with the catalog down: code = %q, want UNAVAILABLE", path, e.Code)
		}
		if strings.Contains(e.Message, "127.0.0.1") || strings.Contains(e.Message, "dial") {
			t.Errorf("GET %s with the catalog down: message %q leaks the connection error", path, e.Message)
		}
	}
	if r := g.get(t, "/healthz"); r.status != http.StatusOK {
		t.Errorf("GET /healthz with the catalog down = %s, want 200", describe(r))
	}
}

func TestAccessLog(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)

	bearer := u.bearer(t, "acc-1")
	h := header(
		"X-Request-Id", "log-1",
		"Authorization", bearer,
		"Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	)
	r := g.do(t, http.MethodGet, "/api/v1/titles/t2?q=private-query", h, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/v1/titles/t2 = %s, want 200", describe(r))
	}
	line := g.accessLine(t, "log-1")
	want := map[string]any{
		"method":     "GET",
		"path":       "/api/v1/titles/t2",
		"route":      "/api/v1/titles/{id}",
		"status":     float64(200),
		"bytes":      float64(len(r.body)),
		"request_id": "log-1",
		"trace_id":   "4bf92f3577b34da6a3ce929d0e0e4736",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("access log duration_ms = %v, want a number", line["duration_ms"])
	}

	r = g.do(t, http.MethodGet, "/api/v1/titles/boom", header("X-Request-Id", "log-2"), nil)
	if line := g.accessLine(t, "log-2"); line["error_code"] != "INTERNAL" || line["status"] != float64(500) {
		t.Errorf("access log of a 500 = %v, want status 500 and error_code INTERNAL", line)
	}
	if !strings.Contains(g.logs.String(), "hunter2") {
		t.Errorf("the upstream's error is not logged for operators:\n%s", g.logs.String())
	}

	for _, secret := range []string{strings.TrimPrefix(bearer, "Bearer "), "private-query"} {
		if strings.Contains(g.logs.String(), secret) {
			t.Errorf("logs contain %q:\n%s", secret, g.logs.String())
		}
	}
}

func TestMetrics(t *testing.T) {
	u := startUpstream(t)
	reg := prometheus.NewRegistry()
	g := newGateway(t, u.addr, Config{Registerer: reg}, nil)
	for _, path := range []string{"/api/v1/titles/t1", "/api/v1/titles/t2", "/api/v1/titles/missing", "/nope"} {
		g.get(t, path)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var observations uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "marquee_gateway_http_requests_total":
				counts[labels["route"]+" "+labels["method"]+" "+labels["code"]] = m.GetCounter().GetValue()
			case "marquee_gateway_http_request_duration_seconds":
				observations += m.GetHistogram().GetSampleCount()
			}
		}
	}
	want := map[string]float64{
		"/api/v1/titles/{id} GET 200": 2,
		"/api/v1/titles/{id} GET 404": 1,
		"unmatched GET 404":           1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("requests_total{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if observations != 4 {
		t.Errorf("request_duration_seconds count = %d, want 4", observations)
	}
}

func TestOpenAPI(t *testing.T) {
	u := startUpstream(t)
	doc := []byte(`{"swagger":"2.0","info":{"title":"marquee/catalog/v1/catalog.proto","version":"1"},
		"paths":{"/api/v1/titles":{"get":{"responses":{"default":{"schema":{"$ref":"#/definitions/rpcStatus"}}}}}},
		"definitions":{"rpcStatus":{"type":"object","properties":{"code":{"type":"integer"}}},"v1Title":{"type":"object"}}}`)
	g := newGateway(t, u.addr, Config{OpenAPI: doc}, nil)

	r := g.get(t, "/api/openapi.json")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json = %s (%s), want 200 application/json", describe(r), r.header.Get("Content-Type"))
	}
	var got struct {
		Swagger     string
		Info        struct{ Title, Version string }
		Paths       map[string]any
		Definitions map[string]struct {
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Swagger != "2.0" || got.Info.Title != openAPITitle || got.Info.Version != "1" || got.Paths["/api/v1/titles"] == nil {
		t.Errorf("GET /api/openapi.json = %+v, want the document with title %q", got, openAPITitle)
	}
	if _, ok := got.Definitions["rpcStatus"].Properties["error"]; !ok {
		t.Errorf("rpcStatus = %v, want the gateway's error shape", got.Definitions["rpcStatus"])
	}
	if _, ok := got.Definitions["v1Title"]; !ok {
		t.Errorf("definitions = %v, want v1Title kept", got.Definitions)
	}

	etag := r.header.Get("ETag")
	if r := g.do(t, http.MethodGet, "/api/openapi.json", header("If-None-Match", etag), nil); r.status != http.StatusNotModified {
		t.Errorf("GET /api/openapi.json with If-None-Match %s = %d, want 304", etag, r.status)
	}

	none := newGateway(t, u.addr, Config{}, nil)
	if r := none.get(t, "/api/openapi.json"); r.status != http.StatusNotFound {
		t.Errorf("GET /api/openapi.json without a document = %s, want 404", describe(r))
	}
}

// TestGeneratedOpenAPI checks that the document the program passes is
// accepted.
func TestGeneratedOpenAPI(t *testing.T) {
	doc, err := os.ReadFile("../../gen/openapi/marquee.swagger.json")
	if err != nil {
		t.Skipf("generated document: %v", err)
	}
	if _, err := rewriteOpenAPI(doc); err != nil {
		t.Errorf("rewriteOpenAPI(gen/openapi/marquee.swagger.json) = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	addr := deadAddr(t)
	dialer := func() Dialer { return peers.NewDialer(peers.Table{"catalog": {addr}}) }
	reg := prometheus.NewRegistry()
	if _, err := New(Config{Registerer: reg}, dialer(), nil); err != nil {
		t.Fatalf("New: %v", err)
	}
	tests := []struct {
		name  string
		cfg   Config
		peers Dialer
	}{
		{"negative timeout", Config{RequestTimeout: -1}, dialer()},
		{"negative body limit", Config{MaxBodyBytes: -1}, dialer()},
		{"OpenAPI not JSON", Config{OpenAPI: []byte("swagger: 2.0")}, dialer()},
		{"OpenAPI not swagger 2.0", Config{OpenAPI: []byte(`{"openapi":"3.1.0"}`)}, dialer()},
		{"OpenAPI with trailing data", Config{OpenAPI: []byte(`{"swagger":"2.0"} {}`)}, dialer()},
		{"metrics registered twice", Config{Registerer: reg}, dialer()},
		{"nil dialer", Config{}, nil},
		{"dialer failing", Config{}, failingDialer{}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.peers, nil); err == nil {
			t.Errorf("New(%s) = nil error, want one", tt.name)
		}
	}
}

type failingDialer struct{}

func (failingDialer) Conn(service string) (*grpc.ClientConn, error) {
	return nil, errors.New("no such service")
}

func TestPanicRecovery(t *testing.T) {
	u := startUpstream(t)
	home := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	g := newGateway(t, u.addr, Config{Home: home}, nil)
	r := g.do(t, http.MethodGet, "/api/v1/home", header("Authorization", u.bearer(t, "acc-1")), nil)
	if r.status != http.StatusInternalServerError {
		t.Fatalf("GET /api/v1/home = %s, want 500", describe(r))
	}
	if e := errorOf(t, r); e.Code != "INTERNAL" || strings.Contains(e.Message, "kaboom") {
		t.Errorf("GET /api/v1/home error = %+v, want INTERNAL without the panic value", e)
	}
	if !strings.Contains(g.logs.String(), "kaboom") {
		t.Errorf("the panic is not logged:\n%s", g.logs.String())
	}
}

func TestSuccessStatus(t *testing.T) {
	mux := runtime.NewServeMux()
	tests := []struct {
		method string
		want   int
	}{
		{"/marquee.orders.v1.OrdersService/CreateOrder", http.StatusAccepted},
		{"/marquee.identity.v1.IdentityService/SignUp", http.StatusCreated},
		{"/marquee.catalog.v1.CatalogService/GetTitle", 0},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodPost, "/x", nil)
		ctx, err := runtime.AnnotateContext(req.Context(), mux, req, tt.method)
		if err != nil {
			t.Fatal(err)
		}
		w := &recorder{ResponseWriter: httptest.NewRecorder()}
		if err := setSuccessStatus(ctx, w, nil); err != nil {
			t.Fatal(err)
		}
		if w.status != tt.want {
			t.Errorf("setSuccessStatus(%s) = %d, want %d", tt.method, w.status, tt.want)
		}
	}
}

// FuzzServeHTTP sends arbitrary requests through the whole gateway, up to
// a live catalog, and checks what every answer must have.
func FuzzServeHTTP(f *testing.F) {
	f.Add(0, "/api/v1/titles", "page_size=2", "req-1", "", "")
	f.Add(0, "/api/v1/titles", "page_size=abc&page_token=%ff", "bad id", "", "Bearer x.y.z")
	f.Add(0, "/api/v1/titles/streams", "", "", "", "")
	f.Add(0, "/api/v1/titles/\xff", "", "", "", "")
	f.Add(1, "/api/v1/titles", "", "", `{"x":1}`, "")
	f.Add(1, "/api/v1/auth/login", "", "", `{"email":"a@b.c","password":"x"}`, "")
	f.Add(1, "/api/v1/auth/login", "", "", `{"email":`, "")
	f.Add(0, "/api/v1/account", "", "", "", "Bearer mq_key")
	f.Add(4, "/api/v1/titles", "", "", "", "")
	f.Add(0, "/media/../api/v1/account", "", "", "", "")
	f.Add(2, "/nope", "", strings.Repeat("a", 65), "", "")
	f.Add(0, "/healthz", "", "", "", "")
	f.Add(0, "/api/openapi.json", "", "", "", "")
	f.Add(0, "", "", "", "", "")
	u := startUpstream(f)
	g := newGateway(f, u.addr, Config{RequestTimeout: 50 * time.Millisecond, MaxBodyBytes: 64}, nil)
	methods := []string{"GET", "POST", "DELETE", "PATCH", "OPTIONS", "BREW"}

	f.Fuzz(func(t *testing.T, method int, path, query, id, body, authz string) {
		before := u.calls()
		req := &http.Request{
			Method:     methods[uint(method)%uint(len(methods))],
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header: http.Header{"X-Request-Id": {id}, "X-Marquee-Account-Id": {"evil"}, "Authorization": {authz},
				"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"GET"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Host:          "gateway.test",
			RemoteAddr:    "192.0.2.1:1234",
		}
		req = req.WithContext(context.Background())
		w := httptest.NewRecorder()
		g.Gateway.ServeHTTP(w, req)
		in := fmt.Sprintf("%s %q ? %q (id %q, body %q, authorization %q)", req.Method, path, query, id, body, authz)
		if w.Code == http.StatusUnauthorized || w.Code == http.StatusNotFound && !strings.HasPrefix(path, "/api/v1/titles/") {
			if u.calls() != before {
				t.Fatalf("%s = %d, but the upstream was called", in, w.Code)
			}
		}
		if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%s = 401 without a Bearer challenge", in)
		}

		got := w.Header().Get("X-Request-Id")
		if !saneID(got) || (got == id) != saneID(id) {
			t.Fatalf("%s: X-Request-Id = %q", in, got)
		}
		for k, v := range securityHeaders {
			if w.Header().Get(k) != v[0] {
				t.Fatalf("%s: %s = %q, want %q", in, k, w.Header().Get(k), v)
			}
		}
		switch {
		case w.Code == 200 || w.Code == 204 || w.Code == 304:
		case w.Code == 500 && strings.Contains(path, "boom"): // the fake's own failure
		case w.Code >= 400 && w.Code != 500:
			e := errorOf(t, response{status: w.Code, header: w.Header(), body: w.Body.Bytes()})
			if e.RequestID != got || !upperSnake(e.Code) || e.Message == "" {
				t.Fatalf("%s: error %+v", in, e)
			}
		default:
			t.Fatalf("%s = %d %s", in, w.Code, w.Body)
		}
	})
}
