package sidecar

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// handshakeWait bounds how long an accepted connection may take to say
// what it is (its first bytes, or its TLS handshake).
const handshakeWait = 10 * time.Second

// accept accepts connections on ln and serves each on a goroutine until ln
// is closed.
func (p *Proxy) accept(ln net.Listener, serve func(net.Conn), which string) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			p.log.Warn("mesh accept failed", "listener", which, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go serve(nc)
	}
}

// serveOutboundConn tells HTTP/2 with prior knowledge (gRPC) from
// HTTP/1.1 by the connection's first bytes.
func (p *Proxy) serveOutboundConn(nc net.Conn) {
	br := bufio.NewReaderSize(nc, h2ReadBuf)
	nc.SetReadDeadline(time.Now().Add(handshakeWait))
	head, err := br.Peek(4)
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return
	}
	if string(head) != h2Preface[:4] {
		p.outHTTPLn.push(&bufferedConn{Conn: nc, br: br})
		return
	}
	p.serveH2(nc, br, p.startOutbound, nil)
}

// serveInboundConn runs the TLS handshake (which verifies the caller's
// certificate) and hands the connection to HTTP/2 or HTTP/1.1 by ALPN.
func (p *Proxy) serveInboundConn(nc net.Conn) {
	tc := tls.Server(nc, p.inTLS)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeWait)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		p.log.Debug("mesh inbound handshake refused", "remote", nc.RemoteAddr().String(), "err", err)
		nc.Close()
		return
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != "h2" {
		p.inHTTPLn.push(tc)
		return
	}
	caller, err := peerService(&cs)
	if err != nil {
		// The handshake verified the identity; this cannot be.
		tc.Close()
		return
	}
	p.serveH2(tc, bufio.NewReaderSize(tc, h2ReadBuf), p.startInbound, func(c *h2conn) {
		c.caller = caller
		c.tlsState = &cs
		c.info = &connInfo{caller: caller, header: []string{caller}}
		c.info.once.Do(func() {})
	})
}

// serveH2 serves an accepted HTTP/2 connection until it ends.
func (p *Proxy) serveH2(nc net.Conn, br *bufio.Reader, onStream func(*h2conn, *http2.MetaHeadersFrame, *batch), setup func(*h2conn)) {
	nc.SetReadDeadline(time.Now().Add(handshakeWait))
	err := readPreface(br)
	nc.SetReadDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return
	}
	c := newH2Conn(p, nc, br, true)
	c.onStream = onStream
	if setup != nil {
		setup(c)
	}
	if !p.conns.add(c) {
		nc.Close()
		return
	}
	if err := c.start(); err != nil {
		c.teardown(err)
		return
	}
	c.readLoop()
}

// connSet is the set of accepted HTTP/2 connections, for draining.
type connSet struct {
	mu       sync.Mutex
	m        map[*h2conn]struct{}
	draining bool
}

func (s *connSet) add(c *h2conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *h2conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) all() []*h2conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*h2conn, 0, len(s.m))
	for c := range s.m {
		out = append(out, c)
	}
	return out
}

// drain sends GOAWAY on every connection and refuses new ones.
func (s *connSet) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	for _, c := range s.all() {
		c.drain()
	}
}

func (s *connSet) closeAll() {
	for _, c := range s.all() {
		c.close()
	}
}

// connListener hands connections accepted elsewhere to an http.Server.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// bufferedConn is a connection whose first bytes were read into br.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }
