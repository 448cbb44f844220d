package events

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const traceParentHeader = "traceparent"

// traceParentOf returns the W3C traceparent of the span in ctx, or "" when
// ctx carries no valid span. It asks the global propagator first and falls
// back to W3C Trace Context, so the header is carried even by a program
// that installed no propagator.
func traceParentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	if tp := c.Get(traceParentHeader); tp != "" {
		return tp
	}
	propagation.TraceContext{}.Inject(ctx, c)
	return c.Get(traceParentHeader)
}

// withTraceParent returns ctx carrying the remote span context named by
// the message's trace headers (the global propagator first, then W3C Trace
// Context), or ctx unchanged when there is none.
func withTraceParent(ctx context.Context, h nats.Header) context.Context {
	if h.Get(traceParentHeader) == "" {
		return ctx
	}
	c := headerCarrier(h)
	out := otel.GetTextMapPropagator().Extract(ctx, c)
	if trace.SpanContextFromContext(out).IsRemote() {
		return out
	}
	return propagation.TraceContext{}.Extract(ctx, c)
}

// headerCarrier adapts NATS headers, whose keys are case-sensitive, to the
// OpenTelemetry carrier interface with the lower-case keys W3C uses.
type headerCarrier nats.Header

var _ propagation.TextMapCarrier = headerCarrier(nil)

func (h headerCarrier) Get(key string) string { return nats.Header(h).Get(key) }

func (h headerCarrier) Set(key, value string) { nats.Header(h).Set(key, value) }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
