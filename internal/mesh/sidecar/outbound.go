package sidecar

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
)

// serveOutbound routes a request of the local application to the service
// its :authority (Host) names.
func (p *Proxy) serveOutbound(w http.ResponseWriter, r *http.Request) {
	ex := exchange{dir: dirOutbound, start: time.Now(), src: p.cfg.Service, path: r.URL.Path, grpc: isGRPC(r.Header)}
	ex.method = methodLabel(r, ex.grpc)
	ctx := p.startSpan(r, &ex, trace.SpanKindClient, "mesh outbound")
	defer p.finish(ctx, &ex, r)

	st := p.state.Load()
	if st == nil {
		ex.fail(w, errNotReady())
		return
	}
	name := hostOnly(r.Host)
	d := st.dests[name]
	if d == nil {
		// The label is fixed: the name comes from the request.
		ex.dst = "unknown"
		ex.fail(w, meshError{reasonUnknownDest, codes.Unavailable, http.StatusServiceUnavailable,
			"mesh: unknown destination " + truncate(name, 100)})
		return
	}
	ex.dst = d.name
	p.forward(ctx, w, r, d, &ex)
}

// methodLabel is the method metric label: the gRPC method (the path), or
// the HTTP method, since plain HTTP paths (media files, ids) are unbounded.
func methodLabel(r *http.Request, grpc bool) string {
	if grpc {
		return r.URL.Path
	}
	return r.Method
}

// forward applies the destination's faults, timeout and routing, and
// sends the request to one endpoint after another until one answers or
// the retry policy or budget says stop.
func (p *Proxy) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, d *destination, ex *exchange) {
	u := d.up
	u.active.Add(1)
	defer u.active.Add(-1)
	client := r.Context()
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}

	if d.delayPct > 0 && chance(d.delayPct) {
		u.delayMetric.Inc()
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if client.Err() != nil {
				ex.canceled()
			} else {
				ex.fail(w, d.errTimeout(d.timeout))
			}
			return
		}
	}
	if d.abortPct > 0 && chance(d.abortPct) {
		u.abortMetric.Inc()
		ex.fail(w, meshError{reasonFault, d.abortCode, d.abortStatus, "mesh: fault injected (abort) by policy"})
		return
	}

	eps := d.candidates(r.Header)
	if len(eps) == 0 {
		ex.fail(w, meshError{reasonNoUpstream, codes.Unavailable, http.StatusServiceUnavailable, d.noUpstreamMsg})
		return
	}

	cleanRequestHeader(r)
	propagate(ctx, ex, r.Header)

	retry := d.attempts > 0 && d.retryOn != 0
	var rb *replayBody
	if retry && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > maxReplay {
			retry = false
		} else {
			rb = newReplayBody(r.Body)
		}
	}

	var prev *endpoint
	now := ex.start.UnixNano()
	for attempt := 1; ; attempt++ {
		ep := pick(eps, prev, now)
		ex.attempts, ex.endpoint, ex.ver = attempt, ep.addr, ep.version
		if p.try(ctx, client, w, r, d, ep, rb, ex, retry && attempt <= d.attempts, attempt > 1) {
			return
		}
		u.retriesMetric.Inc()
		prev = ep
		now = time.Now().UnixNano()
	}
}

// try makes one attempt at ep. It returns false, having written nothing,
// when the attempt failed in a way the policy retries and the budget allows
// a retry, which it then counts as started; true when the request has been
// answered.
func (p *Proxy) try(ctx, client context.Context, w http.ResponseWriter, r *http.Request, d *destination, ep *endpoint, rb *replayBody, ex *exchange, mayRetry, isRetry bool) bool {
	u := d.up
	if isRetry {
		defer u.retrying.Add(-1)
	}
	tctx := ctx
	if d.perTry > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, d.perTry)
		defer cancel()
	}
	out := r.WithContext(tctx)
	out.URL = &url.URL{Scheme: "https", Host: ep.addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Close = false
	if rb != nil {
		out.Body = rb.reader()
		// The transport replays a request itself when a connection it
		// picked turns out to be closing (GOAWAY).
		out.GetBody = func() (io.ReadCloser, error) { return rb.reader(), nil }
	}

	ep.inflight.Add(1)
	defer ep.inflight.Add(-1)
	resp, err := u.http.Load().RoundTrip(out)
	if err != nil {
		f := classifyError(client, ctx, tctx)
		d.observe(ep, f.gateway(), time.Now().UnixNano())
		if p.mayRetry(d, f, mayRetry, rb, ctx) {
			return false
		}
		switch f {
		case failCanceled:
			ex.canceled()
		case failTimeout:
			ex.fail(w, d.errTimeout(d.timeout))
		case failDeadline:
			ex.fail(w, d.errTimeout(d.perTry))
		default:
			ex.fail(w, meshError{reasonReset, codes.Unavailable, http.StatusServiceUnavailable,
				"mesh: upstream reset calling " + d.name + ": " + truncate(err.Error(), 200)})
		}
		return true
	}

	f := classifyResponse(resp, ex.grpc)
	if f != failNone && p.mayRetry(d, f, mayRetry, rb, ctx) {
		d.observe(ep, f.gateway(), time.Now().UnixNano())
		resp.Body.Close()
		return false
	}
	gw := relay(w, resp, ex, func() meshError {
		switch {
		case client.Err() != nil:
			return meshError{}
		case ctx.Err() != nil:
			return d.errTimeout(d.timeout)
		case tctx.Err() != nil:
			return d.errTimeout(d.perTry)
		}
		return meshError{reasonReset, codes.Unavailable, http.StatusBadGateway, "mesh: upstream reset calling " + d.name + " during the response"}
	})
	d.observe(ep, f.gateway() || gw, time.Now().UnixNano())
	return true
}

// mayRetry reports whether failure f of an attempt is retried, and if so
// counts the retry as started (in the budget's retries in flight).
func (p *Proxy) mayRetry(d *destination, f failure, allowed bool, rb *replayBody, ctx context.Context) bool {
	if !allowed || d.retryOn&(1<<f) == 0 || ctx.Err() != nil {
		return false
	}
	if rb != nil && !rb.replayable() {
		return false
	}
	if !d.retryAllowed() {
		return false
	}
	d.up.retrying.Add(1)
	return true
}

func (d *destination) errTimeout(after time.Duration) meshError {
	msg := d.timeoutMsg
	if after != d.timeout {
		msg = "mesh: timeout after " + after.String() + " (per try) calling " + d.name
	}
	return meshError{reasonTimeout, codes.DeadlineExceeded, http.StatusGatewayTimeout, msg}
}

// chance reports true with probability pct/100.
func chance(pct float64) bool {
	return pct >= 100 || rand.Float64()*100 < pct
}

// truncate keeps error messages built from requests short.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
