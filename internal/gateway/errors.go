package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file is the one place where errors become HTTP responses. Every error
// body is {"error":{"code","message","request_id"}}.

// apiError is an error as the HTTP API shows it.
type apiError struct {
	Status  int    // HTTP status
	Code    string // UPPER_SNAKE: an ErrorInfo reason or a gRPC code name
	Message string // safe to show to the caller
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// Authenticate, for a 401, is the WWW-Authenticate challenge; empty
	// means plain "Bearer".
	Authenticate string
}

// statusByCode is the HTTP status of each gRPC code. A code missing here
// answers 500.
var statusByCode = map[codes.Code]int{
	codes.Canceled:           499, // the client went away; it never reads this
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.Aborted:            http.StatusConflict,
	codes.FailedPrecondition: http.StatusUnprocessableEntity,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
}

// statusByReason overrides the status of a client error (4xx) by its
// google.rpc.ErrorInfo reason, when the gRPC code alone would pick the
// wrong one. Reasons are the services' public error codes (see proto/).
var statusByReason = map[string]int{
	"NOT_ENTITLED":           http.StatusForbidden,
	"MATURITY_RESTRICTED":    http.StatusForbidden,
	"TOO_MANY_STREAMS":       http.StatusConflict, // FAILED_PRECONDITION
	"ORDER_IN_PROGRESS":      http.StatusConflict, // FAILED_PRECONDITION
	"IN_PROGRESS":            http.StatusConflict,
	"IDEMPOTENCY_KEY_REUSED": http.StatusUnprocessableEntity,
}

// Messages of server-side failures, which never carry the upstream's text.
const (
	msgInternal    = "internal error"
	msgUnavailable = "a service this request needs is unavailable; try again later"
	msgTimeout     = "the request took too long"
	msgCanceled    = "the request was cancelled"
)

// defaultRetryAfter is the Retry-After of a 429 whose status carries no
// google.rpc.RetryInfo; maxRetryAfter caps the delay a service may ask for.
const (
	defaultRetryAfter = time.Second
	maxRetryAfter     = time.Hour
)

