package sidecar

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// upPool holds the HTTP/2 connections to one address (a peer sidecar's
// inbound, or the application's gRPC port). Calls share a connection
// until it takes no more streams; a new one is dialed in the background
// while the calls that need it wait.
type upPool struct {
	p    *Proxy
	addr string
	dial func(ctx context.Context) (net.Conn, error)

	mu      sync.Mutex
	conns   []*h2conn
	dialing bool
	waiters []*pstream
	closed  bool
}

func newPool(p *Proxy, addr string, dial func(ctx context.Context) (net.Conn, error)) *upPool {
	return &upPool{p: p, addr: addr, dial: dial}
}

// peerDialer dials a peer sidecar: TCP, then mutual TLS with ALPN h2.
func peerDialer(addr string, conf *tls.Config) func(ctx context.Context) (net.Conn, error) {
	conf = conf.Clone()
	conf.NextProtos = []string{"h2"}
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := (&net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, conf)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			nc.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			tc.Close()
			return nil, fmt.Errorf("peer at %s does not speak HTTP/2 (ALPN %q)", addr, p)
		}
		return tc, nil
	}
}

// plainDialer dials the application: h2c with prior knowledge.
func plainDialer(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}).DialContext(ctx, "tcp", addr)
	}
}

// conn returns a connection that takes a new stream, or nil.
func (u *upPool) conn() *h2conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.conns {
		if c.usable() {
			return c
		}
	}
	return nil
}

func (c *h2conn) usable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && !c.goAway && !c.retiring && uint32(len(c.streams)) < c.peerMaxStreams
}

// wait queues ps for a connection: ps.onPool is called with one, or with
// the dial error.
func (u *upPool) wait(ps *pstream) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		go ps.onPool(nil, errConnClosed)
		return
	}
	u.waiters = append(u.waiters, ps)
	if u.dialing {
		u.mu.Unlock()
		return
	}
	u.dialing = true
	u.mu.Unlock()
	go u.dialOne()
}

func (u *upPool) dialOne() {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout+handshakeTimeout)
	nc, err := u.dial(ctx)
	cancel()
	var c *h2conn
	if err == nil {
		c = newH2Conn(u.p, nc, nil, false)
		c.pool = u
		if err = c.start(); err != nil {
			nc.Close()
			c = nil
		}
	}
	u.mu.Lock()
	u.dialing = false
	waiters := u.waiters
	u.waiters = nil
	if c != nil {
		if u.closed {
			c.close()
			err, c = errConnClosed, nil
		} else {
			u.conns = append(u.conns, c)
		}
	}
	u.mu.Unlock()
	if c != nil {
		go c.readLoop()
	}
	if err != nil {
		u.p.log.Debug("mesh dial failed", "addr", u.addr, "err", err)
	}
	for _, ps := range waiters {
		ps.onPool(c, err)
	}
}

// forget drops c from the pool (it went away).
func (u *upPool) forget(c *h2conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, o := range u.conns {
		if o == c {
			u.conns = append(u.conns[:i], u.conns[i+1:]...)
			return
		}
	}
}

// retire makes every connection close once idle; new calls get new ones.
func (u *upPool) retire() {
	u.mu.Lock()
	conns := u.conns
	u.conns = nil
	u.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.retiring = true
		idle := len(c.streams) == 0
		c.mu.Unlock()
		if idle {
			c.close()
		}
	}
}

// closeIdle closes connections idle since before t.
func (u *upPool) closeIdle(t time.Time) {
	u.mu.Lock()
	var idle []*h2conn
	kept := u.conns[:0]
	for _, c := range u.conns {
		if c.idleSince(t) {
			idle = append(idle, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(u.conns[len(kept):])
	u.conns = kept
	u.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// close closes every connection; calls on them are reset.
func (u *upPool) close() {
	u.mu.Lock()
	u.closed = true
	conns := u.conns
	u.conns = nil
	u.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}
