package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/marquee-tv/marquee/internal/mesh/policy"
)

// Limits of the admin API.
const (
	maxBody      = 1 << 20
	historyLimit = 50
	actorHeader  = "X-Marquee-Actor"
	// versionHeader carries the policy version beside the YAML document.
	versionHeader = "X-Marquee-Policy-Version"
)

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Handler serves the admin JSON API under /api/v1/mesh/. Authentication is
// the caller's: wrap the handler, and set X-Marquee-Actor to who is asking
// (recorded as the author of policy changes; "admin" when absent).
//
//	GET  /api/v1/mesh/instances        {"instances":[InstanceStatus...]}
//	GET  /api/v1/mesh/policy           the policy as YAML, version in X-Marquee-Policy-Version
//	                                   (?format=json: {"version":N,"policy":{...}})
//	PUT  /api/v1/mesh/policy           replace the policy (YAML or JSON); If-Match: N → 409 unless N is in force
//	GET  /api/v1/mesh/policy/history   {"versions":[{"version","created_at","author"}...]} latest first
//	GET  /api/v1/mesh/istio            the policy as Istio resources (?namespace=, default marquee)
//	POST /api/v1/mesh/split            {"service":"s","weights":{"v1":90,"v2":10}} ({} or null clears)
//	POST /api/v1/mesh/fault            {"service":"s","fault":{...}} (null clears)
//
// Changes answer {"version":N}. Errors answer {"error":{"code","message"}},
// with "details" listing every validation problem of a refused policy.
func (s *Server) Handler() http.Handler {
	routes := map[string]map[string]http.HandlerFunc{
		"/api/v1/mesh/instances":      {http.MethodGet: s.getInstances},
		"/api/v1/mesh/policy":         {http.MethodGet: s.getPolicy, http.MethodPut: s.putPolicy},
		"/api/v1/mesh/policy/history": {http.MethodGet: s.getHistory},
		"/api/v1/mesh/istio":          {http.MethodGet: s.getIstio},
		"/api/v1/mesh/split":          {http.MethodPost: s.postSplit},
		"/api/v1/mesh/fault":          {http.MethodPost: s.postFault},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods, ok := routes[r.URL.Path]
		if !ok {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no such mesh admin endpoint")
			return
		}
		h, ok := methods[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = methods[http.MethodGet]
		}
		if !ok {
			var allow []string
			for m := range methods {
				allow = append(allow, m)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", r.Method+" is not allowed here")
			return
		}
		h(w, r)
	})
}

func (s *Server) getInstances(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"instances": s.Instances()})
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	p, v := s.Policy()
	w.Header().Set(versionHeader, strconv.FormatUint(v, 10))
	w.Header().Set("ETag", etag(v))
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		writeJSON(w, http.StatusOK, map[string]any{"version": v, "policy": p})
	case "", "yaml":
		doc, err := p.Marshal()
		if err != nil {
			s.internalError(w, "marshal policy", err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(doc)
	default:
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("format %q is not supported: want yaml or json", clip(f)))
	}
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	actor, ifMatch, ok := s.editHeaders(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "request body is empty: send the policy as YAML or JSON")
		return
	}
	p, err := policy.Parse(body)
	if err != nil {
		s.writeApplyError(w, fmt.Errorf("%w: %w", ErrInvalidPolicy, err))
		return
	}
	v, err := s.apply(r.Context(), actor, ifMatch, func(*policy.Policy) (*policy.Policy, error) { return p, nil })
	s.answerApply(w, v, err)
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	h, err := s.store.history(r.Context(), historyLimit)
	if err != nil {
		s.internalError(w, "policy history", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": h})
}

func (s *Server) getIstio(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = "marquee"
	}
	if !namespaceRE.MatchString(ns) {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("namespace %q is not a Kubernetes namespace name (lower case letters, digits and '-', at most 63)", clip(ns)))
		return
	}
	p, v := s.Policy()
	doc, err := policy.RenderIstio(p, ns)
	if err != nil {
		s.internalError(w, "render istio", err)
		return
	}
	w.Header().Set(versionHeader, strconv.FormatUint(v, 10))
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}

// splitRequest is the body of POST /api/v1/mesh/split.
type splitRequest struct {
	Service string            `json:"service"`
	Weights map[string]uint32 `json:"weights"`
}

