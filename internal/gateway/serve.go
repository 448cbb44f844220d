package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-tv/marquee/internal/gateway/auth"
	"github.com/marquee-tv/marquee/internal/gateway/breaker"
	"github.com/marquee-tv/marquee/internal/gateway/httpproxy"
	"github.com/marquee-tv/marquee/internal/gateway/ratelimit"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// serve is everything after the edge: see the package documentation for
// the order of the steps.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	st := stateFrom(r.Context())
	switch r.URL.Path {
	case "/healthz", "/readyz", "/api/openapi.json":
		g.serveBuiltin(w, r, st)
		return
	}
	if !validUTF8URL(r.URL) {
		g.writeError(w, r, fromHTTPStatus(http.StatusBadRequest, "the URL is not valid UTF-8"))
		return
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		g.writeError(w, r, g.tooLarge())
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes), st: st}
	}

	gen := g.gen.Load()
	if isPreflight(r) {
		g.preflight(w, r, gen)
		return
	}
	g.cors.simple(w.Header(), r.Header.Get("Origin"))

	rt, code, allow := gen.table.Match(r.Method, r.URL.Path)
	if rt == nil {
		if code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			g.writeError(w, r, fromHTTPStatus(code, "method "+r.Method+" not allowed on this route"))
			return
		}
		if g.webH != nil && isWebRequest(r) {
			st.route = webRoute
			labelRoute(r, webRoute)
			g.webH.ServeHTTP(w, r)
			return
		}
		g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, "no such route"))
		return
	}
	st.rt = rt
	st.route = rt.Name
	labelRoute(r, rt.Name)

	p := principal.Principal{ClientAddr: st.clientAddr}
	if rt.Auth != routes.AuthNone {
		var e *apiError
		if p, e = g.authenticate(r, rt, st.clientAddr); e != nil {
			g.writeError(w, r, *e)
			return
		}
	}
	st.principal = p

	if len(rt.Limits) > 0 && !g.rateLimit(w, r, rt, p) {
		return
	}

	var b *breaker.Breaker
	if rt.Upstream != "" {
		b = gen.breakers[rt.Upstream]
	}
	var done func(breaker.Outcome)
	if b != nil {
		var err error
		if done, err = b.Allow(); err != nil {
			var open *breaker.OpenError
			errors.As(err, &open)
			g.metrics.breakerRejections.WithLabelValues(rt.Upstream).Inc()
			g.writeError(w, r, apiError{
				Status:     http.StatusServiceUnavailable,
				Code:       "CIRCUIT_OPEN",
				Message:    "the circuit breaker to " + rt.Upstream + " is open after repeated failures; try again later",
				RetryAfter: open.RetryAfter,
			})
			return
		}
	}

	timeout := rt.Timeout
	if timeout == 0 {
		timeout = g.cfg.RequestTimeout
	}
	// A dispatch that panics (an upstream breaking off a response midway
	// aborts the handler) counts as a failure; a half-open breaker must
	// hear of its probe whatever happens.
	outcome := breaker.Failure
	if done != nil {
		defer func() { done(outcome) }()
	}
	switch rt.Kind {
	case routes.KindHTTP:
		outcome = g.proxy(w, r, gen, rt, p, timeout)
	case routes.KindHome:
		outcome = breaker.Ignored
		if g.homeH == nil {
			g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, "no such route"))
			break
		}
		ctx, cancel := context.WithTimeout(principal.Attach(r.Context(), p), timeout)
		g.homeH.ServeHTTP(w, r.WithContext(ctx))
		cancel()
	default:
		ctx, cancel := context.WithTimeout(principal.Attach(r.Context(), p), timeout)
		// The gateway consumed the credentials: services get the caller
		// in x-marquee-* metadata, not the token.
		r.Header.Del("Authorization")
		r.Header.Del("X-Api-Key")
		g.muxes[rt.Upstream].ServeHTTP(w, r.WithContext(ctx))
		cancel()
		outcome = grpcOutcome(st)
	}
}

// webRoute names requests served by the web app in logs, metrics and
// traces.
const webRoute = "web"

// isWebRequest reports whether a request that matched no route is for the
// web app: a GET or HEAD outside the paths of the API, the media and the
// well-known documents, where an unknown path stays a JSON 404.
func isWebRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	for _, prefix := range []string{"/api", "/media", "/.well-known"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return false
		}
	}
	return true
}

// serveBuiltin answers the probes and the API description, which are not
// routed, authenticated nor limited.
func (g *Gateway) serveBuiltin(w http.ResponseWriter, r *http.Request, st *requestState) {
	st.route = r.URL.Path
	labelRoute(r, r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		g.writeError(w, r, fromHTTPStatus(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on this route"))
		return
	}
	switch r.URL.Path {
	case "/healthz":
		g.serveHealthz(w, r)
	case "/readyz":
		g.serveReadyz(w, r)
	default:
		g.openapiH.ServeHTTP(w, r)
	}
}

// labelRoute names the route on the trace span.
func labelRoute(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
}

// authenticate verifies the request's credentials as the route asks. It
// returns the caller (anonymous, with only the client address, when the
// route's auth is optional and none were sent), or the error to answer.
func (g *Gateway) authenticate(r *http.Request, rt *routes.Route, clientAddr string) (principal.Principal, *apiError) {
	anon := principal.Principal{ClientAddr: clientAddr}
	tok, isKey, err := auth.Credentials(r.Header.Values("Authorization"), r.Header.Values("X-Api-Key"))
	if errors.Is(err, auth.ErrNoCredentials) {
		if rt.Auth == routes.AuthOptional {
			return anon, nil
		}
		g.metrics.authFailures.WithLabelValues("missing").Inc()
		return anon, &apiError{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED",
			Message: "sign in first: send an access token or API key", Authenticate: `Bearer realm="marquee"`}
	}
	failKey := "auth-failures:" + clientAddr
	if !g.local.Peek(failKey, authFailureLimit) {
		g.metrics.authFailures.WithLabelValues("throttled").Inc()
		return anon, &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED",
			Message: "too many invalid credentials from this address; retry later", RetryAfter: time.Second}
	}
	var p principal.Principal
	if err == nil {
		p, err = g.auth.Authenticate(r.Context(), tok, isKey)
	}
	if err != nil {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			ae = &auth.Error{Kind: auth.ErrInvalid, Detail: "invalid credentials", Err: err}
		}
		if errors.Is(ae.Kind, auth.ErrInvalid) {
			g.local.Allow(r.Context(), []ratelimit.Request{{Key: failKey, Limit: authFailureLimit}})
		}
		if errors.Is(ae.Kind, auth.ErrUnavailable) {
			g.metrics.authFailures.WithLabelValues("unavailable").Inc()
			g.log(r.Context(), slog.LevelWarn, "authentication unavailable", slog.String("error", ae.Error()))
			return anon, &apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
				Message: "cannot verify credentials right now; try again later", RetryAfter: time.Second}
		}
		g.metrics.authFailures.WithLabelValues("invalid").Inc()
		g.log(r.Context(), slog.LevelDebug, "credentials refused", slog.String("error", ae.Error()))
		return anon, &apiError{Status: http.StatusUnauthorized, Code: "UNAUTHENTICATED",
			Message:      "invalid credentials: " + ae.Detail,
			Authenticate: `Bearer realm="marquee", error="invalid_token", error_description="` + ae.Detail + `"`}
	}
	p.ClientAddr = clientAddr
	if rt.Role != "" && !p.HasRole(rt.Role) {
		g.metrics.authFailures.WithLabelValues("forbidden").Inc()
		return p, &apiError{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "requires the " + rt.Role + " role"}
	}
	return p, nil
}

// authFailureLimit throttles an address that keeps sending credentials
// that do not verify (each costs a signature check, or an identity call):
// past a burst of 100 failures, one more per 100 ms; meanwhile its
// requests with credentials are answered 429 unverified. Behind a load
// balancer, set Config.TrustedProxies, or every client shares its address.
var authFailureLimit = ratelimit.Limit{Interval: 100 * time.Millisecond, Burst: 100}

// rateLimit applies the route's limits. It sets the RateLimit-* headers,
// answers 429 itself and returns false when the request may not pass.
func (g *Gateway) rateLimit(w http.ResponseWriter, r *http.Request, rt *routes.Route, p principal.Principal) bool {
	var buf [4]ratelimit.Request
	reqs := buf[:0]
	for _, l := range rt.Limits {
		var key string
		switch {
		case l.Field != "":
			v, err := bodyField(r, l.Field)
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					g.writeError(w, r, g.tooLarge())
					return false
				}
			}
			if v == "" {
				continue // no such field: the request fails validation upstream
			}
			key = "f:" + l.Field + ":" + v
		case l.By == routes.ByClient:
			key = "c:" + p.ClientAddr
		case p.APIKeyID != "":
			key = "k:" + p.APIKeyID
		case p.AccountID != "":
			key = "a:" + p.AccountID
		default:
			key = "c:" + p.ClientAddr
		}
		reqs = append(reqs, ratelimit.Request{
			Key:   l.Class.Name + ":" + key,
			Limit: ratelimit.Limit{Interval: l.Class.Interval, Burst: l.Class.Burst},
		})
	}
	if len(reqs) == 0 {
		return true
	}
	d, _ := g.limiter.Allow(r.Context(), reqs) // never fails: falls back in process
	// The RateLimit-* headers are sent once half the quota is used, and on
	// every refusal: a client far from its limit has nothing to learn from
	// them, and they cost every response three headers.
	if !d.Allowed || d.Remaining < (d.Limit+1)/2 {
		h := w.Header()
		h["Ratelimit-Limit"] = []string{strconv.Itoa(d.Limit)}
		h["Ratelimit-Remaining"] = []string{strconv.Itoa(d.Remaining)}
		h["Ratelimit-Reset"] = []string{strconv.Itoa(ceilSeconds(d.Reset))}
	}
	if d.Allowed {
		g.metrics.limited.allowed.Inc()
		return true
	}
	g.metrics.limited.refused.Inc()
	retry := max(ceilSeconds(d.RetryAfter), 1)
	g.writeError(w, r, apiError{
		Status:     http.StatusTooManyRequests,
		Code:       "RATE_LIMITED",
		Message:    "too many requests; retry in " + strconv.Itoa(retry) + " s",
		RetryAfter: time.Duration(retry) * time.Second,
	})
	return false
}

func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// bodyField returns the top-level string field of the JSON body, lower-
// cased and trimmed, hashed (so that the limiter never holds emails), or ""
// when the body is not a JSON object with that string field. The body is
// read (within the body limit) and put back for the upstream.
func bodyField(r *http.Request, field string) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil {
		return "", nil
	}
	var v string
	if json.Unmarshal(obj[field], &v) != nil {
		return "", nil
	}
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return "", nil
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:16]), nil
}

