// Package gateway is Marquee's HTTP front door. It turns JSON over HTTP into
// calls to the services' gRPC APIs, following the google.api.http
// annotations in proto/, and gives every response the same edge behaviour:
// a request id, W3C trace context, one error shape, a deadline, a body
// limit, gzip, security headers, an access log line and metrics.
//
// Lifecycle: New wires every route once; the program serves the Gateway as
// an http.Handler and asks Ready for readiness. On shutdown the program
// calls Drain (readiness fails from then on), waits for load balancers to
// notice, then shuts its http.Server down. The Gateway starts no goroutine
// and owns no connection: whoever owns the Dialer closes them.
//
// A request passes, outermost first: otelhttp (trace context), edge
// (untrusted headers stripped, request id, security headers, access log,
// metrics), gzip, limits (body size, UTF-8 URL, deadline), recovery, then
// the grpc-gateway router. Errors from any layer are written by writeError
// in errors.go, so they all have one shape:
// {"error":{"code","message","request_id"}}.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
)

// upstreams lists the gRPC services the gateway exposes over HTTP, each with
// the name of the Marquee service that serves it. Adding a service is one
// line: its name and the generated Register<Service>Handler function.
var upstreams = []upstream{
	{"catalog", catalogv1.RegisterCatalogServiceHandler},
}

// upstream is one gRPC service behind the gateway.
type upstream struct {
	service  string
	register func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
}

// Defaults for the zero values of Config.
const (
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxBodyBytes   = 1 << 20
)

// readyCheckTimeout bounds each upstream health check made by Ready.
const readyCheckTimeout = 2 * time.Second

// Config is what the program chooses about the gateway. The zero value is
// usable: every field has a default.
type Config struct {
	// RequestTimeout bounds each request; it is also the deadline of the
	// gRPC calls the request makes. Zero means DefaultRequestTimeout.
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
	mux     *runtime.ServeMux
	handler http.Handler

	openapi     []byte // the rewritten document, or nil
	openapiETag string

	// conns are the connections the routes use, one per service name, in
	// the order of upstreams; Ready checks each.
	conns    []*grpc.ClientConn
	services []string

	draining atomic.Bool
}

// ErrDraining is what Ready returns once Drain was called.
var ErrDraining = errors.New("gateway: draining")

var _ http.Handler = (*Gateway)(nil)

// New builds the gateway: every route of every upstream, plus /healthz,
// /readyz and /api/openapi.json. It fails on a bad Config, on metrics that
// cannot be registered, and when peers cannot give a connection.
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
	g := &Gateway{cfg: cfg, logger: logger, metrics: newMetrics()}
	if cfg.Registerer != nil {
		if err := g.metrics.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	if cfg.OpenAPI != nil {
		doc, err := rewriteOpenAPI(cfg.OpenAPI)
		if err != nil {
			return nil, err
		}
		g.openapi, g.openapiETag = doc, weakETag(doc)
	}

	g.mux = runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(dropMetadata),
		runtime.WithOutgoingTrailerMatcher(dropMetadata),
		runtime.WithMetadata(annotate),
		runtime.WithErrorHandler(g.handleError),
		runtime.WithRoutingErrorHandler(g.handleRoutingError),
		runtime.WithForwardResponseOption(setSuccessStatus),
		runtime.WithMiddlewares(captureRoute),
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
	)

	seen := map[string]*grpc.ClientConn{}
	for _, u := range upstreams {
		conn, ok := seen[u.service]
		if !ok {
			c, err := peers.Conn(u.service)
			if err != nil {
				return nil, fmt.Errorf("gateway: connection to %s: %w", u.service, err)
			}
			conn, seen[u.service] = c, c
			g.conns = append(g.conns, c)
			g.services = append(g.services, u.service)
		}
		if err := u.register(context.Background(), g.mux, conn); err != nil {
			return nil, fmt.Errorf("gateway: routes of %s: %w", u.service, err)
		}
	}
	for _, r := range []struct {
		path string
		h    runtime.HandlerFunc
	}{
		{"/healthz", g.serveHealthz},
		{"/readyz", g.serveReadyz},
		{"/api/openapi.json", g.serveOpenAPI},
	} {
		if err := g.mux.HandlePath(http.MethodGet, r.path, r.h); err != nil {
			return nil, fmt.Errorf("gateway: route %s: %w", r.path, err)
		}
	}

	gzip, err := gzhttp.NewWrapper(gzhttp.EnableZstd(false))
	if err != nil {
		return nil, fmt.Errorf("gateway: gzip: %w", err)
	}
	var h http.Handler = g.recoverPanics(g.mux)
	h = g.limits(h)
	h = gzip(h)
	h = g.edge(h)
	g.handler = otelhttp.NewHandler(h, "gateway",
		otelhttp.WithFilter(func(r *http.Request) bool { return !isProbe(r.URL.Path) }),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
	)
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
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return errors.Join(errs...)
}

// ServeHTTP serves the public API.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.handler.ServeHTTP(w, r)
}

// Drain makes the gateway report not ready, on /readyz and from Ready, so
// that load balancers stop sending it new requests before the program
// shuts its server down. Requests keep being served. It cannot be undone.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Ready returns nil when every upstream answers the standard gRPC health
// check (the empty service name) with SERVING, and otherwise an error naming
// each upstream that does not. Each check is bounded by ctx and by 2 s.
// After Drain it returns ErrDraining.
func (g *Gateway) Ready(ctx context.Context) error {
	if g.draining.Load() {
		return ErrDraining
	}
	ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	errs := make([]error, len(g.conns))
	var wg sync.WaitGroup
	for i, conn := range g.conns {
		wg.Go(func() {
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("%s: %w", g.services[i], err)
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				errs[i] = fmt.Errorf("%s: %s", g.services[i], resp.GetStatus())
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gateway: not ready: %w", err)
	}
	return nil
}

// serveHealthz answers 200 while the process runs.
func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveReadyz answers 200 when Ready, else 503 in the error shape. Which
// upstream is down is logged, not told to the (unauthenticated) caller.
func (g *Gateway) serveReadyz(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if err := g.Ready(r.Context()); err != nil {
		g.log(r.Context(), slog.LevelWarn, "not ready", slog.String("error", err.Error()))
		g.writeError(w, r, apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "not ready"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// serveOpenAPI serves the API description, with ETag and conditional
// requests, or 404 when the program gave none.
func (g *Gateway) serveOpenAPI(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if g.openapi == nil {
		g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, ""))
		return
	}
	serveDocument(w, r, g.openapi, g.openapiETag)
}

// isProbe reports whether path is a liveness or readiness probe, which are
// neither traced nor logged above debug level.
func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }
