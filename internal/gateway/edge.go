package gateway

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"strconv"

	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/platform/logging"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// contentSecurityPolicy fits JSON responses and the same-origin web app the
// gateway will serve: everything from the gateway's own origin, no plugins,
// no framing, no base-URI or form hijacking.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders are set on every response (canonical names; the slices
// are shared and never modified).
var securityHeaders = map[string][]string{
	"X-Content-Type-Options":  {"nosniff"},
	"X-Frame-Options":         {"DENY"},
	"Referrer-Policy":         {"no-referrer"},
	"Content-Security-Policy": {contentSecurityPolicy},
}

// requestState is what the layers of one request share, through its
// context. The handler chain runs on one goroutine, so only bodyTooLarge,
// set from body reads, needs to be atomic.
type requestState struct {
	id            string // the request id, checked or generated
	clientAddr    string // the client's address (see clientAddr)
	route         string // the matched route's name, for logs and metrics
	rt            *routes.Route
	principal     principal.Principal // the caller, or only its address
	errCode       string              // the code of the error answered, if any
	rpcErr        error               // the error of a transcoded call, if any
	routeMismatch bool                // the transcoder disagreed with the route
	bodyTooLarge  atomic.Bool         // a body read went over the limit
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
// [A-Za-z0-9._-]), else a new one: a random prefix drawn once per process
// and a sequence number, unique without a random draw per request.
func requestID(sent string) string {
	if sent != "" && logging.ValidRequestID(sent) {
		return sent
	}
	return idPrefix + strconv.FormatUint(idSeq.Add(1), 36)
}

var (
	idPrefix = rand.Text()[:16] + "."
	idSeq    atomic.Uint64
)

// tracer names the gateway's spans; it follows the global tracer provider
// (set by telemetry.Setup), so without an OTLP endpoint spans are not
// recorded and cost next to nothing, while the trace context still flows
// to the upstreams.
var tracer = otel.Tracer("github.com/marquee-tv/marquee/internal/gateway")

// edge starts the request's server span (continuing the W3C trace context
// the client sent; probes are not traced), works out the client address,
// strips headers a client must not set, gives the request its id, sets the
// headers every response carries, and records the request in the access
// log, the metrics and the span once it is answered.
func (g *Gateway) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		var span trace.Span
		if !isProbe(r.URL.Path) {
			ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
		}
		st := &requestState{
			id:         requestID(r.Header.Get("X-Request-Id")),
			clientAddr: clientAddr(r.RemoteAddr, r.Header["X-Forwarded-For"], g.trusted),
		}
		stripUntrusted(r.Header)
		r.Header.Del("X-Request-Id") // it travels as st.id from here
		h := w.Header()
		h["X-Request-Id"] = []string{st.id}
		for k, v := range securityHeaders {
			h[k] = v
		}
		if span != nil && span.IsRecording() {
			span.SetAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("url.path", r.URL.Path),
				attribute.String("client.address", st.clientAddr),
				attribute.String("marquee.request_id", st.id))
		}

		ctx = logging.WithRequestID(withState(ctx, st), st.id)
		rec := &recorder{ResponseWriter: w}
		defer func() {
			g.observe(ctx, r, st, rec, time.Since(start))
			if span != nil {
				if span.IsRecording() {
					span.SetAttributes(attribute.Int("http.response.status_code", rec.code()))
					if rec.code() >= 500 {
						span.SetStatus(codes.Error, st.errCode)
					}
				}
				span.End()
			}
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// observe writes the access log line and the metrics of one request.
// Neither the query string, the headers nor the bodies are logged.
func (g *Gateway) observe(ctx context.Context, r *http.Request, st *requestState, rec *recorder, d time.Duration) {
	route := st.route
	if route == "" {
		route = "unmatched"
	}
	code := rec.code()
	method := methodLabel(r.Method)
	g.metrics.observe(route, method, code, d)

	level := slog.LevelInfo
	if isProbe(r.URL.Path) {
		level = slog.LevelDebug
	}
	if !g.logger.Enabled(ctx, level) {
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
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
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

// Read reads the body, noting a read over the limit.
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
		rec, ok := w.(*recorder) // the edge's
		if !ok {
			rec = &recorder{ResponseWriter: w}
		}
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

// code is the status sent: what net/http sends for a handler that wrote
// nothing is 200.
func (w *recorder) code() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.status
}

// recorder remembers the status and the size of a response.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

// WriteHeader records the status and sends it.
func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the bytes sent.
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
