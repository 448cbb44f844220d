package sidecar

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection tuning of the clients to peers and to the application.
const (
	dialTimeout      = 3 * time.Second
	handshakeTimeout = 5 * time.Second
	idleConnTimeout  = 90 * time.Second
	maxIdlePerHost   = 256
)

// upstream is what outlives snapshots for one destination service: the
// connections to its sidecars (an HTTP/2 pool per endpoint address for
// gRPC, an HTTP/1.1 transport for plain HTTP), the retry budget's
// counters and label-bound metrics.
type upstream struct {
	name    string
	tlsConf *tls.Config
	log     *slog.Logger
	// pools are by endpoint address; guarded by Proxy.applyMu.
	pools map[string]*upPool
	// http is replaced when the workload certificate is renewed (see
	// Proxy.maintain).
	http atomic.Pointer[http.Transport]

	active   atomic.Int64 // requests in flight
	retrying atomic.Int64 // retry attempts in flight
	ejectMu  sync.Mutex   // serializes ejection decisions (failure path only)

	retriesMetric, ejectionsMetric prometheus.Counter
	abortMetric, delayMetric       prometheus.Counter
}

func newUpstream(name string, tlsConf *tls.Config, m *metrics, log *slog.Logger) *upstream {
	u := &upstream{
		name:            name,
		tlsConf:         tlsConf,
		log:             log,
		pools:           map[string]*upPool{},
		retriesMetric:   m.retries.WithLabelValues(name),
		ejectionsMetric: m.ejections.WithLabelValues(name),
		abortMetric:     m.faults.WithLabelValues(name, "abort"),
		delayMetric:     m.faults.WithLabelValues(name, "delay"),
	}
	u.http.Store(newPeerTransport(tlsConf))
	return u
}

// pool returns the HTTP/2 pool to addr (under Proxy.applyMu).
func (u *upstream) pool(p *Proxy, addr string) *upPool {
	pool := u.pools[addr]
	if pool == nil {
		pool = newPool(p, addr, peerDialer(addr, u.tlsConf))
		u.pools[addr] = pool
	}
	return pool
}

// newPeerTransport returns the client for plain HTTP to peer sidecars:
// HTTP/1.1 over mutual TLS.
func newPeerTransport(tlsConf *tls.Config) *http.Transport {
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"http/1.1"}
	t := &http.Transport{
		TLSClientConfig:     conf,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: handshakeTimeout,
		// Bodies pass as they are: the transport must not ask for gzip and
		// decode it behind the application's back.
		DisableCompression:  true,
		IdleConnTimeout:     idleConnTimeout,
		MaxIdleConnsPerHost: maxIdlePerHost,
		Protocols:           new(http.Protocols),
	}
	t.Protocols.SetHTTP1(true)
	return t
}

// appClients reach the local application's HTTP port with a pool of
// kept-alive HTTP/1.1 connections (gRPC goes through Proxy.appPool).
type appClients struct {
	httpAddr string
	http     *http.Transport
}

func newAppClients(httpAddr string) *appClients {
	h := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression:  true,
		IdleConnTimeout:     idleConnTimeout,
		MaxIdleConnsPerHost: maxIdlePerHost,
		Protocols:           new(http.Protocols),
	}
	h.Protocols.SetHTTP1(true)
	return &appClients{httpAddr: httpAddr, http: h}
}

func (a *appClients) close() {
	a.http.CloseIdleConnections()
}
