// Package sidecar is the data plane of the service mesh: the proxy that
// runs beside each service instance and carries all of its service-to-
// service traffic.
//
// A Proxy has two listeners. The outbound one, on loopback, takes the local
// application's requests in plaintext (HTTP/1.1, and HTTP/2 with prior
// knowledge for gRPC) and routes each by its :authority (or Host) — a
// service name — to an instance of that service: header routes, then the
// weighted split by version, then power-of-two-choices least-request among
// the healthy endpoints not ejected; with fault injection, timeouts,
// retries within a budget and outlier ejection on the way. It forwards over
// mutual TLS to the instance's sidecar.
//
// The inbound listener accepts only mutual TLS from mesh identities,
// authorizes each request by the caller's certificate and the request path
// against the snapshot's allow rules (deny by default), sets
// x-marquee-caller, and hands the request to the application: gRPC over h2c
// to its gRPC port, anything else over HTTP/1.1 to its HTTP port.
//
// gRPC, the bulk of the traffic, takes a lean path (h2conn.go,
// h2stream.go): HTTP/2 frames are relayed between connections by the
// goroutine that reads them, one per connection and none per call, and
// what arrived together leaves in one write. Plain HTTP/1.1 is served by
// net/http (outbound.go, inbound.go) and goes between sidecars as HTTP/1.1
// on mutual TLS.
//
// Configuration arrives as complete snapshots (Apply) and is swapped
// atomically; requests in flight finish on the snapshot they started with.
// Errors the proxy makes itself say so (see meshError): a gRPC status for
// gRPC requests, a JSON body for others, and x-marquee-mesh-error on both.
package sidecar

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// Config is what a Proxy needs.
type Config struct {
	// Service is the service this sidecar stands beside; Version its
	// deployment label (v1, v2).
	Service, Version string
	// InboundAddr is the mTLS listener's address (127.0.0.1:0 picks a
	// port). Empty means a caller-only workload (the gateway) that nothing
	// calls: no inbound listener.
	InboundAddr string
	// OutboundAddr is the plaintext listener for the local application. It
	// must be a loopback address: it accepts anything it is sent.
	OutboundAddr string
	// AppGRPC is the application's gRPC (h2c) address, where inbound gRPC
	// requests go.
	AppGRPC string
	// AppHTTP is the application's HTTP/1.1 address, where other inbound
	// requests go; empty refuses them.
	AppHTTP string
	// Certs holds the workload certificate and roots. The Proxy only reads
	// it; running it (its Run) is the caller's.
	Certs *ca.Workload
	// Registerer receives the proxy's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Log receives access logs (at Info, one line per request, when
	// AccessLog is set) and the proxy's own events.
	Log *slog.Logger
	// AccessLog logs every request. It costs at high request rates.
	AccessLog bool
	// DrainTimeout bounds how long requests in flight may finish once Run's
	// context ends; zero means 10s.
	DrainTimeout time.Duration
}

const defaultDrainTimeout = 10 * time.Second

// Proxy is a sidecar. Make one with New, feed it snapshots with Apply and
// serve with Run.
//
// gRPC calls (HTTP/2) take the lean path: h2conn and pstream relay their
// frames between connections. Plain HTTP/1.1 requests are served by
// net/http (serveOutbound, serveInbound) and go between sidecars over
// HTTP/1.1 on mutual TLS.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	m      *metrics

	// state is the configuration requests read: nil until the first
	// snapshot is applied.
	state atomic.Pointer[state]
	// applyMu serializes Apply; requests never take it.
	applyMu sync.Mutex
	// upstreams and endpoints outlive snapshots so that connections,
	// counters and ejections carry over; guarded by applyMu.
	upstreams map[string]*upstream
	endpoints map[endpointKey]*endpoint

	inLn, outLn         net.Listener // TCP
	inHTTPLn, outHTTPLn *connListener
	inHTTP, outHTTP     *http.Server
	inTLS               *tls.Config
	app                 *appClients
	appPool             *upPool
	conns               connSet      // accepted HTTP/2 connections
	live                atomic.Int64 // HTTP/2 calls in flight
	ran                 atomic.Bool
}

