// Package app is the lifecycle every Marquee program shares: a gRPC server
// with the standard health service and reflection, an optional HTTP server,
// an admin HTTP server (/metrics, /healthz, /readyz, /debug/pprof/),
// readiness checks, background workers and an ordered shutdown.
//
// Lifecycle: New → register services, checks, workers and closers → Run.
// Run serves until its context ends, then stops in this order: not ready
// (readiness fails, gRPC health NOT_SERVING) → drain delay → HTTP Shutdown
// and gRPC GracefulStop (bounded by the shutdown timeout) → workers
// cancelled and awaited → closers in reverse order → admin server → tracing
// flushed.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/platform/logging"
)

// Config is what every program sets before Run.
type Config struct {
	// Program names the process in logs and metrics ("catalog", "gateway").
	Program string
	// GRPCAddr is the gRPC listen address; empty means no gRPC server.
	GRPCAddr string
	// HTTPAddr is the main HTTP listen address, served when a handler is
	// set with SetHandler (services without one ignore it).
	HTTPAddr string
	// AdminAddr serves /metrics, /healthz, /readyz and pprof.
	AdminAddr string
	// DrainDelay is how long the program stays up, not ready, before it
	// stops accepting requests, so load balancers notice.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the graceful stop of the servers.
	ShutdownTimeout time.Duration
	// GRPCOptions are added to the gRPC server's (transport credentials of
	// the control plane).
	GRPCOptions []grpc.ServerOption
}

// App is one running program.
type App struct {
	cfg         Config
	log         *slog.Logger
	metrics     *prometheus.Registry
	grpc        *grpc.Server
	grpcMetrics *grpcprom.ServerMetrics
	health      *health.Server
	handler     http.Handler

	mu      sync.Mutex
	checks  []check
	workers []worker
	closers []func() error

	ready atomic.Bool
	addrs struct {
		sync.Mutex
		grpc, http, admin net.Addr
	}
	started chan struct{}
}

type check struct {
	name string
	fn   func(context.Context) error
}

type worker struct {
	name string
	fn   func(context.Context) error
}

// New builds an App. Register services on GRPC() before Run.
func New(cfg Config, log *slog.Logger) (*App, error) {
	if cfg.Program == "" || cfg.AdminAddr == "" {
		return nil, errors.New("app: program name and admin address are required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &App{cfg: cfg, log: log, metrics: reg, health: health.NewServer(), started: make(chan struct{})}
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if cfg.GRPCAddr != "" {
		srvMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})))
		reg.MustRegister(srvMetrics)
		recover := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
			log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p))
			return status.Error(codes.Internal, "internal error")
		})
		a.grpc = grpc.NewServer(append([]grpc.ServerOption{
			grpc.StatsHandler(otelgrpc.NewServerHandler()),
			grpc.ChainUnaryInterceptor(requestIDUnary, srvMetrics.UnaryServerInterceptor(), recovery.UnaryServerInterceptor(recover)),
			grpc.ChainStreamInterceptor(srvMetrics.StreamServerInterceptor(), recovery.StreamServerInterceptor(recover)),
		}, cfg.GRPCOptions...)...)
		healthpb.RegisterHealthServer(a.grpc, a.health)
		reflection.Register(a.grpc)
		a.grpcMetrics = srvMetrics
	}
	return a, nil
}

// requestIDUnary puts the caller's request id into the handler's context.
func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if ids := md.Get(logging.RequestIDHeader); len(ids) > 0 && logging.ValidRequestID(ids[0]) {
			ctx = logging.WithRequestID(ctx, ids[0])
		}
	}
	return h(ctx, req)
}

// Logger is the program's logger.
func (a *App) Logger() *slog.Logger { return a.log }

// Metrics is the program's Prometheus registry, served on /metrics.
func (a *App) Metrics() *prometheus.Registry { return a.metrics }

// GRPC is the gRPC server, nil when Config.GRPCAddr is empty.
func (a *App) GRPC() *grpc.Server { return a.grpc }

// SetHandler sets the main HTTP handler, served on Config.HTTPAddr.
func (a *App) SetHandler(h http.Handler) { a.handler = h }

// AddCheck adds a readiness check; the program is ready when all pass.
func (a *App) AddCheck(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks = append(a.checks, check{name, fn})
}

// Go runs fn for the life of the program. Its context ends after the
// servers have stopped; an error before that stops the program.
func (a *App) Go(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workers = append(a.workers, worker{name, fn})
}

// OnClose registers fn to run at the end of shutdown, in reverse order of
// registration (close what was opened last first).
func (a *App) OnClose(fn func() error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, fn)
}

