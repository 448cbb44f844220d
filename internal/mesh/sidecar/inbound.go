package sidecar

import (
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// callerHeader names the caller's verified service to the application.
const callerHeader = "X-Marquee-Caller"

// serveInbound authorizes a request from another sidecar and hands it to
// the application.
func (p *Proxy) serveInbound(w http.ResponseWriter, r *http.Request) {
	ex := exchange{dir: dirInbound, start: time.Now(), dst: p.cfg.Service, ver: p.cfg.Version,
		path: r.URL.Path, grpc: isGRPC(r.Header), attempts: 1}
	ex.method = methodLabel(r, ex.grpc)
	ctx := p.startSpan(r, &ex, trace.SpanKindServer, "mesh inbound")
	defer p.finish(ctx, &ex, r)

	ci, err := callerOf(r)
	if err != nil {
		// The handshake verified the identity; this is a certificate the
		// TLS configuration should not have let through.
		ex.src = "unknown"
		ex.fail(w, meshError{reasonDenied, codes.PermissionDenied, http.StatusForbidden, "mesh: denied: no mesh identity"})
		return
	}
	ex.src = ci.caller
	st := p.state.Load()
	if st == nil {
		ex.fail(w, errNotReady())
		return
	}
	if set := st.allow[ci.caller]; set == nil || !set.allows(r.URL.Path) {
		ex.fail(w, meshError{reasonDenied, codes.PermissionDenied, http.StatusForbidden,
			"mesh: denied by policy: " + ci.caller + " may not call " + truncate(r.URL.Path, 200)})
		return
	}

	// gRPC comes over HTTP/2, which the gRPC path relays; this is the
	// plain HTTP one.
	app := p.app
	switch {
	case ex.grpc:
		ex.fail(w, meshError{reasonUnsupported, codes.Unimplemented, http.StatusHTTPVersionNotSupported,
			"mesh: gRPC needs HTTP/2"})
		return
	case app.httpAddr == "":
		ex.fail(w, meshError{reasonUnsupported, codes.Unimplemented, http.StatusNotImplemented,
			"mesh: " + p.cfg.Service + " takes gRPC requests only"})
		return
	}
	transport, addr := app.http, app.httpAddr
	ex.endpoint = addr

	cleanRequestHeader(r)
	// Replaces whatever the client sent: only the certificate names the
	// caller.
	r.Header[callerHeader] = ci.header
	propagate(ctx, &ex, r.Header)
	out := r.WithContext(ctx)
	out.URL = &url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Close = false
	resp, err := transport.RoundTrip(out)
	if err != nil {
		if r.Context().Err() != nil {
			ex.canceled()
			return
		}
		ex.fail(w, meshError{reasonReset, codes.Unavailable, http.StatusBadGateway,
			"mesh: " + p.cfg.Service + " application unreachable: " + truncate(err.Error(), 200)})
		return
	}
	relay(w, resp, &ex, func() meshError {
		if r.Context().Err() != nil {
			return meshError{}
		}
		return meshError{reasonReset, codes.Unavailable, http.StatusBadGateway,
			"mesh: " + p.cfg.Service + " application broke off the response"}
	})
}
