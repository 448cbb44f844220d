// Package routes is the gateway's routing configuration: a JSON document
// that maps requests (method and path pattern, or path prefix) to an
// upstream, with the authentication the route needs, the role it requires,
// its rate limits and its timeout. Parse reads and validates a document all
// at once; Compile turns it into an immutable Table that the gateway swaps
// atomically on reload, so a request is routed by exactly one table from
// start to end.
//
// The document:
//
//	{
//	  "rate_classes": {"default": {"rate": 600, "per": "1m", "burst": 100}, ...},
//	  "http_upstreams": {"playback-media": {"addresses": []}},
//	  "breakers": {"default": {"failures": 5, ...}, "billing": {...}},
//	  "routes": [
//	    {"method": "GET", "path": "/api/v1/titles/{id}", "upstream": "catalog",
//	     "auth": "optional", "rate_class": "browse", "timeout": "5s"},
//	    {"method": "POST", "path": "/api/v1/auth/login", "upstream": "identity", "auth": "none",
//	     "rate_limits": [{"class": "login-address", "by": "client"},
//	                     {"class": "login-account", "by": "body:email"}]},
//	    {"methods": ["GET", "HEAD"], "prefix": "/media/", "kind": "http",
//	     "upstream": "playback-media", "auth": "none"},
//	    {"method": "GET", "path": "/api/v1/home", "kind": "home"}
//	  ]
//	}
//
// A route's kind is "grpc" (JSON transcoded to the upstream service's gRPC
// API; the default), "http" (reverse proxy to an HTTP upstream, streamed) or
// "home" (the gateway's home aggregation handler). Its auth is "none",
// "optional" or "required" (the default: a route is closed unless it says
// otherwise); a role implies "required".
//
// Matching: a path pattern matches the request path segment by segment, a
// {name} segment matching any one non-empty segment; among patterns, a
// literal segment wins over a variable one, leftmost first. A prefix
// ("/media/") matches every path under it; a pattern wins over a prefix, and
// a longer prefix over a shorter one. Paths with empty, "." or ".."
// segments match nothing.
package routes

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Default is the embedded routing configuration: every route of the public
// API that the services' protos annotate, the home aggregation and the
// media pass-through.
//
//go:embed default.json
var Default []byte

// MaxDocumentSize bounds a routing document.
const MaxDocumentSize = 1 << 20

// Route kinds.
const (
	KindGRPC = "grpc"
	KindHTTP = "http"
	KindHome = "home"
)

// Auth modes.
type Auth uint8

const (
	// AuthRequired refuses a request without valid credentials (401).
	AuthRequired Auth = iota
	// AuthOptional authenticates credentials when they are sent (invalid
	// ones are refused) and serves anonymous callers too.
	AuthOptional
	// AuthNone never looks at credentials.
	AuthNone
)

// String is the mode as the document writes it.
func (a Auth) String() string {
	switch a {
	case AuthOptional:
		return "optional"
	case AuthNone:
		return "none"
	}
	return "required"
}

// Rate-limit keys: what a limit counts by.
const (
	// ByPrincipal counts by the caller: its account, its API key, or its
	// client address when anonymous.
	ByPrincipal = "principal"
	// ByClient counts by client address.
	ByClient = "client"
	// ByBodyPrefix, followed by a field name, counts by the value of that
	// top-level string field of the JSON body (lower-cased and trimmed):
	// "body:email" limits login attempts per account.
	ByBodyPrefix = "body:"
)

// Document is the JSON routing configuration, as written.
type Document struct {
	RateClasses   map[string]RateClassDoc    `json:"rate_classes"`
	HTTPUpstreams map[string]HTTPUpstreamDoc `json:"http_upstreams"`
	Breakers      map[string]BreakerDoc      `json:"breakers"`
	Routes        []RouteDoc                 `json:"routes"`
}