func (s *Server) postSplit(w http.ResponseWriter, r *http.Request) {
	actor, ifMatch, ok := s.editHeaders(w, r)
	if !ok {
		return
	}
	var req splitRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Service == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "service is required")
		return
	}
	v, err := s.apply(r.Context(), actor, ifMatch, func(p *policy.Policy) (*policy.Policy, error) {
		return p, p.SetSplit(req.Service, req.Weights)
	})
	s.answerApply(w, v, err)
}

// faultRequest is the body of POST /api/v1/mesh/fault.
type faultRequest struct {
	Service string          `json:"service"`
	Fault   json.RawMessage `json:"fault"`
}

func (s *Server) postFault(w http.ResponseWriter, r *http.Request) {
	actor, ifMatch, ok := s.editHeaders(w, r)
	if !ok {
		return
	}
	var req faultRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Service == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "service is required")
		return
	}
	if req.Fault == nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "fault is required: an object such as {\"abort\":{\"percent\":50}}, or null to clear")
		return
	}
	var f *policy.Fault
	dec := json.NewDecoder(bytes.NewReader(req.Fault))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "fault: "+jsonProblem(err))
		return
	}
	v, err := s.apply(r.Context(), actor, ifMatch, func(p *policy.Policy) (*policy.Policy, error) {
		return p, p.SetFault(req.Service, f)
	})
	s.answerApply(w, v, err)
}

// editHeaders reads the author and the optional If-Match of a change.
func (s *Server) editHeaders(w http.ResponseWriter, r *http.Request) (actor string, ifMatch uint64, ok bool) {
	actor = r.Header.Get(actorHeader)
	if actor == "" {
		actor = "admin"
	}
	actor, err := cleanAuthor(actor)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", actorHeader+": "+err.Error())
		return "", 0, false
	}
	if im := strings.TrimSpace(r.Header.Get("If-Match")); im != "" && im != "*" {
		im = strings.Trim(strings.TrimPrefix(im, "W/"), `"`)
		v, err := strconv.ParseUint(im, 10, 64)
		if err != nil || v == 0 {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "If-Match must be a policy version (a positive integer), as X-Marquee-Policy-Version says")
			return "", 0, false
		}
		ifMatch = v
	}
	return actor, ifMatch, true
}

// answerApply writes the outcome of a policy change.
func (s *Server) answerApply(w http.ResponseWriter, v uint64, err error) {
	if err != nil {
		s.writeApplyError(w, err)
		return
	}
	w.Header().Set(versionHeader, strconv.FormatUint(v, 10))
	w.Header().Set("ETag", etag(v))
	writeJSON(w, http.StatusOK, map[string]any{"version": v})
}

func (s *Server) writeApplyError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrInvalidPolicy):
		details := problems(err)
		msg := "invalid policy: " + strings.Join(details, "; ")
		writeJSON(w, http.StatusBadRequest, errorBody{errorFields{Code: "INVALID_ARGUMENT", Message: msg, Details: details}})
	case errors.Is(err, ErrVersionConflict):
		writeError(w, http.StatusConflict, "CONFLICT", err.Error())
	default:
		s.internalError(w, "apply policy", err)
	}
}

// problems lists the validation errors err holds: the joined list a
// policy validation returns, or err's own message.
func problems(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == ErrInvalidPolicy {
			return
		}
		if u, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range u.Unwrap() {
				walk(c)
			}
			return
		}
		out = append(out, strings.TrimPrefix(e.Error(), "policy: "))
	}
	walk(err)
	if len(out) == 0 {
		out = []string{err.Error()}
	}
	return out
}

func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error("mesh admin API failed", "op", what, "err", err)
	writeError(w, http.StatusInternalServerError, "INTERNAL", "internal error")
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("request body is larger than %d bytes", maxBody))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "reading the request body failed")
		return nil, false
	}
	return b, true
}

// decodeJSON reads one JSON object into v, refusing unknown fields and
// trailing data.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "request body: "+jsonProblem(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "request body: unexpected data after the JSON object")
		return false
	}
	return true
}

// jsonProblem says what is wrong with a JSON document without echoing it.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty: want a JSON object"
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("%s must be %s, not %s", typ.Field, typ.Type, typ.Value)
		}
		return fmt.Sprintf("want %s, not %s", typ.Type, typ.Value)
	default:
		return clip(err.Error())
	}
}

func etag(v uint64) string { return `"` + strconv.FormatUint(v, 10) + `"` }

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

func writeError(w http.ResponseWriter, httpStatus int, code, msg string) {
	writeJSON(w, httpStatus, errorBody{errorFields{Code: code, Message: msg}})
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs, maps and policies come here
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	// A failed write means the client went away.
	w.Write(append(b, '\n'))
}
