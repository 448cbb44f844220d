// Package gateway is Marquee's HTTP front door. It routes each request by a
// routing table (package routes: a JSON file, reloaded without dropping a
// request), authenticates the caller (package auth: JWTs verified locally
// against identity's JWKS, API keys verified by identity, revoked sessions
// refused), rate-limits it (package ratelimit: GCRA per principal and route
// class, in process or shared through Redis), guards each upstream with a
// circuit breaker (package breaker), and dispatches it: JSON over HTTP
// transcoded into calls to the services' gRPC APIs following the
// google.api.http annotations in proto/, a streamed reverse proxy to plain
// HTTP upstreams (package httpproxy: the media endpoint), or the home
// aggregation handler the program provides. Every response gets the same
// edge behaviour: a request id, W3C trace context, one error shape, CORS for
// allowed origins, a deadline, a body limit, gzip, security headers, an
// access log line and metrics.
//
// Lifecycle: New wires everything and loads the routing configuration; the
// program serves the Gateway as an http.Handler, runs Run for the life of
// the program (routing-file watch and SIGHUP reloads, JWKS refresh, the
// session-revocation feed from NATS), asks Ready for readiness and calls
// Close at the end. On shutdown the program calls Drain (readiness fails
// from then on), waits for load balancers to notice, then shuts its
// http.Server down. Whoever owns the Dialer closes its connections.
//
// A request passes, outermost first: edge (server span and trace context,
// client address, untrusted headers stripped, request id, security
// headers, access log, metrics), panic recovery, then serve: the probes and the API
// description; the URL and body-size checks; CORS; the route lookup (404,
// 405, or the web app for a page outside the API's paths); authentication (401, 403); rate limits (429); the upstream's
// circuit breaker (503 CIRCUIT_OPEN); the route's deadline; the dispatch.
// Errors from any layer are written by writeError in errors.go, so they all
// have one shape: {"error":{"code","message","request_id"}}.
//
// Readiness: Ready requires the core upstreams (Config.CoreUpstreams,
// identity and catalog by default) that the current routes use, and the
// signing keys once any route authenticates; the other upstreams the routes
// use are checked too and reported as degraded on /readyz without failing
// it, so that one service down degrades only what depends on it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/gateway/auth"
	"github.com/marquee-tv/marquee/internal/gateway/breaker"
	"github.com/marquee-tv/marquee/internal/gateway/ratelimit"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
)

// upstreams lists the gRPC services the gateway exposes over HTTP, each with
// the name of the Marquee service that serves it. Adding a service is one
// line: its name, its gRPC service name and the generated
// Register<Service>Handler function.
var upstreams = []upstream{
	{"identity", identityv1.IdentityService_ServiceDesc.ServiceName, identityv1.RegisterIdentityServiceHandler},
	{"profiles", profilesv1.ProfilesService_ServiceDesc.ServiceName, profilesv1.RegisterProfilesServiceHandler},
	{"catalog", catalogv1.CatalogService_ServiceDesc.ServiceName, catalogv1.RegisterCatalogServiceHandler},
	{"recommendations", recommendationsv1.RecommendationsService_ServiceDesc.ServiceName, recommendationsv1.RegisterRecommendationsServiceHandler},
	{"billing", billingv1.BillingService_ServiceDesc.ServiceName, billingv1.RegisterBillingServiceHandler},
	{"orders", ordersv1.OrdersService_ServiceDesc.ServiceName, ordersv1.RegisterOrdersServiceHandler},
	{"playback", playbackv1.PlaybackService_ServiceDesc.ServiceName, playbackv1.RegisterPlaybackServiceHandler},
}

// upstream is one gRPC service behind the gateway.
type upstream struct {
	service  string // the Marquee service name, as the Dialer knows it
	grpcName string // the full gRPC service name
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// Defaults for the zero values of Config.
const (
	DefaultRequestTimeout      = 10 * time.Second
	DefaultMaxBodyBytes        = 1 << 20
	DefaultRoutesPollInterval  = 2 * time.Second
	DefaultJWKSRefreshInterval = 5 * time.Minute
)

// DefaultCoreUpstreams are the upstreams Ready requires by default.
var DefaultCoreUpstreams = []string{"identity", "catalog"}

// readyCheckTimeout bounds each upstream health check made by Ready.
const readyCheckTimeout = 2 * time.Second

// Config is what the program chooses about the gateway. The zero value is
// usable: every field has a default.
type Config struct {
	// RequestTimeout bounds each request whose route sets no timeout; it
	// is also the deadline of the gRPC calls the request makes. Zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted; a larger one is
	// answered 413. Zero means DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// OpenAPI is the API description served at GET /api/openapi.json: the
	// merged swagger 2.0 document generated into
	// gen/openapi/marquee.swagger.json. It is served as swagger 2.0, with two
	// edits made once by New: the title names the API, and the generated
	// error schema (google.rpc.Status, which the gateway never sends) is
	// replaced by the real error shape. Nil leaves the route answering 404.
	OpenAPI []byte
	// Registerer receives the gateway's Prometheus metrics. Nil means the
	// metrics are kept but registered nowhere.
	Registerer prometheus.Registerer

	// RoutesFile is the routing configuration file (see package routes).
	// New fails when it is not valid; Run reloads it when it changes
	// (polled every RoutesPollInterval) and on SIGHUP, keeping the current
	// routes when the new file is not valid. Empty means Routes.
	RoutesFile string
	// Routes is the routing configuration when RoutesFile is empty; nil
	// means routes.Default, which serves every route of the public API.
	Routes []byte
	// RoutesPollInterval is how often RoutesFile is checked for changes.
	// Zero means DefaultRoutesPollInterval.
	RoutesPollInterval time.Duration
	// HTTPUpstreams gives addresses (host:port) to the HTTP upstreams the
	// routing configuration declares, by name: "playback-media" is the
	// media endpoint of playback. They add to the addresses in the file.
	HTTPUpstreams map[string][]string
	// UpstreamHosts gives the Host header sent to an HTTP upstream, by
	// name, instead of the client's: with a mesh sidecar in between, the
	// upstream's addresses are the sidecar's and the Host names the
	// service ("playback-media" is "playback").
	UpstreamHosts map[string]string
	// Home serves GET /api/v1/home (route kind "home"), after
	// authentication; the caller is attached to the request context
	// (principal.Attached). Nil answers such routes 404.
	Home http.Handler
	// Web serves the web app: the GET and HEAD requests that match no
	// route and whose path is not under /api/, /media/ or /.well-known/
	// (those keep the API's JSON 404). It is not authenticated nor rate
	// limited, and its responses get the edge's headers and gzip. Nil
	// answers such requests 404 like any unknown path.
	Web http.Handler

	// CORSOrigins are the origins ("https://app.example.com") allowed to
	// call the API from a browser; "*" allows any origin, and then
	// credentials are never allowed. Empty allows no cross-origin call.
	CORSOrigins []string
	// CORSAllowCredentials lets allowed origins send cookies and
	// Authorization headers with cross-origin requests.
	CORSAllowCredentials bool
	// TrustedProxies are the networks of proxies in front of the gateway,
	// whose X-Forwarded-For is believed: the client address is the
	// rightmost address in it that is not a trusted proxy. Empty trusts no
	// one: the client address is the connection's.
	TrustedProxies []netip.Prefix

	// RedisURL, when set (redis://host:port/db), shares the rate limits
	// between gateway replicas through Redis; while Redis is unreachable
	// the gateway limits in process and says so (metrics, logs).
	RedisURL string
	// NATSURL, when set, is the NATS server whose
	// marquee.identity.session_revoked events make the gateway refuse the
	// access tokens of revoked sessions at once. Without it, a revoked
	// session's access tokens work until they expire (at most 15 minutes).
	NATSURL string

	// JWKSRefreshInterval is how often the signing keys are refetched.
	// Zero means DefaultJWKSRefreshInterval.
	JWKSRefreshInterval time.Duration
	// JWKSMinRefreshInterval is the least time between two refetches
	// caused by tokens naming an unknown key. Zero means 5 s.
	JWKSMinRefreshInterval time.Duration
	// APIKeyCacheTTL is how long an API key's owner is remembered. Zero
	// means 30 s.
	APIKeyCacheTTL time.Duration

	// CoreUpstreams are the upstreams Ready requires (when the routes use
	// them). Nil means DefaultCoreUpstreams.
	CoreUpstreams []string
}

// Dialer hands out the client connection to a Marquee service by name
// ("catalog"); the gateway never knows an address. *peers.Dialer is one.
// The connections must carry the otelgrpc stats handler for trace context
// to reach the services.
type Dialer interface {
	Conn(service string) (*grpc.ClientConn, error)
}

// Gateway is the HTTP handler of the public API. It is safe for concurrent
// use.
type Gateway struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics
	handler http.Handler
	gzip    func(http.Handler) http.HandlerFunc

	openapi     []byte // the rewritten document, or nil
	openapiETag string
	openapiH    http.Handler
	homeH       http.Handler // Config.Home with gzip, or nil
	webH        http.Handler // Config.Web with gzip, or nil

	// muxes are the transcoders, one per gRPC upstream; conns their
	// connections, for Ready.
	muxes    map[string]http.Handler
	conns    map[string]*grpc.ClientConn
	bindings map[string][]routes.Binding

	auth    *auth.Authenticator
	limiter ratelimit.Limiter
	local   *ratelimit.Local
	redis   *ratelimit.Redis
	cors    corsPolicy
	trusted []netip.Prefix

	// gen is the routing generation in force: swapped whole by a reload.
	gen atomic.Pointer[generation]
	// reloadMu serialises reloads; it guards breakers, routesAt and
	// seenAt.
	reloadMu sync.Mutex
	breakers map[string]*breaker.Breaker
	routesAt fileStamp // the routing file in force
	seenAt   fileStamp // the routing file last read

	draining atomic.Bool
}

