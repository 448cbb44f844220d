package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// corsPolicy is the CORS allow-list. Requests from origins not on it get
// no CORS headers (the browser then withholds the response), and their
// preflights are refused 403.
type corsPolicy struct {
	origins     map[string]bool
	any         bool
	credentials bool
}

// corsAllowedHeaders are the request headers a cross-origin request may
// send.
var corsAllowedHeaders = []string{
	"Authorization", "Content-Type", "Idempotency-Key", "X-Api-Key", "X-Request-Id", "Traceparent", "Tracestate",
}

// corsExposedHeaders are the response headers a cross-origin caller may
// read.
const corsExposedHeaders = "X-Request-Id, Retry-After, Ratelimit-Limit, Ratelimit-Remaining, Ratelimit-Reset, Etag, Content-Range, Accept-Ranges"

// corsMaxAge is how long a browser may cache a preflight answer, seconds.
const corsMaxAge = "600"

func newCORSPolicy(origins []string, credentials bool) (corsPolicy, error) {
	p := corsPolicy{origins: map[string]bool{}, credentials: credentials}
	var errs []error
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("gateway: CORS origin %q is not scheme://host[:port]", o))
			continue
		}
		p.origins[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	if p.any && credentials {
		errs = append(errs, errors.New("gateway: CORS credentials cannot be allowed for any origin (*)"))
	}
	return p, errors.Join(errs...)
}

// allowed reports whether origin may call.
func (p corsPolicy) allowed(origin string) bool {
	if origin == "" {
		return false
	}
	return p.any || p.origins[strings.ToLower(origin)]
}

// simple adds the headers of an actual (non-preflight) cross-origin
// request from an allowed origin.
func (p corsPolicy) simple(h http.Header, origin string) {
	if origin == "" || (!p.any && len(p.origins) == 0) {
		return
	}
	h.Add("Vary", "Origin")
	if !p.allowed(origin) {
		return
	}
	p.allowOrigin(h, origin)
	h.Set("Access-Control-Expose-Headers", corsExposedHeaders)
}

func (p corsPolicy) allowOrigin(h http.Header, origin string) {
	if p.any && !p.credentials {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// preflight answers a CORS preflight: 204 with the allowed method and
// headers when the origin is allowed and the route takes the method; 403
// for another origin; 404 or 405 as the route would answer.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request, gen *generation) {
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if !g.cors.allowed(origin) {
		g.writeError(w, r, apiError{Status: http.StatusForbidden, Code: "FORBIDDEN", Message: "origin not allowed"})
		return
	}
	method := r.Header.Get("Access-Control-Request-Method")
	rt, code, allow := gen.table.Match(method, r.URL.Path)
	if rt == nil {
		if code == http.StatusMethodNotAllowed {
			h.Set("Allow", strings.Join(allow, ", "))
			g.writeError(w, r, fromHTTPStatus(code, "method "+method+" not allowed on this route"))
			return
		}
		g.writeError(w, r, fromHTTPStatus(http.StatusNotFound, "no such route"))
		return
	}
	stateFrom(r.Context()).route = rt.Name
	g.cors.allowOrigin(h, origin)
	h.Set("Access-Control-Allow-Methods", method)
	var hs []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if slices.Contains(corsAllowedHeaders, name) && !slices.Contains(hs, name) {
				hs = append(hs, name)
			}
		}
	}
	if len(hs) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(hs, ", "))
	}
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
}
