// Package telemetry sets up OpenTelemetry tracing: W3C trace context
// propagation always, and OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is
// set (the exporter reads the standard OTEL_* variables itself).
package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Setup installs the global tracer provider and propagator for program.
// With an empty otlpEndpoint spans are created (so trace ids reach logs and
// peers) but neither recorded nor exported. The returned function flushes
// and stops export.
func Setup(ctx context.Context, program, version, otlpEndpoint string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(program), semconv.ServiceVersion(version))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if otlpEndpoint != "" {
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else {
		// Nothing would read the spans: keep their ids (logs carry the
		// trace id, and the context still passes to peers) but do not
		// record them, which costs a busy proxy a few percent of its CPU.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
