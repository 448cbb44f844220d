// Package httpproxy is the gateway's reverse proxy for plain HTTP
// upstreams (the media endpoint, pass-through routes). It speaks HTTP/1.1
// to the upstream over a pool of keep-alive connections, on the calling
// goroutine: the request is written and the response read directly, with
// no per-connection reader and writer goroutines as net/http's Transport
// has, which is most of a proxy's cost at high request rates.
//
// Bodies stream both ways: the request body is copied as it arrives
// (chunked when its length is unknown), and the response body is copied as
// it is read, flushed after each read when its length is unknown, so video
// and Range responses (206, Content-Range) pass through unbuffered. Hop-by-
// hop headers (RFC 9110 section 7.6.1) are dropped in both directions.
package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors of Proxy, returned only when nothing was written to the client.
var (
	// ErrNoAddress: the upstream has no address.
	ErrNoAddress = errors.New("httpproxy: upstream has no address")
	// ErrUnreachable: no address could be connected to.
	ErrUnreachable = errors.New("httpproxy: upstream unreachable")
	// ErrTimeout: the response headers did not come in time.
	ErrTimeout = errors.New("httpproxy: upstream timed out")
	// ErrBadResponse: the upstream broke the connection or answered
	// something that is not HTTP/1.x.
	ErrBadResponse = errors.New("httpproxy: bad upstream response")
)

// Tuning.
const (
	maxIdlePerAddr = 512
	idleTimeout    = 60 * time.Second
	dialTimeout    = 3 * time.Second
	bufSize        = 16 << 10
)

// Upstream is an HTTP upstream: a set of addresses, each with a pool of
// idle connections, picked round-robin.
type Upstream struct {
	name  string
	pools []*pool
	next  atomic.Uint32
}

// New returns an upstream over addrs (host:port).
func New(name string, addrs []string) *Upstream {
	u := &Upstream{name: name}
	for _, a := range addrs {
		u.pools = append(u.pools, &pool{addr: a})
	}
	return u
}

// Addrs are the upstream's addresses, in the order given.
func (u *Upstream) Addrs() []string {
	out := make([]string, len(u.pools))
	for i, p := range u.pools {
		out[i] = p.addr
	}
	return out
}

// Name is the upstream's name.
func (u *Upstream) Name() string { return u.name }

// Close closes the idle connections.
func (u *Upstream) Close() {
	for _, p := range u.pools {
		p.closeIdle()
	}
}

// Options of one proxied request.
type Options struct {
	// HeaderTimeout bounds the wait for the response headers (at least
	// HeaderTimeout, at most twice it); zero means none. A long or
	// open-ended body then streams without a deadline.
	HeaderTimeout time.Duration
	// Drop names request headers not to pass (canonical form), besides
	// the hop-by-hop ones.
	Drop map[string]bool
	// Set are request headers set by the proxy, replacing the client's.
	Set [][2]string
	// Host, when set, replaces the request's Host (a mesh sidecar routes
	// by it); empty passes the client's.
	Host string
}

// Result describes a proxied response.
type Result struct {
	Status int   // the upstream's status
	Bytes  int64 // body bytes copied to the client
}

// Proxy sends r to the upstream and copies the response to w. An error is
// returned only when nothing was written to w (the caller answers it);
// once the response has started, a failure aborts the client connection
// (panic(http.ErrAbortHandler), as net/http/httputil does).
func (u *Upstream) Proxy(w http.ResponseWriter, r *http.Request, o Options) (Result, error) {
	if len(u.pools) == 0 {
		return Result{}, ErrNoAddress
	}
	replayable := r.Body == nil || r.Body == http.NoBody
	start := int(u.next.Add(1))
	var lastErr error
	for try := 0; try < len(u.pools)+1; try++ {
		p := u.pools[(start+try)%len(u.pools)]
		c, reused, err := p.get(r.Context())
		if err != nil {
			lastErr = err
			continue
		}
		res, err := u.roundTrip(c, p, w, r, o)
		if err == nil {
			return res, nil
		}
		c.close()
		var re *retryable
		if errors.As(err, &re) && reused && replayable {
			// The upstream closed an idle connection as we reused it: try
			// a fresh one (the next address, or this one again).
			lastErr = re.err
			continue
		}
		if errors.As(err, &re) {
			err = re.err
		}
		return Result{}, err
	}
	return Result{}, lastErr
}

// retryable is a failure before any response byte was read.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }

