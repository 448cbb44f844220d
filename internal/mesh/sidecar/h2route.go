package sidecar

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// newStream binds a pstream to a stream the caller opened on c.
func (p *Proxy) newStream(c *h2conn, f *http2.MetaHeadersFrame, dir string) *pstream {
	ps := &pstream{p: p, dir: dir}
	ps.down = c.acceptStream(ps, f.StreamID, f.StreamEnded())
	ps.reqEnded = f.StreamEnded()
	p.live.Add(1)
	path := f.PseudoValue("path")
	ps.ex = exchange{dir: dir, start: time.Now(), path: path, method: path, grpc: true}
	ps.rid = fieldValue(f.Fields, "x-request-id")
	return ps
}

// startSpan starts the call's span, a child of the trace context it
// carries.
func (ps *pstream) startSpan(f *http2.MetaHeadersFrame) {
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), fieldCarrier{&f.Fields})
	kind, name := trace.SpanKindClient, "mesh outbound"
	if ps.dir == dirInbound {
		kind, name = trace.SpanKindServer, "mesh inbound"
	}
	ps.ctx, ps.ex.span = ps.p.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(ps.ex.start))
}

// checkRequest reports what is wrong with a request's pseudo-headers, or
// "" (the frame reader has checked their form).
func checkRequest(f *http2.MetaHeadersFrame) string {
	switch {
	case f.PseudoValue("method") == "":
		return "no :method"
	case f.PseudoValue("method") == http.MethodConnect || f.PseudoValue("protocol") != "":
		return "CONNECT is not proxied"
	case f.PseudoValue("path") == "" || f.PseudoValue("path")[0] != '/':
		return "no :path"
	}
	return ""
}

// forwardFields builds the request headers sent on: the pseudo-headers
// with scheme, then the caller's fields without hop-by-hop ones (and
// without drop), then add.
func forwardFields(f *http2.MetaHeadersFrame, scheme, drop string, add ...hpack.HeaderField) []hpack.HeaderField {
	regular := f.RegularFields()
	out := make([]hpack.HeaderField, 0, len(regular)+len(add)+5)
	out = append(out,
		hpack.HeaderField{Name: ":method", Value: f.PseudoValue("method")},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":authority", Value: f.PseudoValue("authority")},
		hpack.HeaderField{Name: ":path", Value: f.PseudoValue("path")},
	)
	for _, hf := range regular {
		if relayField(hf) && hf.Name != drop {
			out = append(out, hf)
		}
	}
	return append(out, add...)
}

// propagateFields makes the span the callee's parent.
func (ps *pstream) propagateFields() {
	if ps.ex.span.IsRecording() {
		otel.GetTextMapPropagator().Inject(ps.ctx, fieldCarrier{&ps.fields})
	}
}

// startOutbound takes a call of the local application (a new stream on an
// outbound connection) and routes it to the service its :authority names.
func (p *Proxy) startOutbound(c *h2conn, f *http2.MetaHeadersFrame, b *batch) {
	ps := p.newStream(c, f, dirOutbound)
	ps.ex.src = p.cfg.Service
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !isGRPCContentType(fieldValue(f.Fields, "content-type")) {
		p.bridge(ps, f, c, p.serveOutbound, b)
		return
	}
	ps.startSpan(f)
	if msg := checkRequest(f); msg != "" {
		ps.ex.dst = "unknown"
		ps.resetAllLocked(http2.ErrCodeProtocol, b)
		return
	}
	st := p.state.Load()
	if st == nil {
		ps.ex.dst = ""
		ps.failLocked(errNotReady(), b)
		return
	}
	name := hostOnly(f.PseudoValue("authority"))
	d := st.dests[name]
	if d == nil {
		ps.ex.dst = "unknown"
		ps.failLocked(meshError{reasonUnknownDest, codes.Unavailable, http.StatusServiceUnavailable,
			"mesh: unknown destination " + truncate(name, 100)}, b)
		return
	}
	ps.d, ps.route, ps.ex.dst = d, outboundRoute{}, d.name
	d.up.active.Add(1)
	ps.counted = true
	ps.fields = forwardFields(f, "https", "")
	ps.propagateFields()
	// The request is kept until the response begins (up to maxReplay), so
	// that one refused unprocessed can be sent again, and for the retry
	// policy.
	ps.replay = true
	if d.timeout > 0 {
		ps.armTimer(d.timeout)
	}
	if d.delayPct > 0 && chance(d.delayPct) {
		d.up.delayMetric.Inc()
		ps.waiting = true
		fields := f.Fields
		time.AfterFunc(d.delay, func() {
			b := new(batch)
			defer b.flush()
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if ps.done {
				return
			}
			ps.waiting = false
			ps.routeOutboundLocked(fields, b)
		})
		return
	}
	ps.routeOutboundLocked(f.Fields, b)
}