// RateClassDoc is a rate-limit class: rate requests per period, with
// bursts of up to burst requests.
type RateClassDoc struct {
	Rate  float64  `json:"rate"`
	Per   Duration `json:"per"`
	Burst int      `json:"burst"`
}

// HTTPUpstreamDoc declares an HTTP upstream. Its addresses (host:port) are
// those listed here plus those the program gives for its name.
type HTTPUpstreamDoc struct {
	Addresses []string `json:"addresses"`
}

// BreakerDoc sets the circuit breaker of an upstream ("default" applies to
// every upstream not named). Zero fields take the defaults of package
// breaker.
type BreakerDoc struct {
	Failures    int      `json:"failures"`
	ErrorRate   float64  `json:"error_rate"`
	MinRequests int      `json:"min_requests"`
	Window      Duration `json:"window"`
	OpenFor     Duration `json:"open_for"`
}

// RouteDoc is one route as written.
type RouteDoc struct {
	Name       string     `json:"name"`
	Method     string     `json:"method"`
	Methods    []string   `json:"methods"`
	Path       string     `json:"path"`
	Prefix     string     `json:"prefix"`
	Kind       string     `json:"kind"`
	Upstream   string     `json:"upstream"`
	Auth       string     `json:"auth"`
	Role       string     `json:"role"`
	RateClass  string     `json:"rate_class"`
	RateLimits []LimitDoc `json:"rate_limits"`
	Timeout    Duration   `json:"timeout"`
}

// LimitDoc applies a rate class, counted by a key.
type LimitDoc struct {
	Class string `json:"class"`
	By    string `json:"by"`
}

// Duration is a time.Duration written as a Go duration string ("5s").
type Duration time.Duration

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration is a string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Env is what a document is validated against: the upstreams the program
// has.
type Env struct {
	// GRPC lists, per gRPC upstream name, the HTTP bindings its proto
	// annotates. A grpc path route must be one of them.
	GRPC map[string][]Binding
	// Roles are the roles a route may require.
	Roles []string
}

// Binding is an HTTP binding of an RPC: a method and a path template such
// as "/api/v1/titles/{id}".
type Binding struct {
	Method string
	Path   string
	RPC    string // full method name, for messages
}

// Limits of a document, against mistakes and abuse.
const (
	maxRoutes      = 1000
	maxClasses     = 100
	maxSegments    = 32
	maxTimeout     = 10 * time.Minute
	maxBurst       = 1 << 20
	minInterval    = time.Microsecond
	maxIntervalDur = 24 * time.Hour
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	fieldRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@%-]+$`)
	varRE     = regexp.MustCompile(`^\{[A-Za-z_][A-Za-z0-9_.]{0,63}\}$`)
	methodRE  = regexp.MustCompile(`^[A-Z]{1,16}$`)
)

// Parse reads a routing document strictly (unknown fields and trailing
// data are errors), validates it against env and compiles it. The error
// lists every problem found.
func Parse(doc []byte, env Env) (*Table, error) {
	if len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("routes: document of %d bytes is over %d", len(doc), MaxDocumentSize)
	}
	var d Document
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("routes: data after the document")
	}
	return Compile(d, env)
}

// Table is a compiled, immutable routing configuration. It is safe for
// concurrent use.
type Table struct {
	// Classes are the rate classes by name.
	Classes map[string]RateClass
	// HTTPUpstreams are the declared HTTP upstreams and their addresses.
	HTTPUpstreams map[string][]string
	// Breakers are the breaker settings by upstream name; "default" is
	// the fallback.
	Breakers map[string]BreakerDoc
	// Routes are the routes in document order.
	Routes []*Route

	root *node
}

// RateClass is a compiled rate class: Burst requests at once, then one
// every Interval.
type RateClass struct {
	Name     string
	Interval time.Duration
	Burst    int
}

// Limit is a rate class applied by a key.
type Limit struct {
	Class RateClass
	// By is ByPrincipal, ByClient, or ByBodyPrefix followed by the field.
	By string
	// Field is the body field when By starts with ByBodyPrefix.
	Field string
}

// Route is a compiled route.
type Route struct {
	// Name labels the route in metrics and logs: the document's name, or
	// the path, or the prefix followed by "*".
	Name     string
	Methods  []string // nil means any method
	Path     string   // the pattern, or ""
	Prefix   string   // the prefix, or ""
	Kind     string
	Upstream string
	Auth     Auth
	Role     string
	Limits   []Limit
	// Timeout bounds the request; zero means the gateway's default. For an
	// http route it bounds the wait for the upstream's response headers,
	// and the body then streams without a deadline.
	Timeout time.Duration
	// Shape is the path pattern with every variable written "*"
	// ("/api/v1/titles/*"), or the prefix.
	Shape string
}

// Allows reports whether the route takes method.
func (r *Route) Allows(method string) bool {
	return r.Methods == nil || slices.Contains(r.Methods, method)
}

// Compile validates d against env and builds its Table.
func Compile(d Document, env Env) (*Table, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	t := &Table{
		Classes:       map[string]RateClass{},
		HTTPUpstreams: map[string][]string{},
		Breakers:      map[string]BreakerDoc{},
		root:          &node{},
	}
	if len(d.RateClasses) > maxClasses {
		bad("%d rate classes, over %d", len(d.RateClasses), maxClasses)
	}
	for name, c := range d.RateClasses {
		if !nameRE.MatchString(name) {
			bad("rate class %q: a name is lower-case letters, digits and dashes", name)
			continue
		}
		if c.Rate <= 0 || c.Per <= 0 || c.Burst < 1 || c.Burst > maxBurst {
			bad("rate class %s: rate and per must be positive and burst 1..%d", name, maxBurst)
			continue
		}
		iv := time.Duration(float64(c.Per) / c.Rate)
		if iv < minInterval || iv > maxIntervalDur {
			bad("rate class %s: one request every %v is out of range", name, iv)
			continue
		}
		t.Classes[name] = RateClass{Name: name, Interval: iv, Burst: c.Burst}
	}
	for name, u := range d.HTTPUpstreams {
		if !nameRE.MatchString(name) {
			bad("http upstream %q: a name is lower-case letters, digits and dashes", name)
			continue
		}
		if _, ok := env.GRPC[name]; ok {
			bad("http upstream %s: the name is a gRPC upstream", name)
		}
		for _, a := range u.Addresses {
			if !validHostPort(a) {
				bad("http upstream %s: address %q is not host:port", name, a)
			}
		}
		t.HTTPUpstreams[name] = slices.Clone(u.Addresses)
	}
	for name, b := range d.Breakers {
		if name != "default" && !nameRE.MatchString(name) {
			bad("breaker %q: not an upstream name", name)
			continue
		}
		if b.Failures < 0 || b.ErrorRate < 0 || b.ErrorRate > 1 || b.MinRequests < 0 || b.Window < 0 || b.OpenFor < 0 {
			bad("breaker %s: failures, min_requests, window and open_for must not be negative and error_rate is 0..1", name)
			continue
		}
		t.Breakers[name] = b
	}
	if len(d.Routes) == 0 {
		bad("no routes")
	}
	if len(d.Routes) > maxRoutes {
		bad("%d routes, over %d", len(d.Routes), maxRoutes)
		d.Routes = d.Routes[:maxRoutes]
	}
	for i, rd := range d.Routes {
		r, rerrs := compileRoute(rd, t, env)
		where := fmt.Sprintf("route %d", i+1)
		if rd.Path != "" || rd.Prefix != "" {
			where += " (" + rd.Path + rd.Prefix + ")"
		}
		for _, e := range rerrs {
			bad("%s: %v", where, e)
		}
		if len(rerrs) > 0 {
			continue
		}
		if err := t.root.insert(r); err != nil {
			bad("%s: %v", where, err)
			continue
		}
		t.Routes = append(t.Routes, r)
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, fmt.Errorf("routes: invalid configuration:\n  %w", joinLines(errs))
	}
	return t, nil
}

func compileRoute(rd RouteDoc, t *Table, env Env) (*Route, []error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	r := &Route{Kind: rd.Kind, Upstream: rd.Upstream, Role: rd.Role, Timeout: time.Duration(rd.Timeout)}
	if r.Kind == "" {
		r.Kind = KindGRPC
	}

	methods := rd.Methods
	if rd.Method != "" {
		if len(rd.Methods) > 0 {
			bad("give method or methods, not both")
		}
		methods = []string{rd.Method}
	}
	for _, m := range methods {
		if m == "*" {
			if len(methods) > 1 {
				bad(`method "*" stands alone`)
			}
			methods = nil
			break
		}
		if !methodRE.MatchString(m) {
			bad("method %q is not an upper-case HTTP method", m)
		}
	}
	if len(methods) > 0 {
		r.Methods = slices.Clone(methods)
		slices.Sort(r.Methods)
		r.Methods = slices.Compact(r.Methods)
	}

	switch {
	case rd.Path != "" && rd.Prefix != "":
		bad("give path or prefix, not both")
	case rd.Path != "":
		shape, err := patternShape(rd.Path)
		if err != nil {
			bad("path: %v", err)
		}
		r.Path, r.Shape, r.Name = rd.Path, shape, rd.Path
	case rd.Prefix != "":
		if err := checkPrefix(rd.Prefix); err != nil {
			bad("prefix: %v", err)
		}
		r.Prefix, r.Shape, r.Name = rd.Prefix, rd.Prefix, rd.Prefix+"*"
	default:
		bad("a route needs a path or a prefix")
	}
	if rd.Name != "" {
		if len(rd.Name) > 128 || !segmentRE.MatchString(strings.ReplaceAll(strings.ReplaceAll(rd.Name, "/", ""), " ", "")) {
			bad("name %q: at most 128 printable characters", rd.Name)
		}
		r.Name = rd.Name
	}

	switch rd.Auth {
	case "", "required":
		r.Auth = AuthRequired
	case "optional":
		r.Auth = AuthOptional
	case "none":
		r.Auth = AuthNone
	default:
		bad("auth %q: want none, optional or required", rd.Auth)
	}
	if r.Role != "" {
		if !slices.Contains(env.Roles, r.Role) {
			bad("role %q: want one of %v", r.Role, env.Roles)
		}
		if rd.Auth != "" && r.Auth != AuthRequired {
			bad("a role needs auth required")
		}
		r.Auth = AuthRequired
	}

	if r.Timeout < 0 || r.Timeout > maxTimeout {
		bad("timeout %v: want 0..%v", r.Timeout, maxTimeout)
	}

	switch r.Kind {
	case KindGRPC:
		bindings, ok := env.GRPC[r.Upstream]
		if !ok {
			bad("upstream %q is not a gRPC upstream (have %v)", r.Upstream, sortedKeys(env.GRPC))
			break
		}
		if r.Path != "" {
			if err := matchBindings(r, bindings); err != nil {
				bad("%v", err)
			}
		} else if r.Prefix != "" && !coversBinding(r, bindings) {
			bad("prefix %s covers no route of %s", r.Prefix, r.Upstream)
		}
	case KindHTTP:
		if _, ok := t.HTTPUpstreams[r.Upstream]; !ok {
			bad("upstream %q is not declared in http_upstreams", r.Upstream)
		}
	case KindHome:
		if r.Upstream != "" {
			bad("a home route has no upstream")
		}
	default:
		bad("kind %q: want grpc, http or home", r.Kind)
	}

	limits := rd.RateLimits
	if rd.RateClass != "" {
		if len(rd.RateLimits) > 0 {
			bad("give rate_class or rate_limits, not both")
		}
		limits = []LimitDoc{{Class: rd.RateClass, By: ByPrincipal}}
	} else if len(limits) == 0 {
		if _, ok := t.Classes["default"]; ok {
			limits = []LimitDoc{{Class: "default", By: ByPrincipal}}
		}
	}
	if len(limits) > 4 {
		bad("at most 4 rate limits per route")
	}
	for _, l := range limits {
		c, ok := t.Classes[l.Class]
		if !ok {
			bad("rate class %q is not defined", l.Class)
			continue
		}
		lim := Limit{Class: c, By: l.By}
		switch {
		case l.By == "" || l.By == ByPrincipal:
			lim.By = ByPrincipal
		case l.By == ByClient:
		case strings.HasPrefix(l.By, ByBodyPrefix):
			lim.Field = strings.TrimPrefix(l.By, ByBodyPrefix)
			if !fieldRE.MatchString(lim.Field) {
				bad("rate limit by %q: not a JSON field name", l.By)
			}
		default:
			bad("rate limit by %q: want principal, client or body:FIELD", l.By)
		}
		r.Limits = append(r.Limits, lim)
	}
	return r, errs
}

// matchBindings checks that a grpc path route is an HTTP binding of its
// upstream, for each of its methods.
func matchBindings(r *Route, bindings []Binding) error {
	var methods []string
	for _, b := range bindings {
		if s, err := patternShape(b.Path); err == nil && s == r.Shape {
			methods = append(methods, b.Method)
		}
	}
	if len(methods) == 0 {
		return fmt.Errorf("%s is not an HTTP route of %s", r.Path, r.Upstream)
	}
	if r.Methods == nil {
		return nil
	}
	for _, m := range r.Methods {
		if !slices.Contains(methods, m) {
			return fmt.Errorf("%s %s is not an HTTP route of %s (it takes %v)", m, r.Path, r.Upstream, methods)
		}
	}
	return nil
}

func coversBinding(r *Route, bindings []Binding) bool {
	for _, b := range bindings {
		if strings.HasPrefix(b.Path, r.Prefix) && r.Allows(b.Method) {
			return true
		}
	}
	return false
}

// patternShape checks a path pattern and returns it with each variable
// written "*".
func patternShape(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("a path starts with /")
	}
	if p == "/" {
		return p, nil
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) > maxSegments {
		return "", fmt.Errorf("over %d segments", maxSegments)
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, s := range segs {
		b.WriteByte('/')
		switch {
		case varRE.MatchString(s):
			if seen[s] {
				return "", fmt.Errorf("variable %s twice", s)
			}
			seen[s] = true
			b.WriteByte('*')
		case s == "" || s == "." || s == "..":
			return "", fmt.Errorf("empty, . or .. segment in %q", p)
		case strings.ContainsAny(s, "{}*") || !segmentRE.MatchString(s):
			return "", fmt.Errorf("segment %q is neither literal nor {variable}", s)
		default:
			b.WriteString(s)
		}
	}
	return b.String(), nil
}

func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return errors.New("a prefix starts and ends with /")
	}
	if p == "/" {
		return nil
	}
	segs := strings.Split(p[1:len(p)-1], "/")
	if len(segs) > maxSegments {
		return fmt.Errorf("over %d segments", maxSegments)
	}
	for _, s := range segs {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "{}*") || !segmentRE.MatchString(s) {
			return fmt.Errorf("segment %q is not literal", s)
		}
	}
	return nil
}

func validHostPort(a string) bool {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 || i == len(a)-1 {
		return false
	}
	for _, c := range a[i+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return !strings.ContainsAny(a, "/ ?#@")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func sortErrors(errs []error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
}

// joinLines joins errors one per line, indented.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// Match finds the route for method and path. It returns the route, or nil
// and the status to answer: 404 when no route has the path, 405 when routes
// have the path but not the method (allow lists the methods they take).
func (t *Table) Match(method, path string) (r *Route, status int, allow []string) {
	if !cleanPath(path) {
		return nil, http.StatusNotFound, nil
	}
	m := matcher{method: method}
	if path != "/" {
		m.patterns(t.root, path[1:], 0)
	}
	if m.found != nil {
		return m.found, 0, nil
	}
	if r := m.prefixes(t.root, path); r != nil {
		return r, 0, nil
	}
	if len(m.allow) > 0 || m.pathSeen {
		slices.Sort(m.allow)
		return nil, http.StatusMethodNotAllowed, slices.Compact(m.allow)
	}
	return nil, http.StatusNotFound, nil
}

// cleanPath reports whether path starts with "/" and has no empty, "." or
// ".." segment, except an empty last one (a trailing slash).
func cleanPath(path string) bool {
	if len(path) == 0 || path[0] != '/' || len(path) > 8192 {
		return false
	}
	rest := path[1:]
	for n := 0; ; n++ {
		if n > maxSegments {
			return false
		}
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." || (seg == "" && more) {
			return false
		}
		if !more {
			return true
		}
		rest = tail
	}
}

// node is a trie node: one path segment.
type node struct {
	lit    map[string]*node
	wild   *node
	exact  []*Route // patterns ending here
	prefix []*Route // prefixes ending here
}

func (n *node) insert(r *Route) error {
	var segs []string
	if r.Path != "" && r.Path != "/" {
		segs = strings.Split(r.Path[1:], "/")
	} else if r.Prefix != "" && r.Prefix != "/" {
		segs = strings.Split(r.Prefix[1:len(r.Prefix)-1], "/")
	}
	cur := n
	for _, s := range segs {
		if r.Path != "" && varRE.MatchString(s) {
			if cur.wild == nil {
				cur.wild = &node{}
			}
			cur = cur.wild
			continue
		}
		if cur.lit == nil {
			cur.lit = map[string]*node{}
		}
		next, ok := cur.lit[s]
		if !ok {
			next = &node{}
			cur.lit[s] = next
		}
		cur = next
	}
	list := &cur.exact
	if r.Path == "" {
		list = &cur.prefix
	}
	for _, o := range *list {
		if overlap(o.Methods, r.Methods) {
			return fmt.Errorf("same %s and method as route %s", map[bool]string{true: "path", false: "prefix"}[r.Path != ""], o.Name)
		}
	}
	*list = append(*list, r)
	return nil
}

func overlap(a, b []string) bool {
	if a == nil || b == nil {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

// matcher is one lookup.
type matcher struct {
	method   string
	found    *Route
	pathSeen bool     // some route had the path but not the method
	allow    []string // the methods such routes take
}

// patterns walks the patterns depth first, literal before variable, and
// stops at the first one that has the whole path and takes the method.
func (m *matcher) patterns(n *node, rest string, depth int) {
	seg, tail, more := strings.Cut(rest, "/")
	if seg == "" || depth >= maxSegments {
		return
	}
	for _, c := range [2]*node{n.lit[seg], n.wild} {
		if c == nil {
			continue
		}
		if more {
			m.patterns(c, tail, depth+1)
		} else {
			m.end(c)
		}
		if m.found != nil {
			return
		}
	}
}

// end looks for a pattern ending at n that takes the method.
func (m *matcher) end(n *node) {
	for _, r := range n.exact {
		if r.Allows(m.method) {
			m.found = r
			return
		}
	}
	for _, r := range n.exact {
		m.pathSeen = true
		m.allow = append(m.allow, r.Methods...)
	}
}

// prefixes returns the longest prefix of path that takes the method,
// following literal segments only ("/media/" has "/media/" and
// "/media/a/b", not "/media").
func (m *matcher) prefixes(root *node, path string) *Route {
	var best *Route
	n, rest := root, path[1:]
	for {
		for _, r := range n.prefix {
			if r.Allows(m.method) {
				best = r
			} else {
				m.pathSeen = true
				m.allow = append(m.allow, r.Methods...)
			}
		}
		seg, tail, more := strings.Cut(rest, "/")
		if !more {
			return best
		}
		if n = n.lit[seg]; n == nil {
			return best
		}
		rest = tail
	}
}