// proxy sends the request to an HTTP upstream and judges the outcome for
// the breaker.
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, gen *generation, rt *routes.Route, p principal.Principal, timeout time.Duration) breaker.Outcome {
	u := gen.http[rt.Upstream]
	st := stateFrom(r.Context())
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	set := make([][2]string, 0, 9)
	set = append(set,
		[2]string{"X-Forwarded-For", p.ClientAddr},
		[2]string{"X-Forwarded-Host", r.Host},
		[2]string{"X-Forwarded-Proto", proto},
		[2]string{"X-Request-Id", st.id},
	)
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		set = append(set, [2]string{"Traceparent", "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()})
		if ts := sc.TraceState().String(); ts != "" {
			set = append(set, [2]string{"Tracestate", ts})
		}
	}
	if p.AccountID != "" {
		set = append(set, [2]string{hdrAccount, p.AccountID})
		if len(p.Roles) > 0 {
			set = append(set, [2]string{hdrRoles, strings.Join(p.Roles, ",")})
		}
		if p.SessionID != "" {
			set = append(set, [2]string{hdrSession, p.SessionID})
		}
		if p.APIKeyID != "" {
			set = append(set, [2]string{hdrAPIKey, p.APIKeyID})
		}
	}
	res, err := u.Proxy(w, r, httpproxy.Options{HeaderTimeout: timeout, Drop: dropToUpstream, Set: set, Host: g.cfg.UpstreamHosts[rt.Upstream]})
	if err == nil {
		if res.Status == http.StatusBadGateway || res.Status == http.StatusServiceUnavailable || res.Status == http.StatusGatewayTimeout {
			return breaker.Failure
		}
		return breaker.Success
	}
	if r.Context().Err() != nil {
		g.writeError(w, r, toAPIError(r.Context().Err()))
		return breaker.Ignored
	}
	g.log(r.Context(), slog.LevelWarn, "upstream error", slog.String("upstream", rt.Upstream), slog.String("error", err.Error()))
	switch {
	case errors.Is(err, httpproxy.ErrTimeout):
		g.writeError(w, r, apiError{Status: http.StatusGatewayTimeout, Code: "DEADLINE_EXCEEDED", Message: msgTimeout})
	case errors.Is(err, httpproxy.ErrBadResponse):
		g.writeError(w, r, apiError{Status: http.StatusBadGateway, Code: "BAD_GATEWAY", Message: "the upstream answered badly"})
	default: // no address, unreachable
		g.writeError(w, r, apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: msgUnavailable})
	}
	return breaker.Failure
}

// dropToUpstream are request headers never passed to HTTP upstreams: the
// credentials the gateway consumed.
var dropToUpstream = map[string]bool{"Authorization": true, "X-Api-Key": true}

// The caller, for HTTP upstreams: the principal metadata keys as headers.
var (
	hdrAccount = http.CanonicalHeaderKey(principal.KeyAccount)
	hdrRoles   = http.CanonicalHeaderKey(principal.KeyRoles)
	hdrSession = http.CanonicalHeaderKey(principal.KeySession)
	hdrAPIKey  = http.CanonicalHeaderKey(principal.KeyAPIKey)
)

// grpcOutcome judges a transcoded call for the breaker from the error the
// error handler saw: the upstream being unavailable, slow or failing counts
// against it; client errors and cancellations do not.
func grpcOutcome(st *requestState) breaker.Outcome {
	if st.rpcErr == nil {
		if st.routeMismatch {
			return breaker.Ignored
		}
		return breaker.Success
	}
	if errors.Is(st.rpcErr, context.Canceled) {
		return breaker.Ignored
	}
	switch status.Code(st.rpcErr) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.DataLoss:
		return breaker.Failure
	case codes.Canceled:
		return breaker.Ignored
	}
	return breaker.Success
}

// checkRoute, a grpc-gateway middleware, makes sure the RPC the transcoder
// picked is the one the routing table authorised: the binding it matched
// must be the route's pattern, or lie under the route's prefix. Otherwise
// (a routing file that disagrees with the protos, or a path the two match
// differently) the request is answered 404 without reaching the upstream.
func (g *Gateway) checkRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		st := stateFrom(r.Context())
		p, ok := runtime.HTTPPattern(r.Context())
		if st == nil || st.rt == nil || !ok {
			g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, "no such route"))
			return
		}
		shape := patternShape(p.String())
		rt := st.rt
		if (rt.Path != "" && shape != rt.Shape) || (rt.Prefix != "" && !strings.HasPrefix(shape, rt.Prefix)) {
			st.routeMismatch = true
			g.log(r.Context(), slog.LevelWarn, "route mismatch: the transcoder matched another binding",
				slog.String("route", rt.Name), slog.String("binding", shape))
			g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, "no such route"))
			return
		}
		next(w, r, params)
	}
}

// patternShape writes a grpc-gateway pattern ("/api/v1/titles/{id=*}") with
// each variable as "*", as routes.Route.Shape does.
func patternShape(p string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '{':
			if depth == 0 {
				b.WriteByte('*')
			}
			depth++
		case c == '}':
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