// ErrDraining is what Ready returns once Drain was called.
var ErrDraining = errors.New("gateway: draining")

var _ http.Handler = (*Gateway)(nil)

// New builds the gateway: the transcoders of every upstream, the
// authenticator, the rate limiter and the routing table. It fails on a bad
// Config or routing configuration, on metrics that cannot be registered,
// and when peers cannot give a connection.
func New(cfg Config, peers Dialer, logger *slog.Logger) (*Gateway, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if peers == nil {
		return nil, errors.New("gateway: nil Dialer")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		cfg:      cfg,
		logger:   logger,
		metrics:  newMetrics(),
		muxes:    map[string]http.Handler{},
		conns:    map[string]*grpc.ClientConn{},
		bindings: map[string][]routes.Binding{},
		breakers: map[string]*breaker.Breaker{},
		trusted:  cfg.TrustedProxies,
	}
	if cfg.Registerer != nil {
		if err := g.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	var err error
	if g.cors, err = newCORSPolicy(cfg.CORSOrigins, cfg.CORSAllowCredentials); err != nil {
		return nil, err
	}
	gz, err := gzhttp.NewWrapper(gzhttp.EnableZstd(false))
	if err != nil {
		return nil, fmt.Errorf("gateway: gzip: %w", err)
	}
	g.gzip = gz
	if cfg.OpenAPI != nil {
		doc, err := rewriteOpenAPI(cfg.OpenAPI)
		if err != nil {
			return nil, err
		}
		g.openapi, g.openapiETag = doc, weakETag(doc)
	}
	g.openapiH = gz(http.HandlerFunc(g.serveOpenAPI))
	if cfg.Home != nil {
		g.homeH = gz(cfg.Home)
	}
	if cfg.Web != nil {
		g.webH = gz(cfg.Web)
	}

	for _, u := range upstreams {
		conn, err := peers.Conn(u.service)
		if err != nil {
			return nil, fmt.Errorf("gateway: connection to %s: %w", u.service, err)
		}
		mux := g.newMux()
		if err := u.register(context.Background(), mux, conn); err != nil {
			return nil, fmt.Errorf("gateway: routes of %s: %w", u.service, err)
		}
		b, err := httpBindings(u.grpcName)
		if err != nil {
			return nil, err
		}
		g.muxes[u.service] = gz(mux)
		g.conns[u.service] = conn
		g.bindings[u.service] = b
	}

	identity := identityClient{identityv1.NewIdentityServiceClient(g.conns["identity"])}
	g.auth = auth.New(auth.Config{
		MinRefreshInterval: cfg.JWKSMinRefreshInterval,
		APIKeyTTL:          cfg.APIKeyCacheTTL,
		OnKeyFetch:         g.metrics.keyFetch,
	}, identity, identity, logger)

	g.local = ratelimit.NewLocal(0)
	g.limiter = g.local
	g.metrics.redisUp.Set(-1)
	if cfg.RedisURL != "" {
		g.redis, err = ratelimit.NewRedis(cfg.RedisURL, g.local, logger, ratelimit.RedisOptions{
			OnState: func(up bool) {
				if up {
					g.metrics.redisUp.Set(1)
				} else {
					g.metrics.redisUp.Set(0)
				}
			},
			OnFallback: g.metrics.limitFallback.Inc,
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		g.limiter = g.redis
		g.metrics.redisUp.Set(1)
	}

	doc, stamp, err := g.readRoutes()
	if err != nil {
		return nil, err
	}
	if err := g.load(doc, stamp); err != nil {
		return nil, err
	}

	var h http.Handler = http.HandlerFunc(g.serve)
	h = g.recoverPanics(h)
	h = g.edge(h)
	g.handler = h
	return g, nil
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("gateway: RequestTimeout %v is negative", c.RequestTimeout))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("gateway: MaxBodyBytes %d is negative", c.MaxBodyBytes))
	}
	if c.RoutesPollInterval < 0 || c.JWKSRefreshInterval < 0 || c.JWKSMinRefreshInterval < 0 || c.APIKeyCacheTTL < 0 {
		errs = append(errs, errors.New("gateway: negative interval"))
	}
	for name, addrs := range c.HTTPUpstreams {
		for _, a := range addrs {
			if _, err := netip.ParseAddrPort(a); err != nil && !strings.Contains(a, ":") {
				errs = append(errs, fmt.Errorf("gateway: HTTP upstream %s: bad address %q", name, a))
			}
		}
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RoutesPollInterval == 0 {
		c.RoutesPollInterval = DefaultRoutesPollInterval
	}
	if c.JWKSRefreshInterval == 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.CoreUpstreams == nil {
		c.CoreUpstreams = DefaultCoreUpstreams
	}
	return errors.Join(errs...)
}

// ServeHTTP serves the public API.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.handler.ServeHTTP(w, r)
}