// Ready reports whether every readiness check passed at the last look.
func (a *App) Ready() bool { return a.ready.Load() }

// Started is closed once the listeners are bound.
func (a *App) Started() <-chan struct{} { return a.started }

// Addrs returns the bound addresses (nil for servers not configured);
// valid after Started.
func (a *App) Addrs() (grpcAddr, httpAddr, adminAddr net.Addr) {
	a.addrs.Lock()
	defer a.addrs.Unlock()
	return a.addrs.grpc, a.addrs.http, a.addrs.admin
}

// Run serves until ctx ends, then shuts down in order. It returns nil on a
// clean stop.
func (a *App) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, a.runClosers()) }()
	if a.handler != nil && a.cfg.HTTPAddr == "" {
		return errors.New("app: HTTP handler set but no HTTP address")
	}
	var lc net.ListenConfig
	adminLis, err := lc.Listen(ctx, "tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("app: admin listener: %w", err)
	}
	var grpcLis, httpLis net.Listener
	if a.grpc != nil {
		if grpcLis, err = lc.Listen(ctx, "tcp", a.cfg.GRPCAddr); err != nil {
			adminLis.Close()
			return fmt.Errorf("app: gRPC listener: %w", err)
		}
	}
	if a.handler != nil {
		if httpLis, err = lc.Listen(ctx, "tcp", a.cfg.HTTPAddr); err != nil {
			adminLis.Close()
			if grpcLis != nil {
				grpcLis.Close()
			}
			return fmt.Errorf("app: HTTP listener: %w", err)
		}
	}
	a.addrs.Lock()
	a.addrs.admin = adminLis.Addr()
	if grpcLis != nil {
		a.addrs.grpc = grpcLis.Addr()
	}
	if httpLis != nil {
		a.addrs.http = httpLis.Addr()
	}
	a.addrs.Unlock()

	admin := &http.Server{Handler: a.adminMux(), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 4)
	go func() { serveErr <- ignoreClosed(admin.Serve(adminLis)) }()
	var main *http.Server
	if httpLis != nil {
		main = &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
		go func() { serveErr <- ignoreClosed(main.Serve(httpLis)) }()
	}
	if grpcLis != nil {
		a.grpcMetrics.InitializeMetrics(a.grpc)
		go func() { serveErr <- ignoreClosed(a.grpc.Serve(grpcLis)) }()
	}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var wg sync.WaitGroup
	workerErr := make(chan error, len(a.workers)+1)
	a.mu.Lock()
	workers := a.workers
	a.mu.Unlock()
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.fn(workCtx); err != nil && workCtx.Err() == nil {
				workerErr <- fmt.Errorf("%s: %w", w.name, err)
			}
		}()
	}
	close(a.started)
	a.log.Info("started", "grpc", addrString(a.addrs.grpc), "http", addrString(a.addrs.http), "admin", adminLis.Addr().String())

	readyCtx, stopReady := context.WithCancel(ctx)
	go a.watchReadiness(readyCtx)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = err
	case err := <-workerErr:
		runErr = err
	}
	stopReady()
	if runErr != nil {
		a.log.Error("stopping after failure", "err", runErr)
	} else {
		a.log.Info("stopping")
	}

	// Not ready first, so no new traffic is routed here, then drain.
	a.ready.Store(false)
	a.health.Shutdown()
	if a.cfg.DrainDelay > 0 && runErr == nil {
		time.Sleep(a.cfg.DrainDelay)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if main != nil {
		if err := main.Shutdown(stopCtx); err != nil {
			main.Close()
		}
	}
	if a.grpc != nil {
		done := make(chan struct{})
		go func() { a.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-stopCtx.Done():
			a.grpc.Stop()
		}
	}
	stopWork()
	wg.Wait()
	admin.Shutdown(stopCtx)
	return runErr
}

func (a *App) runClosers() error {
	a.mu.Lock()
	closers := a.closers
	a.closers = nil
	a.mu.Unlock()
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		errs = append(errs, closers[i]())
	}
	return errors.Join(errs...)
}

// watchReadiness runs the checks often until ready, then every few seconds.
func (a *App) watchReadiness(ctx context.Context) {
	for {
		err := a.check(ctx)
		was := a.ready.Swap(err == nil)
		switch {
		case err == nil && !was:
			a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			a.log.Info("ready")
		case err != nil && was:
			a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
			a.log.Warn("not ready", "err", err)
		}
		wait := 2 * time.Second
		if err != nil {
			wait = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *App) check(ctx context.Context) error {
	a.mu.Lock()
	checks := a.checks
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, c := range checks {
		if err := c.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

func (a *App) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{Registry: a.metrics}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
