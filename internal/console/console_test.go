package console

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/token"
)

// gateway fakes the public API: its JWKS and one route.
func gateway(t *testing.T, key *ecdsa.PrivateKey) *httptest.Server {
	t.Helper()
	jwk, err := token.PublicJWK("k1", &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []token.JWK{jwk}})
	})
	mux.HandleFunc("GET /api/v1/titles", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"titles":[]}`)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// harness is a console in front of a fake gateway, with the key that
// signs its access tokens.
type harness struct {
	t   *testing.T
	key *ecdsa.PrivateKey
	gw  *httptest.Server
	c   *Console
	srv *httptest.Server
}

// newHarness builds a console from cfg, filling in the mesh API, the
// gateway and the logger; with run, its background work runs until the
// test ends.
func newHarness(t *testing.T, cfg Config, run bool) *harness {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, key: key, gw: gateway(t, key)}
	u, _ := url.Parse(h.gw.URL)
	if cfg.Mesh == nil {
		cfg.Mesh = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "mesh as "+r.Header.Get("X-Marquee-Actor"))
		})
	}
	cfg.Gateway, cfg.Log = u, slog.New(slog.DiscardHandler)
	h.c, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.c)
	t.Cleanup(h.srv.Close)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	return h
}

func (h *harness) sign(k *ecdsa.PrivateKey, roles ...string) string {
	h.t.Helper()
	now := time.Now()
	tok, err := token.Sign(token.Claims{AccountID: "acc-1", Roles: roles, SessionID: "s1", ID: "j1",
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(10 * time.Minute)}, "k1", k)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// do sends a request with the bearer token tok (none when empty).
func (h *harness) do(method, path, tok string) (int, http.Header, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// getJSON fetches path as an admin into out, failing unless it answers 200.
func (h *harness) getJSON(path string, out any) {
	h.t.Helper()
	status, _, b := h.do(http.MethodGet, path, h.sign(h.key, "admin"))
	if status != http.StatusOK {
		h.t.Fatalf("GET %s = %d %s, want 200", path, status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		h.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

func TestAuthAndPassThrough(t *testing.T) {
	h := newHarness(t, Config{}, false)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, path := range []string{"/api/v1/mesh/instances", "/api/v1/console/topology", "/api/v1/console/traces",
		"/api/v1/console/traces/0123456789abcdef0123456789abcdef", "/api/v1/console/events"} {
		for _, tc := range []struct {
			name, token string
			want        int
		}{
			{"no token", "", 401},
			{"garbage", "x.y.z", 401},
			{"wrong key", h.sign(other, "admin"), 401},
			{"not an admin", h.sign(h.key, "viewer"), 403},
		} {
			if status, _, b := h.do(http.MethodGet, path, tc.token); status != tc.want {
				t.Errorf("GET %s with %s = %d (%s), want %d", path, tc.name, status, b, tc.want)
			}
		}
	}
	if status, _, b := h.do(http.MethodGet, "/api/v1/mesh/instances", h.sign(h.key, "admin")); status != 200 || string(b) != "mesh as acc-1" {
		t.Errorf("mesh API as an admin = %d %q, want 200 %q", status, b, "mesh as acc-1")
	}
	if status, _, b := h.do(http.MethodGet, "/api/v1/console/nothing", h.sign(h.key, "admin")); status != 404 {
		t.Errorf("unknown console endpoint = %d %s, want 404", status, b)
	}
	if status, _, b := h.do(http.MethodGet, "/api/v1/titles", ""); status != 200 || string(b) != `{"titles":[]}` {
		t.Errorf("public API through the console = %d %q, want 200 {\"titles\":[]}", status, b)
	}

	h.gw.Close()
	if status, _, _ := h.do(http.MethodGet, "/api/v1/titles", ""); status != http.StatusBadGateway {
		t.Errorf("with the gateway down: %d, want 502", status)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:8080")
	mesh := http.NotFoundHandler()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no mesh", Config{Gateway: u, Log: log}},
		{"gateway without host", Config{Mesh: mesh, Gateway: &url.URL{Scheme: "http"}, Log: log}},
		{"bad NATS URL", Config{Mesh: mesh, Gateway: u, Log: log, NATSURL: "::"}},
		{"negative trace limit", Config{Mesh: mesh, Gateway: u, Log: log, MaxTraces: -1}},
		{"OTLP address in use or invalid", Config{Mesh: mesh, Gateway: u, Log: log, OTLPAddr: "127.0.0.1:99999"}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("New(%s) = nil error, want one", tc.name)
		}
	}
}
