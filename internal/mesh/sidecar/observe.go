package sidecar

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const (
	dirInbound  = "inbound"
	dirOutbound = "outbound"
)

// exchange is what one request through the proxy leaves behind: metrics,
// a span, an access log line. It lives on the handler's stack.
type exchange struct {
	dir      string
	start    time.Time
	src, dst string
	ver      string // destination version
	endpoint string
	method   string // metric label: the gRPC method, or the HTTP method
	path     string
	grpc     bool
	code     string // gRPC code name, or HTTP status
	attempts int
	meshErr  string // reason of a mesh-made error, ours or upstream's
	span     trace.Span
}

// fail answers the request with a mesh error and records it.
func (ex *exchange) fail(w http.ResponseWriter, e meshError) {
	e.write(w, ex.grpc)
	ex.meshErr = e.reason
	if ex.grpc {
		ex.code = rpcerr.CodeName(e.code)
	} else {
		ex.code = statusLabel(e.status)
	}
}

// canceled records a request whose client went away.
func (ex *exchange) canceled() {
	if ex.grpc {
		ex.code = "CANCELLED"
	} else {
		ex.code = "499"
	}
}

// responded records the upstream's answer.
func (ex *exchange) responded(resp *http.Response) {
	if v := resp.Header[meshErrorHeader]; len(v) > 0 {
		ex.meshErr = v[0]
	}
	if !ex.grpc {
		ex.code = statusLabel(resp.StatusCode)
		return
	}
	ex.code = grpcCodeLabel(responseGRPCStatus(resp))
	if ex.meshErr == "" {
		if v := resp.Trailer[meshErrorHeader]; len(v) > 0 {
			ex.meshErr = v[0]
		}
	}
}

// responseGRPCStatus is the grpc-status of a complete response, from its
// trailers or, for a trailers-only response, its headers.
func responseGRPCStatus(resp *http.Response) string {
	if v := resp.Trailer["Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	if v := resp.Header["Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	if resp.StatusCode != http.StatusOK {
		return strconv.Itoa(int(grpcCodeOfHTTP(resp.StatusCode)))
	}
	return ""
}

// startSpan starts the request's span as a child of the trace context the
// request carries.
func (p *Proxy) startSpan(r *http.Request, ex *exchange, kind trace.SpanKind, name string) context.Context {
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, ex.span = p.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithTimestamp(ex.start))
	return ctx
}

// propagate makes the span the upstream's parent. A span that records
// nothing (no tracer provider, or not sampled) leaves the request's trace
// context as it came.
func propagate(ctx context.Context, ex *exchange, h http.Header) {
	if ex.span.IsRecording() {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// finish records the exchange of an HTTP request.
func (p *Proxy) finish(ctx context.Context, ex *exchange, r *http.Request) {
	p.finishExchange(ctx, ex, requestID(r))
}

// finishExchange records the exchange: metrics, span, access log.
func (p *Proxy) finishExchange(ctx context.Context, ex *exchange, rid string) {
	end := time.Now()
	elapsed := end.Sub(ex.start)
	if ex.code == "" {
		ex.code = "UNKNOWN"
	}
	m := p.m
	m.request(reqKey{ex.dir, ex.src, ex.dst, ex.ver, ex.method, ex.code}).Inc()
	m.durations(durKey{ex.dir, ex.src, ex.dst, ex.ver}).Observe(elapsed.Seconds())

	if sp := ex.span; sp.IsRecording() {
		sp.SetAttributes(
			attribute.String("mesh.direction", ex.dir),
			attribute.String("mesh.source", ex.src),
			attribute.String("mesh.destination", ex.dst),
			attribute.String("mesh.destination_version", ex.ver),
			attribute.String("mesh.endpoint", ex.endpoint),
			attribute.String("mesh.method", ex.method),
			attribute.String("url.path", ex.path),
			attribute.String("mesh.code", ex.code),
			attribute.Int("mesh.attempts", ex.attempts),
		)
		if ex.meshErr != "" {
			sp.SetAttributes(attribute.String("mesh.error", ex.meshErr))
		}
		if ex.meshErr != "" || !okCode(ex) {
			sp.SetStatus(codes.Error, ex.code)
		}
	}
	ex.span.End(trace.WithTimestamp(end))

	if p.cfg.AccessLog {
		p.log.LogAttrs(ctx, slog.LevelInfo, "mesh request",
			slog.String("direction", ex.dir),
			slog.String("source", ex.src),
			slog.String("destination", ex.dst),
			slog.String("version", ex.ver),
			slog.String("endpoint", ex.endpoint),
			slog.String("method", ex.method),
			slog.String("path", ex.path),
			slog.String("code", ex.code),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.Int("attempts", ex.attempts),
			slog.String("mesh_error", ex.meshErr),
			slog.String("request_id", truncate(rid, 128)),
		)
	}
}

func okCode(ex *exchange) bool {
	if ex.grpc {
		return ex.code == "OK"
	}
	return len(ex.code) == 3 && ex.code[0] < '5'
}

func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) > 0 && len(v[0]) <= 128 {
		return v[0]
	}
	return ""
}