// validReason matches an ErrorInfo reason as google/rpc/error_details.proto
// defines it: UPPER_SNAKE_CASE, at most 63 characters.
var validReason = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,61}[A-Z0-9]$`)

// toAPIError maps any error the gRPC path produces (a gRPC status from an
// upstream or from the client library, a context error, a grpc-gateway
// parse or routing error) to its HTTP form. It is the only mapping from
// gRPC to HTTP.
//
// The code is the ErrorInfo reason when the status carries a valid one, else
// the gRPC code name. The status comes from the gRPC code, overridden for
// client errors by statusByReason. Server-side failures (5xx) get a fixed
// message; 500s also hide the reason and code, as INTERNAL.
func toAPIError(err error) apiError {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		return fromHTTPStatus(hse.HTTPStatus, hse.Err.Error())
	}
	var s *status.Status
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		s = status.FromContextError(err)
	} else {
		s = status.Convert(err)
	}

	httpStatus, ok := statusByCode[s.Code()]
	if !ok {
		httpStatus = http.StatusInternalServerError
	}
	e := apiError{Status: httpStatus, Code: rpcerr.CodeName(s.Code()), Message: s.Message()}
	var retry *errdetails.RetryInfo
	for _, d := range s.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if validReason.MatchString(d.GetReason()) {
				e.Code = d.GetReason()
			}
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	if o, ok := statusByReason[e.Code]; ok && isClientError(e.Status) {
		e.Status = o
	}

	switch {
	case e.Status == 499:
		e.Message = msgCanceled
	case e.Status == http.StatusServiceUnavailable:
		e.Message = msgUnavailable
	case e.Status == http.StatusGatewayTimeout:
		e.Message = msgTimeout
	case e.Status >= 500:
		e.Code, e.Message = "INTERNAL", msgInternal
	case e.Message == "":
		e.Message = http.StatusText(e.Status)
	}

	if e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable {
		if d := retry.GetRetryDelay(); d != nil && d.IsValid() && d.AsDuration() > 0 {
			e.RetryAfter = min(d.AsDuration(), maxRetryAfter)
		} else if e.Status == http.StatusTooManyRequests {
			e.RetryAfter = defaultRetryAfter
		}
	}
	return e
}

// codeByHTTPStatus is the code of the statuses the gateway answers itself.
var codeByHTTPStatus = map[int]string{
	http.StatusBadRequest:            "INVALID_ARGUMENT",
	http.StatusNotFound:              "NOT_FOUND",
	http.StatusMethodNotAllowed:      "METHOD_NOT_ALLOWED",
	http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE",
	http.StatusUnauthorized:          "UNAUTHENTICATED",
	http.StatusForbidden:             "FORBIDDEN",
}

// fromHTTPStatus is the error for a status the gateway decides itself
// (routing, body size). msg, when empty, is the status text.
func fromHTTPStatus(httpStatus int, msg string) apiError {
	code := codeByHTTPStatus[httpStatus]
	if code == "" || httpStatus >= 500 {
		return apiError{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: msgInternal}
	}
	if msg == "" {
		msg = http.StatusText(httpStatus)
	}
	return apiError{Status: httpStatus, Code: code, Message: msg}
}

func isClientError(httpStatus int) bool { return httpStatus >= 400 && httpStatus < 500 }

// errorBody is the JSON of every error response.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError writes e as the response, with the request id of r.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, e apiError) {
	writeAPIError(w, r, e)
}

func writeAPIError(w http.ResponseWriter, r *http.Request, e apiError) {
	st := stateFrom(r.Context())
	var id string
	if st != nil {
		id = st.id
		st.errCode = e.Code
	}
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		secs := (e.RetryAfter + time.Second - 1) / time.Second
		h.Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	if e.Status == http.StatusUnauthorized {
		if e.Authenticate == "" {
			e.Authenticate = `Bearer realm="marquee"`
		}
		h.Set("WWW-Authenticate", e.Authenticate)
	}
	writeJSON(w, e.Status, errorBody{errorFields{Code: e.Code, Message: e.Message, RequestID: id}})
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs and maps of strings come here
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	// A failed write means the client went away; the access log shows the
	// bytes that got out.
	w.Write(append(b, '\n'))
}

// handleError is the grpc-gateway error handler: upstream errors, and
// errors decoding the request (bad query parameter, malformed or unknown
// JSON, a body over the limit).
func (g *Gateway) handleError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st != nil && st.bodyTooLarge.Load() {
		g.writeError(w, r, g.tooLarge())
		return
	}
	if st != nil {
		st.rpcErr = err
	}
	e := toAPIError(err)
	if e.Status >= 500 {
		level := slog.LevelWarn
		if e.Status == http.StatusInternalServerError {
			level = slog.LevelError
		}
		method, _ := runtime.RPCMethod(ctx)
		g.log(r.Context(), level, "upstream error",
			slog.String("rpc", method),
			slog.String("grpc_code", rpcerr.CodeName(status.Code(err))),
			slog.String("error", err.Error()))
	}
	g.writeError(w, r, e)
}

// handleRoutingError answers a path the transcoder has no binding for
// (404), a method the path does not take (405) and a malformed path (400).
// The routing table decides first; these happen only when a routing file
// sends a request to a transcoder that does not serve it.
func (g *Gateway) handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if st := stateFrom(r.Context()); st != nil {
		st.routeMismatch = true
	}
	msg := ""
	switch httpStatus {
	case http.StatusNotFound:
		msg = "no such route"
	case http.StatusMethodNotAllowed:
		msg = "method " + r.Method + " not allowed on this route"
	}
	g.writeError(w, r, fromHTTPStatus(httpStatus, msg))
}

func (g *Gateway) tooLarge() apiError {
	return fromHTTPStatus(http.StatusRequestEntityTooLarge,
		"request body over "+strconv.FormatInt(g.cfg.MaxBodyBytes, 10)+" bytes")
}

// WriteError writes err as an error response in the gateway's shape, with
// the request's id, for handlers the gateway serves (the home handler): a
// gRPC status from a service is mapped as the transcoded routes map it
// (code from its ErrorInfo reason, HTTP status from its gRPC code), and a
// context error becomes 504 or 499.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	writeAPIError(w, r, toAPIError(err))
}