// New checks cfg, binds the listeners (so that their addresses are known
// before Run) and returns the Proxy. It serves nothing until Run.
func New(cfg Config) (*Proxy, error) {
	if err := ca.ValidService(cfg.Service); err != nil {
		return nil, fmt.Errorf("sidecar: service: %w", err)
	}
	if cfg.Certs == nil {
		return nil, errors.New("sidecar: no workload certificates (Config.Certs)")
	}
	if cfg.OutboundAddr == "" {
		return nil, errors.New("sidecar: no outbound address")
	}
	if cfg.InboundAddr != "" {
		if err := checkHostPort("application gRPC address", cfg.AppGRPC); err != nil {
			return nil, err
		}
		if cfg.AppHTTP != "" {
			if err := checkHostPort("application HTTP address", cfg.AppHTTP); err != nil {
				return nil, err
			}
		}
	}
	if cfg.DrainTimeout < 0 {
		return nil, fmt.Errorf("sidecar: negative drain timeout %s", cfg.DrainTimeout)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = defaultDrainTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer, cfg.Certs)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.Log,
		tracer:    otel.Tracer("marquee/mesh"),
		m:         m,
		upstreams: map[string]*upstream{},
		endpoints: map[endpointKey]*endpoint{},
		conns:     connSet{m: map[*h2conn]struct{}{}},
	}

	p.outLn, err = net.Listen("tcp", cfg.OutboundAddr)
	if err != nil {
		return nil, fmt.Errorf("sidecar: outbound listener: %w", err)
	}
	if ip := p.outLn.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		p.outLn.Close()
		return nil, fmt.Errorf("sidecar: outbound address %s is not loopback: it would let anyone on the network call as %s", cfg.OutboundAddr, cfg.Service)
	}
	p.outHTTPLn = newConnListener(p.outLn.Addr())
	p.outHTTP = newServer(http.HandlerFunc(p.serveOutbound), p.log)

	if cfg.InboundAddr != "" {
		ln, err := net.Listen("tcp", cfg.InboundAddr)
		if err != nil {
			p.outLn.Close()
			return nil, fmt.Errorf("sidecar: inbound listener: %w", err)
		}
		p.inLn = ln
		p.inTLS = cfg.Certs.ServerTLS()
		p.inHTTPLn = newConnListener(ln.Addr())
		p.inHTTP = newServer(http.HandlerFunc(p.serveInbound), p.log)
		p.inHTTP.ConnContext = withConnInfo
		p.app = newAppClients(cfg.AppHTTP)
		p.appPool = newPool(p, cfg.AppGRPC, plainDialer(cfg.AppGRPC))
	}
	return p, nil
}

func checkHostPort(what, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("sidecar: %s %q: %w", what, addr, err)
	}
	return nil
}

// newServer returns the HTTP/1.1 server of a listener. There is no read
// or write timeout: bodies may be long (video), and the destination
// timeout bounds requests where it is set.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	return srv
}

// InboundAddr is the inbound listener's bound address, or "" without one.
func (p *Proxy) InboundAddr() string {
	if p.inLn == nil {
		return ""
	}
	return p.inLn.Addr().String()
}

// OutboundAddr is the outbound listener's bound address.
func (p *Proxy) OutboundAddr() string { return p.outLn.Addr().String() }

// Ready reports whether the proxy holds a certificate and a first snapshot.
func (p *Proxy) Ready() bool {
	select {
	case <-p.cfg.Certs.Ready():
	default:
		return false
	}
	return p.state.Load() != nil
}

// SnapshotVersion is the version of the snapshot in use, 0 before the
// first.
func (p *Proxy) SnapshotVersion() uint64 {
	if s := p.state.Load(); s != nil {
		return s.version
	}
	return 0
}

