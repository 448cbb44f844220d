package sidecar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file serves plain HTTP requests that arrive over HTTP/2 (the gRPC
// path's connections) with the HTTP path's handlers: the stream becomes an
// http.Request and an http.ResponseWriter, served on a goroutine of its
// own as net/http would. Such requests are rare (HTTP clients speak
// HTTP/1.1 to the outbound listener, and sidecars send plain HTTP to each
// other over HTTP/1.1), so this favours simplicity over speed.

var errStreamGone = errors.New("sidecar: stream reset")

// bridged is the HTTP side of a bridged pstream.
type bridged struct {
	cond     sync.Cond // on ps.mu: request data arrived, a window opened, the stream ended
	cancel   context.CancelFunc
	gone     bool // the caller reset the stream
	wroteHdr bool
	header   http.Header
}

// bridge serves ps (locked) with serve.
func (p *Proxy) bridge(ps *pstream, f *http2.MetaHeadersFrame, c *h2conn, serve http.HandlerFunc, b *batch) {
	br := &bridged{header: http.Header{}}
	br.cond.L = &ps.mu
	ps.bridge = br
	u, err := url.ParseRequestURI(f.PseudoValue("path"))
	if err != nil || f.PseudoValue("method") == "" || f.PseudoValue("method") == http.MethodConnect {
		ps.down.c.reset(ps.down, http2.ErrCodeProtocol, b)
		ps.completeLocked(b)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	if c.info != nil {
		ctx = context.WithValue(ctx, connInfoKey{}, c.info)
	}
	br.cancel = cancel
	r := (&http.Request{
		Method:     f.PseudoValue("method"),
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
		Host:       f.PseudoValue("authority"),
		RequestURI: f.PseudoValue("path"),
		RemoteAddr: c.nc.RemoteAddr().String(),
		TLS:        c.tlsState,
	}).WithContext(ctx)
	for _, hf := range f.RegularFields() {
		r.Header.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
	}
	r.ContentLength = -1
	if ps.reqEnded {
		r.ContentLength = 0
		r.Body = http.NoBody
	} else {
		if cl, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
			r.ContentLength = cl
		}
		r.Body = &bridgeBody{ps}
	}
	w := &bridgeWriter{ps: ps}
	go func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				p.log.Error("mesh: panic serving a request", "panic", v)
			}
			w.finish()
		}()
		serve(w, r)
	}()
}

// bridgeBody is the request body: what the caller sends on the stream.
type bridgeBody struct{ ps *pstream }

func (b *bridgeBody) Read(p []byte) (int, error) {
	ps := b.ps
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for len(ps.reqBuf) == 0 {
		switch {
		case ps.bridge.gone || ps.done:
			return 0, errStreamGone
		case ps.reqEnded:
			return 0, io.EOF
		}
		ps.bridge.cond.Wait()
	}
	n := copy(p, ps.reqBuf)
	ps.reqSent += int64(n)
	ps.creditRequestLocked(nil)
	return n, nil
}

func (b *bridgeBody) Close() error { return nil }

// bridgeWriter writes the response on the stream.
type bridgeWriter struct {
	ps *pstream
}

func (w *bridgeWriter) Header() http.Header { return w.ps.bridge.header }

func (w *bridgeWriter) WriteHeader(code int) {
	ps := w.ps
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w.writeHeaderLocked(code)
}

func (w *bridgeWriter) writeHeaderLocked(code int) {
	ps := w.ps
	br := ps.bridge
	if br.wroteHdr || ps.done {
		return
	}
	br.wroteHdr = true
	ps.respStarted = true
	fields := []hpack.HeaderField{{Name: ":status", Value: statusLabel(code)}}
	for k, vv := range br.header {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		lk := strings.ToLower(k)
		if !relayField(hpack.HeaderField{Name: lk}) || lk == "trailer" {
			continue
		}
		for _, v := range vv {
			fields = append(fields, hpack.HeaderField{Name: lk, Value: v})
		}
	}
	ps.down.c.writeHeaders(ps.down, fields, false, nil)
}

func (w *bridgeWriter) Write(p []byte) (int, error) {
	ps := w.ps
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	written := 0
	for len(p) > 0 {
		if ps.done || ps.bridge.gone {
			return written, errStreamGone
		}
		n, err := ps.down.c.writeData(ps.down, p, false, nil)
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
		if len(p) > 0 {
			ps.bridge.cond.Wait() // for the window (resume)
		}
	}
	return written, nil
}

// Flush is a no-op: every write is flushed.
func (w *bridgeWriter) Flush() {}

// finish ends the response: trailers (Trailer:-prefixed headers) or an
// empty end of stream.
func (w *bridgeWriter) finish() {
	ps := w.ps
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w.writeHeaderLocked(http.StatusOK)
	if ps.done {
		return
	}
	var trailers []hpack.HeaderField
	for k, vv := range ps.bridge.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				trailers = append(trailers, hpack.HeaderField{Name: strings.ToLower(name), Value: v})
			}
		}
	}
	if !ps.bridge.gone {
		if trailers != nil {
			ps.down.c.writeHeaders(ps.down, trailers, true, nil)
		} else {
			ps.down.c.writeData(ps.down, nil, true, nil)
		}
	}
	ps.completeLocked(nil)
}

// bridgeEvent handles what happens to a bridged stream (ps locked):
// request data, request end, window updates, resets. It reports whether
// it did.
func (ps *pstream) bridgeEvent(h *half, data []byte, end, reset bool) bool {
	br := ps.bridge
	if br == nil {
		return false
	}
	if h == ps.down {
		switch {
		case reset:
			br.gone = true
			br.cancel()
		default:
			ps.reqBuf = append(ps.reqBuf, data...)
			ps.reqTotal += int64(len(data))
			ps.reqEnded = ps.reqEnded || end
		}
	}
	br.cond.Broadcast()
	return true
}