func (u *Upstream) roundTrip(c *conn, p *pool, w http.ResponseWriter, r *http.Request, o Options) (Result, error) {
	// A request that goes away (the client left, the server shuts down)
	// breaks off the exchange. Without a request body and with a header
	// deadline, the deadline bounds the wait for the headers anyway, and a
	// small body is read at once: the watch, which costs a registration
	// with the context per request, is then only set up for a long body.
	stop := func() bool { return true }
	watched := r.Body != nil && r.Body != http.NoBody || o.HeaderTimeout <= 0
	if watched {
		stop = context.AfterFunc(r.Context(), func() { c.nc.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}

	if err := writeRequest(c.bw, r, o); err != nil {
		if r.Context().Err() != nil {
			return Result{}, r.Context().Err()
		}
		return Result{}, &retryable{fmt.Errorf("%w: writing the request: %v", ErrBadResponse, err)}
	}
	c.armHeaderDeadline(o.HeaderTimeout)
	resp, err := readResponse(c.br, r)
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			return Result{}, r.Context().Err()
		case isTimeout(err):
			return Result{}, fmt.Errorf("%w after %v", ErrTimeout, o.HeaderTimeout)
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
			return Result{}, &retryable{fmt.Errorf("%w: %v", ErrBadResponse, err)}
		}
		return Result{}, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if resp.ContentLength < 0 || resp.ContentLength > smallBody {
		// A long or open-ended body streams without a deadline, and is
		// broken off when the request goes away.
		if !c.rd.IsZero() {
			c.nc.SetReadDeadline(time.Time{})
			c.rd = time.Time{}
		}
		if !watched {
			stop = context.AfterFunc(r.Context(), func() { c.nc.SetDeadline(time.Unix(1, 0)) })
			defer stop()
		}
	}

	h := w.Header()
	for k, vv := range resp.Header {
		if hopByHop(k) || k == "X-Request-Id" {
			continue
		}
		h[k] = vv
	}
	for _, k := range connectionTokens(resp.Header) {
		delete(h, k)
	}
	w.WriteHeader(resp.StatusCode)
	res := Result{Status: resp.StatusCode}

	var flush func()
	if resp.ContentLength < 0 {
		if f, ok := w.(http.Flusher); ok {
			flush = f.Flush
		}
	}
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	var rerr, werr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			m, err := w.Write(buf[:n])
			res.Bytes += int64(m)
			if err != nil {
				werr = err
				break
			}
			if flush != nil {
				flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	bufPool.Put(bp)
	if !stop() || werr != nil || rerr != nil || resp.Close || r.Close {
		c.close()
		if rerr != nil && werr == nil {
			// The upstream broke off mid-body: the client must not take a
			// short body for a whole one.
			panic(http.ErrAbortHandler)
		}
		return res, nil
	}
	p.put(c)
	return res, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// readResponse reads the response head, skipping 1xx interim responses.
func readResponse(br *bufio.Reader, r *http.Request) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("upstream switched protocols")
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		return resp, nil
	}
}

// writeRequest writes r's head and body to bw and flushes it.
func writeRequest(bw *bufio.Writer, r *http.Request, o Options) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	uri := r.URL.RequestURI()
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	if o.Host != "" {
		bw.WriteString(o.Host)
	} else {
		bw.WriteString(r.Host)
	}
	bw.WriteString("\r\n")

	conn := connectionTokens(r.Header)
	for k, vv := range r.Header {
		if hopByHop(k) || k == "Host" || k == "Content-Length" || o.Drop[k] || isSet(o.Set, k) || contains(conn, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	for _, kv := range o.Set {
		bw.WriteString(kv[0])
		bw.WriteString(": ")
		bw.WriteString(kv[1])
		bw.WriteString("\r\n")
	}

	hasBody := r.Body != nil && r.Body != http.NoBody
	switch {
	case !hasBody || r.ContentLength == 0:
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
		return bw.Flush()
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		n, err := io.Copy(bw, io.LimitReader(r.Body, r.ContentLength))
		if err == nil && n < r.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
		return bw.Flush()
	default:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, r.Body); err != nil {
			return err
		}
		if err := cw.Close(); err != nil {
			return err
		}
		bw.WriteString("\r\n")
		return bw.Flush()
	}
}

func isSet(set [][2]string, k string) bool {
	for _, kv := range set {
		if kv[0] == k {
			return true
		}
	}
	return false
}

func contains(list []string, k string) bool {
	for _, v := range list {
		if v == k {
			return true
		}
	}
	return false
}

// hopByHop reports whether a canonical header name is hop-by-hop.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// connectionTokens are the header names listed in Connection, which are
// hop-by-hop too.
func connectionTokens(h http.Header) []string {
	vs := h["Connection"]
	if len(vs) == 0 {
		return nil
	}
	var out []string
	for _, v := range vs {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, http.CanonicalHeaderKey(t))
			}
		}
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pool holds the idle connections to one address, most recent last.
type pool struct {
	addr string
	mu   sync.Mutex
	idle []*conn
}

type conn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	rd        time.Time // the read deadline set, zero for none
}

// smallBody is the largest response body read under the header deadline;
// a larger or open-ended one streams without a deadline.
const smallBody = 64 << 10

// armHeaderDeadline bounds the wait for the response headers by timeout
// (zero: none). Setting a deadline costs a runtime timer update per call,
// so a deadline already set far enough ahead is kept: the wait is bounded
// by between timeout and twice timeout.
func (c *conn) armHeaderDeadline(timeout time.Duration) {
	if timeout <= 0 {
		if !c.rd.IsZero() {
			c.nc.SetReadDeadline(time.Time{})
			c.rd = time.Time{}
		}
		return
	}
	now := time.Now()
	if c.rd.IsZero() || c.rd.Sub(now) < timeout {
		c.rd = now.Add(2 * timeout)
		c.nc.SetReadDeadline(c.rd)
	}
}

func (c *conn) close() { c.nc.Close() }

func (p *pool) get(ctx context.Context) (c *conn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		c = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(c.idleSince) < idleTimeout {
			p.mu.Unlock()
			return c, true, nil
		}
		c.close()
	}
	p.mu.Unlock()
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, bufSize), bw: bufio.NewWriterSize(nc, 4<<10)}, false, nil
}

func (p *pool) put(c *conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if len(p.idle) < maxIdlePerAddr {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.close()
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}
