package sidecar

import (
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// destination is one service this sidecar may call, as one snapshot says.
type destination struct {
	name string
	up   *upstream

	// all holds the healthy endpoints; byVersion the same by version.
	all       []*endpoint
	byVersion map[string][]*endpoint
	routes    []route
	// split holds the versions that have healthy endpoints, with their
	// cumulative weights; empty means every endpoint alike.
	split      []weighted
	splitTotal uint64
	// splitNone is set when a split is configured but none of its versions
	// has a healthy endpoint.
	splitNone bool

	timeout, perTry time.Duration
	attempts        int
	retryOn         uint8 // 1<<failure
	budgetPct       float64
	minRetries      int64
	outlier         outlierPolicy

	abortPct, delayPct float64
	abortCode          codes.Code
	abortStatus        int
	delay              time.Duration

	timeoutMsg, noUpstreamMsg string
}

type route struct {
	headers [][2]string // canonical name, value
	lower   [][2]string // HTTP/2 (lower-case) name, value
	version string
}

func (rt *route) matches(h http.Header) bool {
	for _, kv := range rt.headers {
		vv := h[kv[0]]
		if len(vv) == 0 || vv[0] != kv[1] {
			return false
		}
	}
	return true
}

type weighted struct {
	version string
	cum     uint64 // weights up to and including this version
}

type outlierPolicy struct {
	consecutive int32 // 0: no ejection
	base        time.Duration
	maxPercent  int
}

// endpoint is one instance's inbound address. Its counters outlive
// snapshots (see Proxy.endpoints).
type endpoint struct {
	id, addr, version string
	pool              *upPool // gRPC connections to addr

	inflight     atomic.Int64
	failures     atomic.Int32 // consecutive gateway errors
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 or past: not ejected
	ejections    atomic.Int32
}

type endpointKey struct{ dest, id, addr, version string }

func (e *endpoint) ejected(now int64) bool { return e.ejectedUntil.Load() > now }

// setEndpoints installs the healthy endpoints and the split over them.
func (d *destination) setEndpoints(eps []*endpoint, split []*meshv1.WeightedVersion) {
	d.all = eps
	d.byVersion = map[string][]*endpoint{}
	for _, e := range eps {
		d.byVersion[e.version] = append(d.byVersion[e.version], e)
	}
	// A version without a healthy endpoint gets no share: its traffic goes
	// to the versions that can take it, rather than failing.
	for _, w := range split {
		if w.GetWeight() == 0 || len(d.byVersion[w.GetVersion()]) == 0 {
			continue
		}
		d.splitTotal += uint64(w.GetWeight())
		d.split = append(d.split, weighted{version: w.GetVersion(), cum: d.splitTotal})
	}
	d.splitNone = len(split) > 0 && len(d.split) == 0
}

// candidates returns the endpoints a request may go to: those of the
// version its headers route it to, else of a version drawn by weight, else
// all of them.
func (d *destination) candidates(h http.Header) []*endpoint {
	return d.pick(func(r *route) bool { return r.matches(h) })
}

// candidatesFields is candidates for HTTP/2 header fields.
func (d *destination) candidatesFields(fs []hpack.HeaderField) []*endpoint {
	return d.pick(func(r *route) bool { return r.matchesFields(fs) })
}

// pick is candidates with the header match given as matches.
func (d *destination) pick(matches func(*route) bool) []*endpoint {
	for i := range d.routes {
		if matches(&d.routes[i]) {
			return d.byVersion[d.routes[i].version]
		}
	}
	switch {
	case d.splitNone:
		return nil
	case len(d.split) == 1:
		return d.byVersion[d.split[0].version]
	case len(d.split) > 1:
		n := rand.Uint64N(d.splitTotal)
		for _, w := range d.split {
			if n < w.cum {
				return d.byVersion[w.version]
			}
		}
	}
	return d.all
}

// pick chooses among eps by power of two choices, least requests in flight
// winning, skipping ejected endpoints and avoid (the endpoint that just
// failed). When every endpoint is ejected or avoided it picks among all of
// them anyway: ejection thins a version out, it never empties it.
func pick(eps []*endpoint, avoid *endpoint, now int64) *endpoint {
	switch len(eps) {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	var buf [32]*endpoint
	cands := buf[:0]
	for _, e := range eps {
		if e != avoid && !e.ejected(now) {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		for _, e := range eps {
			if !e.ejected(now) {
				cands = append(cands, e)
			}
		}
	}
	if len(cands) == 0 {
		cands = eps
	}
	if len(cands) == 1 {
		return cands[0]
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	if b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}

// observe feeds one attempt's outcome to outlier detection: a gateway
// error (reset, unavailable, 502/503/504) counts towards ejection, anything
// else clears the count.
func (d *destination) observe(e *endpoint, gatewayError bool, now int64) {
	if d.outlier.consecutive == 0 {
		return
	}
	if !gatewayError {
		if e.failures.Load() != 0 {
			e.failures.Store(0)
		}
		return
	}
	if e.failures.Add(1) >= d.outlier.consecutive {
		d.eject(e, now)
	}
}

// eject takes e out of rotation for the base ejection time times the
// number of times it was ejected (at most maxEjectionMultiplier), unless
// that would eject more than the allowed share of the destination's
// endpoints; at least one always stays.
func (d *destination) eject(e *endpoint, now int64) {
	u := d.up
	u.ejectMu.Lock()
	defer u.ejectMu.Unlock()
	if e.ejected(now) {
		return
	}
	n := len(d.all)
	ejected := 0
	for _, o := range d.all {
		if o.ejected(now) {
			ejected++
		}
	}
	limit := max(n*d.outlier.maxPercent/100, 1)
	limit = min(limit, n-1)
	if ejected >= limit {
		return
	}
	k := min(e.ejections.Add(1), maxEjectionMultiplier)
	length := d.outlier.base * time.Duration(k)
	e.ejectedUntil.Store(now + int64(length))
	e.failures.Store(0)
	u.ejectionsMetric.Inc()
	u.log.Warn("mesh endpoint ejected", "destination", d.name, "endpoint", e.addr,
		"instance", e.id, "version", e.version, "for", length, "ejections", k)
}

// retryAllowed reports whether the retry budget lets one more retry start:
// retries in flight stay below the larger of minRetries and budgetPct of
// the requests in flight to the destination.
func (d *destination) retryAllowed() bool {
	limit := int64(d.budgetPct * float64(d.up.active.Load()) / 100)
	limit = max(limit, d.minRetries)
	return d.up.retrying.Load() < limit
}
