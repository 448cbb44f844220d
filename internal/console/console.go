// Package console serves the operations address (127.0.0.1:9090 in
// marquee dev): the operator's web console, the control plane's mesh API
// and the console's own API (live topology from the sidecars' metrics,
// traces received over OTLP, event-stream lag), for admins only, and the
// public API passed through to the gateway, so that the tools (marquee
// saga, status, mesh) and an operator's browser find everything at one
// address.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
)

// Defaults of the optional Config fields.
const (
	DefaultScrapeInterval = 2 * time.Second
	DefaultMaxTraces      = 500
)

// Config is what the console serves.
type Config struct {
	// Mesh is the control plane's admin API, served under /api/v1/mesh/
	// to callers whose access token has the admin role.
	Mesh http.Handler
	// Gateway is the public API's base URL (http://127.0.0.1:8080): every
	// other path is passed to it, and its JWKS verifies access tokens.
	Gateway *url.URL
	Log     *slog.Logger

	// Instances lists the mesh's instances; the topology scrapes each
	// one's sidecar metrics address. Nil: the topology stays empty.
	Instances func() []controlplane.InstanceStatus
	// ScrapeInterval is how often the sidecars are scraped (default 2s).
	ScrapeInterval time.Duration
	// OTLPAddr is where the console receives traces over OTLP/gRPC
	// (plaintext; keep it on loopback). Empty: no receiver, and the trace
	// list says so.
	OTLPAddr string
	// MaxTraces bounds the traces kept in memory (default 500); the
	// least recently updated go first.
	MaxTraces int
	// NATSURL is the event bus, whose MARQUEE stream consumers the events
	// page shows. Empty: the page says no bus is configured.
	NATSURL string
}

// Console is the console's HTTP handler and the background work behind
// it: scraping the sidecars, receiving traces, watching the event bus.
// Serve it with ServeHTTP and start the work with Run.
type Console struct {
	cfg    Config
	mux    *http.ServeMux
	topo   *topology
	traces *traceStore
	events *eventWatch
	otlp   net.Listener
}

var _ http.Handler = (*Console)(nil)

// New returns the console. With cfg.OTLPAddr set it binds the OTLP
// listener now, so that a busy port fails the start; Run serves it.
func New(cfg Config) (*Console, error) {
	if cfg.Mesh == nil || cfg.Gateway == nil || cfg.Log == nil {
		return nil, errors.New("console: mesh handler, gateway URL and logger are required")
	}
	if cfg.Gateway.Scheme != "http" && cfg.Gateway.Scheme != "https" || cfg.Gateway.Host == "" {
		return nil, fmt.Errorf("console: gateway URL %q: want http://host:port", cfg.Gateway)
	}
	if cfg.ScrapeInterval < 0 || cfg.MaxTraces < 0 {
		return nil, errors.New("console: scrape interval and trace limit must not be negative")
	}
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = DefaultScrapeInterval
	}
	if cfg.MaxTraces == 0 {
		cfg.MaxTraces = DefaultMaxTraces
	}
	if cfg.NATSURL != "" {
		u, err := url.Parse(cfg.NATSURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("console: NATS URL %q: want nats://host:port", cfg.NATSURL)
		}
	}
	c := &Console{
		cfg:    cfg,
		topo:   newTopology(cfg.Instances, cfg.Log),
		traces: newTraceStore(cfg.MaxTraces),
		events: &eventWatch{url: cfg.NATSURL, log: cfg.Log},
	}
	if cfg.OTLPAddr != "" {
		ln, err := net.Listen("tcp", cfg.OTLPAddr)
		if err != nil {
			return nil, fmt.Errorf("console: OTLP receiver: %w", err)
		}
		c.otlp = ln
		c.traces.receiving = true
	}

	jwks := cfg.Gateway.JoinPath("/.well-known/jwks.json").String()
	client := &http.Client{Timeout: 5 * time.Second}
	keys := token.NewCache(func(ctx context.Context) (*token.Keyset, error) {
		return fetchJWKS(ctx, client, jwks)
	}, token.CacheOptions{})

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/console/topology", c.getTopology)
	api.HandleFunc("GET /api/v1/console/traces", c.getTraces)
	api.HandleFunc("GET /api/v1/console/traces/{id}", c.getTrace)
	api.HandleFunc("GET /api/v1/console/events", c.getEvents)
	api.HandleFunc("/api/v1/console/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such console endpoint")
	})

	mux := http.NewServeMux()
	mux.Handle("/api/v1/mesh/", admin(keys, cfg.Mesh))
	mux.Handle("/api/v1/console/", admin(keys, api))
	ui := uiHandler()
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET /console/", ui)
	proxy := httputil.NewSingleHostReverseProxy(cfg.Gateway)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		cfg.Log.Warn("gateway unreachable from the console", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "gateway_unavailable", "the gateway does not answer: "+err.Error())
	}
	mux.Handle("/", proxy)
	c.mux = mux
	return c, nil
}

// ServeHTTP serves the console address.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// OTLPAddr is the OTLP receiver's bound address, nil without one.
func (c *Console) OTLPAddr() net.Addr {
	if c.otlp == nil {
		return nil
	}
	return c.otlp.Addr()
}

// Run scrapes the sidecars, serves the OTLP receiver and keeps a
// connection to the event bus until ctx is done; it returns nil then.
func (c *Console) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.topo.run(ctx, c.cfg.ScrapeInterval) })
	if c.otlp != nil {
		g.Go(func() error { return serveOTLP(ctx, c.otlp, c.traces, c.cfg.Log) })
	}
	if c.cfg.NATSURL != "" {
		g.Go(func() error { return c.events.run(ctx) })
	}
	return g.Wait()
}

func fetchJWKS(ctx context.Context, c *http.Client, url string) (*token.Keyset, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("console: fetch signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("console: fetch signing keys: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("console: fetch signing keys: %w", err)
	}
	return token.ParseJWKS(b)
}

// admin lets through requests whose bearer token is a valid access token
// with the admin role, naming the admin to the mesh API as the actor.
func admin(keys *token.Cache, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="marquee"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "an admin access token is required (Authorization: Bearer ...)")
			return
		}
		claims, err := keys.Verify(r.Context(), tok, time.Now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="marquee", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is not valid: "+err.Error())
			return
		}
		if !slices.Contains(claims.Roles, "admin") {
			writeError(w, http.StatusForbidden, "permission_denied", "the operations API is for admins")
			return
		}
		r.Header.Set("X-Marquee-Actor", claims.AccountID)
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