// Close releases what the gateway holds: the Redis connections and the
// idle connections to HTTP upstreams. Call it after the server stopped.
func (g *Gateway) Close() error {
	if gen := g.gen.Load(); gen != nil {
		for _, u := range gen.http {
			u.Close()
		}
	}
	if g.redis != nil {
		return g.redis.Close()
	}
	return nil
}

// Drain makes the gateway report not ready, on /readyz and from Ready, so
// that load balancers stop sending it new requests before the program
// shuts its server down. Requests keep being served. It cannot be undone.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Ready returns nil when every core upstream the routes use answers the
// standard gRPC health check (the empty service name) with SERVING and,
// when a route authenticates, the signing keys are loaded; otherwise an
// error naming what is missing. Each check is bounded by ctx and by 2 s.
// After Drain it returns ErrDraining.
func (g *Gateway) Ready(ctx context.Context) error {
	_, err := g.readiness(ctx)
	return err
}

// readiness checks every gRPC upstream the routes use; it returns the
// non-core ones that are down (degraded) and the error of Ready.
func (g *Gateway) readiness(ctx context.Context) (degraded []string, err error) {
	if g.draining.Load() {
		return nil, ErrDraining
	}
	ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	gen := g.gen.Load()
	names := gen.grpcUpstreams
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		conn := g.conns[name]
		wg.Go(func() {
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%s: %w", name, err)
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				errs[i] = fmt.Errorf("%s: %s", name, resp.GetStatus())
			}
		})
	}
	var keysErr error
	if gen.authenticates && !g.auth.Keys().Loaded() {
		wg.Go(func() {
			if err := g.auth.Keys().Load(ctx); err != nil || !g.auth.Keys().Loaded() {
				keysErr = fmt.Errorf("signing keys not loaded: %v", err)
			}
		})
	}
	wg.Wait()
	var fatal []error
	for i, e := range errs {
		if e == nil {
			continue
		}
		if slices.Contains(g.cfg.CoreUpstreams, names[i]) {
			fatal = append(fatal, e)
		} else {
			degraded = append(degraded, names[i])
		}
	}
	if keysErr != nil {
		fatal = append(fatal, keysErr)
	}
	if err := errors.Join(fatal...); err != nil {
		return degraded, fmt.Errorf("gateway: not ready: %w", err)
	}
	return degraded, nil
}

// serveHealthz answers 200 while the process runs.
func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReadyz answers 200 when Ready, else 503 in the error shape. The
// upstreams that are down are named (services are public knowledge); why
// is logged, not told to the (unauthenticated) caller.
func (g *Gateway) serveReadyz(w http.ResponseWriter, r *http.Request) {
	degraded, err := g.readiness(r.Context())
	if err != nil {
		g.log(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
		g.writeError(w, r, apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "not ready"})
		return
	}
	body := map[string]any{"status": "ok"}
	if len(degraded) > 0 {
		body["degraded"] = degraded
		g.log(r.Context(), slog.LevelDebug, "ready, degraded", slog.Any("degraded", degraded))
	}
	writeJSON(w, http.StatusOK, body)
}

// serveOpenAPI serves the API description, with ETag and conditional
// requests, or 404 when the program gave none.
func (g *Gateway) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if g.openapi == nil {
		g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, ""))
		return
	}
	serveDocument(w, r, g.openapi, g.openapiETag)
}

// isProbe reports whether path is a liveness or readiness probe, which are
// neither traced nor logged above debug level.
func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// identityClient asks identity for signing keys and API key owners.
type identityClient struct {
	c identityv1.IdentityServiceClient
}
