package sidecar

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

// Limits on snapshot values, beyond which a snapshot is refused.
const (
	maxTimeout          = 10 * time.Minute
	maxRetryAttempts    = 10
	maxFaultDelay       = 10 * time.Minute
	maxBaseEjection     = time.Hour
	maxEndpoints        = 10000
	maxVersionLen       = 63
	defaultBaseEjection = 30 * time.Second
	defaultMaxEjectPct  = 10
	// maxEjectionMultiplier caps how much longer than the base a repeat
	// ejection lasts.
	maxEjectionMultiplier = 10
)

// state is one applied snapshot, compiled for the request path. It is
// never modified once published.
type state struct {
	version uint64
	dests   map[string]*destination
	allow   map[string]*methodSet // by caller
}

// methodSet is what one caller may call.
type methodSet struct {
	any      bool
	exact    map[string]struct{}
	prefixes []string
}

func (m *methodSet) allows(path string) bool {
	if m.any {
		return true
	}
	if _, ok := m.exact[path]; ok {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Apply validates s and makes it the configuration of new requests. A
// snapshot whose version is not above the current one is refused, as is one
// for another service or with values out of range; the error says what is
// wrong (the agent sends it back to the control plane) and the current
// configuration stays.
func (p *Proxy) Apply(s *meshv1.Snapshot) error {
	if s == nil {
		return errors.New("sidecar: nil snapshot")
	}
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	cur := p.state.Load()
	if cur != nil && s.GetVersion() <= cur.version {
		return fmt.Errorf("sidecar: snapshot version %d is not newer than version %d in use", s.GetVersion(), cur.version)
	}
	if s.GetVersion() == 0 {
		return errors.New("sidecar: snapshot version 0 (versions start at 1)")
	}
	if svc := s.GetService(); svc != "" && svc != p.cfg.Service {
		return fmt.Errorf("sidecar: snapshot is for service %q, this sidecar is %q", svc, p.cfg.Service)
	}
	st, used, err := p.compile(s)
	if err != nil {
		return fmt.Errorf("sidecar: snapshot version %d: %w", s.GetVersion(), err)
	}
	p.state.Store(st)
	p.m.snapshot.Set(float64(st.version))

	// Forget endpoints and upstreams the snapshot no longer names; requests
	// still using them hold their own references.
	for k := range p.endpoints {
		if !used.endpoints[k] {
			delete(p.endpoints, k)
		}
	}
	for name, u := range p.upstreams {
		if !used.upstreams[name] {
			u.http.Load().CloseIdleConnections()
			for _, pool := range u.pools {
				pool.retire()
			}
			delete(p.upstreams, name)
			continue
		}
		for addr, pool := range u.pools {
			if !used.pools[pool] {
				pool.retire()
				delete(u.pools, addr)
			}
		}
	}
	p.log.Info("mesh snapshot applied", "service", p.cfg.Service, "version", st.version,
		"policy_version", s.GetPolicyVersion(), "destinations", len(st.dests))
	return nil
}

type usedSet struct {
	endpoints map[endpointKey]bool
	upstreams map[string]bool
	pools     map[*upPool]bool
}

// compile checks s and builds the state it describes, reusing endpoint and
// upstream objects that the previous snapshot had. It changes nothing in p
// beyond adding new entries to p.endpoints and p.upstreams.
func (p *Proxy) compile(s *meshv1.Snapshot) (*state, usedSet, error) {
	used := usedSet{endpoints: map[endpointKey]bool{}, upstreams: map[string]bool{}, pools: map[*upPool]bool{}}
	st := &state{version: s.GetVersion(), dests: map[string]*destination{}, allow: map[string]*methodSet{}}
	var errs []error
	for i, r := range s.GetInbound().GetAllow() {
		if err := compileAllow(st.allow, r); err != nil {
			errs = append(errs, fmt.Errorf("inbound.allow[%d]: %w", i, err))
		}
	}
	type pending struct {
		d  *destination
		in *meshv1.Destination
	}
	var dests []pending
	for i, in := range s.GetDestinations() {
		d, err := compileDestination(in)
		if err != nil {
			errs = append(errs, fmt.Errorf("destinations[%d] (%s): %w", i, in.GetService(), err))
			continue
		}
		if _, dup := st.dests[d.name]; dup {
			errs = append(errs, fmt.Errorf("destinations[%d]: %s appears twice", i, d.name))
			continue
		}
		st.dests[d.name] = d
		dests = append(dests, pending{d, in})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, used, err
	}
	// Only a valid snapshot touches the shared endpoint and upstream maps.
	for _, pd := range dests {
		d := pd.d
		d.up = p.upstream(d.name)
		used.upstreams[d.name] = true
		var eps []*endpoint
		for _, e := range pd.in.GetEndpoints() {
			if !e.GetHealthy() {
				continue
			}
			k := endpointKey{d.name, e.GetInstanceId(), e.GetAddress(), e.GetVersion()}
			ep := p.endpoints[k]
			if ep == nil {
				ep = &endpoint{id: k.id, addr: k.addr, version: k.version, pool: d.up.pool(p, k.addr)}
				p.endpoints[k] = ep
			}
			used.pools[ep.pool] = true
			used.endpoints[k] = true
			eps = append(eps, ep)
		}
		d.setEndpoints(eps, pd.in.GetSplit())
	}
	return st, used, nil
}

func (p *Proxy) upstream(name string) *upstream {
	u := p.upstreams[name]
	if u == nil {
		u = newUpstream(name, p.cfg.Certs.ClientTLS(name), p.m, p.log)
		p.upstreams[name] = u
	}
	return u
}

func compileAllow(allow map[string]*methodSet, r *meshv1.AllowRule) error {
	caller := r.GetCaller()
	if err := ca.ValidService(caller); err != nil {
		return fmt.Errorf("caller: %w", err)
	}
	if len(r.GetMethods()) == 0 {
		return fmt.Errorf("caller %s: no methods", caller)
	}
	set := allow[caller]
	if set == nil {
		set = &methodSet{exact: map[string]struct{}{}}
		allow[caller] = set
	}
	for _, m := range r.GetMethods() {
		switch {
		case m == "*":
			set.any = true
		case m == "" || m[0] != '/':
			return fmt.Errorf("caller %s: method %q must be \"*\" or a path starting with /", caller, m)
		case strings.IndexByte(m[:len(m)-1], '*') >= 0:
			return fmt.Errorf("caller %s: method %q may only end in *", caller, m)
		case m[len(m)-1] == '*':
			set.prefixes = append(set.prefixes, m[:len(m)-1])
		default:
			set.exact[m] = struct{}{}
		}
	}
	return nil
}

// compileDestination checks a destination's settings and compiles them;
// endpoints are added by the caller.
func compileDestination(in *meshv1.Destination) (*destination, error) {
	if in == nil {
		return nil, errors.New("empty destination")
	}
	if err := ca.ValidService(in.GetService()); err != nil {
		return nil, err
	}
	d := &destination{name: in.GetService()}
	var err error
	if d.timeout, err = duration("timeout", in.GetTimeout(), maxTimeout); err != nil {
		return nil, err
	}
	d.timeoutMsg = "mesh: timeout after " + d.timeout.String() + " calling " + d.name
	d.noUpstreamMsg = "mesh: no healthy upstream for " + d.name

	if len(in.GetEndpoints()) > maxEndpoints {
		return nil, fmt.Errorf("%d endpoints, at most %d", len(in.GetEndpoints()), maxEndpoints)
	}
	seen := map[string]bool{}
	for i, e := range in.GetEndpoints() {
		if err := checkEndpoint(e); err != nil {
			return nil, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		if seen[e.GetInstanceId()] {
			return nil, fmt.Errorf("endpoints[%d]: instance %s appears twice", i, e.GetInstanceId())
		}
		seen[e.GetInstanceId()] = true
	}

	for i, r := range in.GetRoutes() {
		rt, err := compileRoute(r)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		d.routes = append(d.routes, rt)
	}
	versions := map[string]bool{}
	for i, w := range in.GetSplit() {
		if err := checkVersion(w.GetVersion()); err != nil {
			return nil, fmt.Errorf("split[%d]: %w", i, err)
		}
		if versions[w.GetVersion()] {
			return nil, fmt.Errorf("split[%d]: version %s appears twice", i, w.GetVersion())
		}
		versions[w.GetVersion()] = true
	}
	if len(in.GetSplit()) > 0 {
		var total uint64
		for _, w := range in.GetSplit() {
			total += uint64(w.GetWeight())
		}
		if total == 0 {
			return nil, errors.New("split: all weights are zero")
		}
	}

	if r := in.GetRetries(); r != nil {
		if err := d.compileRetries(r); err != nil {
			return nil, fmt.Errorf("retries: %w", err)
		}
	}
	if o := in.GetOutlier(); o != nil {
		if err := d.compileOutlier(o); err != nil {
			return nil, fmt.Errorf("outlier: %w", err)
		}
	}
	if f := in.GetFault(); f != nil {
		if err := d.compileFault(f); err != nil {
			return nil, fmt.Errorf("fault: %w", err)
		}
	}
	return d, nil
}

func checkEndpoint(e *meshv1.Endpoint) error {
	if e == nil {
		return errors.New("empty endpoint")
	}
	if e.GetInstanceId() == "" || len(e.GetInstanceId()) > 253 {
		return fmt.Errorf("instance id %q must have 1 to 253 characters", e.GetInstanceId())
	}
	host, port, err := net.SplitHostPort(e.GetAddress())
	if err != nil {
		return fmt.Errorf("address %q: %w", e.GetAddress(), err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || host == "" {
		return fmt.Errorf("address %q: want host:port with a port from 1 to 65535", e.GetAddress())
	}
	if v := e.GetVersion(); v != "" {
		if err := checkVersion(v); err != nil {
			return err
		}
	}
	return nil
}

func checkVersion(v string) error {
	if v == "" || len(v) > maxVersionLen {
		return fmt.Errorf("version %q must have 1 to %d characters", v, maxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("version %q has a space or a character outside printable ASCII", v)
		}
	}
	return nil
}

func compileRoute(r *meshv1.Route) (route, error) {
	if len(r.GetHeaders()) == 0 {
		return route{}, errors.New("no headers to match")
	}
	if err := checkVersion(r.GetVersion()); err != nil {
		return route{}, err
	}
	rt := route{version: r.GetVersion()}
	for name, value := range r.GetHeaders() {
		if !validHeaderName(name) || strings.ToLower(name) != name {
			return route{}, fmt.Errorf("header name %q must be a lower-case header field name", name)
		}
		rt.headers = append(rt.headers, [2]string{http.CanonicalHeaderKey(name), value})
		rt.lower = append(rt.lower, [2]string{name, value})
	}
	return rt, nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (d *destination) compileRetries(r *meshv1.RetryPolicy) error {
	if r.GetAttempts() > maxRetryAttempts {
		return fmt.Errorf("attempts %d, at most %d", r.GetAttempts(), maxRetryAttempts)
	}
	var err error
	if d.perTry, err = duration("per_try_timeout", r.GetPerTryTimeout(), maxTimeout); err != nil {
		return err
	}
	if d.perTry > 0 && d.timeout > 0 && d.perTry >= d.timeout {
		// A per-try timeout at or above the whole timeout never fires.
		d.perTry = 0
	}
	for _, on := range r.GetRetryOn() {
		f, ok := retryOnNames[on]
		if !ok {
			return fmt.Errorf("unknown retry_on %q (want unavailable, reset, deadline-exceeded, resource-exhausted or 5xx)", on)
		}
		d.retryOn |= 1 << f
	}
	if b := r.GetBudgetPercent(); math.IsNaN(b) || b < 0 || b > 100 {
		return fmt.Errorf("budget_percent %v is not between 0 and 100", b)
	}
	d.attempts = int(r.GetAttempts())
	d.budgetPct = r.GetBudgetPercent()
	d.minRetries = int64(r.GetMinRetriesConcurrent())
	return nil
}

func (d *destination) compileOutlier(o *meshv1.OutlierDetection) error {
	base, err := duration("base_ejection", o.GetBaseEjection(), maxBaseEjection)
	if err != nil {
		return err
	}
	if base == 0 {
		base = defaultBaseEjection
	}
	pct := o.GetMaxEjectionPercent()
	if pct > 100 {
		return fmt.Errorf("max_ejection_percent %d is over 100", pct)
	}
	if pct == 0 {
		pct = defaultMaxEjectPct
	}
	d.outlier = outlierPolicy{consecutive: int32(min(o.GetConsecutiveErrors(), math.MaxInt32)), base: base, maxPercent: int(pct)}
	return nil
}

func (d *destination) compileFault(f *meshv1.Fault) error {
	if a := f.GetAbort(); a != nil {
		if err := checkPercent("abort.percent", a.GetPercent()); err != nil {
			return err
		}
		d.abortPct = a.GetPercent()
		d.abortCode = codes.Unavailable
		if name := a.GetGrpcCode(); name != "" {
			c, ok := rpcerr.ParseCode(name)
			if !ok || c == codes.OK {
				return fmt.Errorf("abort.grpc_code %q is not an error code name (UNAVAILABLE, ...)", name)
			}
			d.abortCode = c
		}
		d.abortStatus = http.StatusServiceUnavailable
		if s := a.GetHttpStatus(); s != 0 {
			if s < 400 || s > 599 {
				return fmt.Errorf("abort.http_status %d is not an error status (400-599)", s)
			}
			d.abortStatus = int(s)
		}
	}
	if dl := f.GetDelay(); dl != nil {
		if err := checkPercent("delay.percent", dl.GetPercent()); err != nil {
			return err
		}
		var err error
		if d.delay, err = duration("delay.duration", dl.GetDuration(), maxFaultDelay); err != nil {
			return err
		}
		if d.delay > 0 {
			d.delayPct = dl.GetPercent()
		}
	}
	return nil
}

func checkPercent(what string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 100 {
		return fmt.Errorf("%s %v is not between 0 and 100", what, v)
	}
	return nil
}

func duration(what string, d *durationpb.Duration, max time.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	v := d.AsDuration()
	if v < 0 || v > max {
		return 0, fmt.Errorf("%s %s is not between 0 and %s", what, v, max)
	}
	return v, nil
}