// routeOutboundLocked applies an abort fault, then picks the endpoints by
// header route and split, and starts the first attempt.
func (ps *pstream) routeOutboundLocked(fields []hpack.HeaderField, b *batch) {
	d := ps.d
	if d.abortPct > 0 && chance(d.abortPct) {
		d.up.abortMetric.Inc()
		ps.failLocked(meshError{reasonFault, d.abortCode, d.abortStatus, "mesh: fault injected (abort) by policy"}, b)
		return
	}
	ps.eps = d.candidatesFields(fields)
	if len(ps.eps) == 0 {
		ps.failLocked(meshError{reasonNoUpstream, codes.Unavailable, http.StatusServiceUnavailable, d.noUpstreamMsg}, b)
		return
	}
	ps.attemptLocked(b)
}

// outboundRoute picks an endpoint of the destination for each attempt,
// another than the last one's when there is one.
type outboundRoute struct{}

func (outboundRoute) next(ps *pstream, b *batch) *upPool {
	ep := pick(ps.eps, ps.ep, time.Now().UnixNano())
	ps.ep = ep
	ps.ex.endpoint, ps.ex.ver = ep.addr, ep.version
	return ep.pool
}

func (rt *route) matchesFields(fs []hpack.HeaderField) bool {
	for _, kv := range rt.lower {
		if fieldValue(fs, kv[0]) != kv[1] {
			return false
		}
	}
	return true
}

// startInbound takes a call from a peer sidecar (a new stream on an
// inbound connection), authorizes it and passes it to the application.
func (p *Proxy) startInbound(c *h2conn, f *http2.MetaHeadersFrame, b *batch) {
	ps := p.newStream(c, f, dirInbound)
	ps.ex.dst, ps.ex.ver, ps.ex.src = p.cfg.Service, p.cfg.Version, c.caller
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !isGRPCContentType(fieldValue(f.Fields, "content-type")) {
		p.bridge(ps, f, c, p.serveInbound, b)
		return
	}
	ps.startSpan(f)
	if msg := checkRequest(f); msg != "" {
		ps.resetAllLocked(http2.ErrCodeProtocol, b)
		return
	}
	st := p.state.Load()
	if st == nil {
		ps.failLocked(errNotReady(), b)
		return
	}
	path := f.PseudoValue("path")
	if set := st.allow[c.caller]; set == nil || !set.allows(path) {
		ps.failLocked(meshError{reasonDenied, codes.PermissionDenied, http.StatusForbidden,
			"mesh: denied by policy: " + c.caller + " may not call " + truncate(path, 200)}, b)
		return
	}
	// The caller header is the certificate's word, never the request's.
	ps.fields = forwardFields(f, "http", "x-marquee-caller", hpack.HeaderField{Name: "x-marquee-caller", Value: c.caller})
	ps.propagateFields()
	ps.route = inboundRoute{p.appPool}
	ps.ex.endpoint = p.cfg.AppGRPC
	ps.replay = true
	ps.attemptLocked(b)
}

// inboundRoute sends every call to the application.
type inboundRoute struct{ pool *upPool }

func (r inboundRoute) next(*pstream, *batch) *upPool { return r.pool }