// Run serves until ctx ends, then drains: the listeners close (new
// connections are refused), HTTP/2 callers are told to go away (GOAWAY),
// and calls in flight have up to DrainTimeout to finish before their
// connections are closed. Run may be called once.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("sidecar: Run called twice")
	}
	errc := make(chan error, 4)
	var serving sync.WaitGroup
	serve := func(f func() error) {
		serving.Go(func() { errc <- f() })
	}
	serve(func() error { return p.accept(p.outLn, p.serveOutboundConn, "outbound") })
	serve(func() error { return serveErr("outbound", p.outHTTP.Serve(p.outHTTPLn)) })
	if p.inLn != nil {
		serve(func() error { return p.accept(p.inLn, p.serveInboundConn, "inbound") })
		serve(func() error { return serveErr("inbound", p.inHTTP.Serve(p.inHTTPLn)) })
	}
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go p.maintain(bg)
	p.log.Info("mesh sidecar serving", "service", p.cfg.Service, "version", p.cfg.Version,
		"inbound", p.InboundAddr(), "outbound", p.OutboundAddr())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	p.log.Info("mesh sidecar draining", "service", p.cfg.Service, "timeout", p.cfg.DrainTimeout)
	p.outLn.Close()
	if p.inLn != nil {
		p.inLn.Close()
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.DrainTimeout)
	defer cancel()
	p.conns.drain()
	var wg sync.WaitGroup
	for _, srv := range []*http.Server{p.inHTTP, p.outHTTP} {
		if srv == nil {
			continue
		}
		wg.Go(func() {
			if err := srv.Shutdown(dctx); err != nil {
				// Requests still running at the deadline are cut off.
				srv.Close()
			}
		})
	}
	wg.Go(func() { p.waitCalls(dctx) })
	wg.Wait()
	p.conns.closeAll()
	p.closeClients()
	serving.Wait()
	close(errc)
	for err := range errc {
		if err != nil && runErr == nil {
			runErr = err
		}
	}
	p.log.Info("mesh sidecar stopped", "service", p.cfg.Service)
	return runErr
}

// waitCalls waits until no HTTP/2 call is in flight, or ctx ends.
func (p *Proxy) waitCalls(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.live.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Background timing.
const (
	renewalPoll = time.Second      // looking for a renewed certificate
	reapEvery   = 10 * time.Second // closing idle connections
)

// maintain closes connections to peers idle for idleConnTimeout, and
// retires all of them when the workload certificate changes, so that new
// calls handshake with the new certificate and the current roots (calls in
// flight finish on the old connections, which then close).
func (p *Proxy) maintain(ctx context.Context) {
	t := time.NewTicker(renewalPoll)
	defer t.Stop()
	last := p.cfg.Certs.NotAfter()
	lastReap := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if na := p.cfg.Certs.NotAfter(); !na.Equal(last) {
				last = na
				p.eachPool(func(u *upPool) { u.retire() })
				p.applyMu.Lock()
				for _, u := range p.upstreams {
					old := u.http.Swap(newPeerTransport(u.tlsConf))
					old.CloseIdleConnections()
				}
				p.applyMu.Unlock()
			}
			if now.Sub(lastReap) >= reapEvery {
				lastReap = now
				idle := now.Add(-idleConnTimeout)
				p.eachPool(func(u *upPool) { u.closeIdle(idle) })
			}
		}
	}
}

// eachPool calls f with every pool to peers.
func (p *Proxy) eachPool(f func(*upPool)) {
	p.applyMu.Lock()
	var pools []*upPool
	for _, u := range p.upstreams {
		for _, pool := range u.pools {
			pools = append(pools, pool)
		}
	}
	p.applyMu.Unlock()
	for _, pool := range pools {
		f(pool)
	}
}

func serveErr(which string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return fmt.Errorf("sidecar: %s listener: %w", which, err)
}

// closeClients closes the connections to peers and to the application.
func (p *Proxy) closeClients() {
	p.eachPool(func(u *upPool) { u.close() })
	p.applyMu.Lock()
	for _, u := range p.upstreams {
		u.http.Load().CloseIdleConnections()
	}
	p.applyMu.Unlock()
	if p.appPool != nil {
		p.appPool.close()
	}
	if p.app != nil {
		p.app.close()
	}
}

// connInfo is per inbound connection: the caller's service, worked out
// from its certificate once rather than on every request.
type connInfo struct {
	once   sync.Once
	caller string
	header []string // {caller}, shared read-only by the connection's requests
	err    error
}

type connInfoKey struct{}

func withConnInfo(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connInfoKey{}, &connInfo{})
}

// callerOf returns the verified caller of r, an inbound request over mTLS.
func callerOf(r *http.Request) (*connInfo, error) {
	ci, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	if ci == nil {
		ci = &connInfo{}
	}
	ci.once.Do(func() {
		ci.caller, ci.err = peerService(r.TLS)
		ci.header = []string{ci.caller}
	})
	return ci, ci.err
}

func peerService(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return "", errors.New("no client certificate")
	}
	return ca.ServiceOf(cs.PeerCertificates[0])
}
