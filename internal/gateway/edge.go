package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-tv/marquee/internal/platform/logging"
)

// contentSecurityPolicy fits JSON responses and the same-origin web app the
// gateway will serve: everything from the gateway's own origin, no plugins,
// no framing, no base-URI or form hijacking.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders are set on every response.
var securityHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
	"Content-Security-Policy": contentSecurityPolicy,
}

// requestState is what the layers of one request share, through its
// context. The handler chain runs on one goroutine, so only bodyTooLarge,
// set from body reads, needs to be atomic.
type requestState struct {
	id           string      // the request id, checked or generated
	route        string      // the matched route pattern; set by captureRoute
	errCode      string      // the code of the error answered, if any
	bodyTooLarge atomic.Bool // a body read went over the limit
}

type stateKey struct{}

func withState(ctx context.Context, st *requestState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

// stateFrom returns the state of the request ctx belongs to, or nil.
func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// requestID returns the id a client sent when it is sane (1 to 64 of
// [A-Za-z0-9._-]), else a new random one.
func requestID(sent string) string {
	if logging.ValidRequestID(sent) {
		return sent
	}
	return rand.Text()
}

// edge strips headers a client must not set, gives the request its id,
// sets the headers every response carries, and records the request in the
// access log and the metrics once it is answered.
func (g *Gateway) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		stripUntrusted(r.Header)
		st := &requestState{id: requestID(r.Header.Get("X-Request-Id"))}
		r.Header.Del("X-Request-Id") // it travels as st.id from here
		h := w.Header()
		h.Set("X-Request-Id", st.id)
		for k, v := range securityHeaders {
			h.Set(k, v)
		}
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("marquee.request_id", st.id))

		ctx := logging.WithRequestID(withState(r.Context(), st), st.id)
		rec := &recorder{ResponseWriter: w}
		defer func() { g.observe(r, st, rec, time.Since(start)) }()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// observe writes the access log line and the metrics of one request.
// Neither the query string, the headers nor the bodies are logged.
func (g *Gateway) observe(r *http.Request, st *requestState, rec *recorder, d time.Duration) {
	route := st.route
	if route == "" {
		route = "unmatched"
	}
	code := rec.status
	if !rec.wroteHeader {
		code = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	method := methodLabel(r.Method)
	g.metrics.observe(route, method, code, d)

	level := slog.LevelInfo
	if isProbe(r.URL.Path) {
		level = slog.LevelDebug
	}
	if !g.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", code),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("request_id", st.id),
	}
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	if st.errCode != "" {
		attrs = append(attrs, slog.String("error_code", st.errCode))
	}
	g.logger.LogAttrs(context.Background(), level, "request", attrs...)
}

// log writes a line about the request ctx belongs to, naming its request
// id and trace id. The ids are added here rather than by the handler so
// that the line reads the same whatever handler the program gave.
func (g *Gateway) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if st := stateFrom(ctx); st != nil {
		attrs = append(attrs, slog.String("request_id", st.id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	g.logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// limits refuses a body over the limit (413) and a URL that is not UTF-8
// (400: it could not become proto strings), and bounds the request by the
// request timeout, which becomes the gRPC deadline.
func (g *Gateway) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validUTF8URL(r.URL) {
			g.writeError(w, r, fromHTTPStatus(http.StatusBadRequest, "the URL is not valid UTF-8"))
			return
		}
		if r.ContentLength > g.cfg.MaxBodyBytes {
			g.writeError(w, r, g.tooLarge())
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &limitedBody{
				ReadCloser: http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes),
				st:         stateFrom(r.Context()),
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validUTF8URL reports whether the path and the query parameters of u are
// UTF-8 once unescaped. A query that does not parse is left to grpc-gateway,
// which answers 400.
func validUTF8URL(u *url.URL) bool {
	if !utf8.ValidString(u.Path) {
		return false
	}
	if u.RawQuery == "" {
		return true
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return true
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// limitedBody notes in the request state that the body went over the
// limit: grpc-gateway turns every decoding error into INVALID_ARGUMENT
// text, so the error handler learns of it here and answers 413 instead.
type limitedBody struct {
	io.ReadCloser
	st *requestState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && b.st != nil && errors.As(err, &tooLarge) {
		b.st.bodyTooLarge.Store(true)
	}
	return n, err
}

// recoverPanics answers 500 in the error shape when a handler panics before
// writing, and logs the panic with its stack.
func (g *Gateway) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			g.log(r.Context(), slog.LevelError, "panic",
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				g.writeError(rec, r, apiError{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: msgInternal})
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// captureRoute, a grpc-gateway middleware, records the route pattern the
// request matched ("/api/v1/titles/{id}") for the access log, the metrics
// and the trace span.
func captureRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route := strings.ReplaceAll(p.String(), "=*}", "}")
			if st := stateFrom(r.Context()); st != nil {
				st.route = route
			}
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
			l, _ := otelhttp.LabelerFromContext(r.Context())
			l.Add(attribute.String("http.route", route))
		}
		next(w, r, params)
	}
}

// recorder remembers the status and the size of a response.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered, for streamed responses.
func (w *recorder) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*recorder)(nil)
