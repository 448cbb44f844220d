package console

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// provider exports the spans of service to the console's receiver over
// real OTLP/gRPC, synchronously, so that a span is stored when End returns.
func provider(t *testing.T, addr, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func TestTracesOverOTLP(t *testing.T) {
	h := newHarness(t, Config{OTLPAddr: "127.0.0.1:0"}, true)
	addr := h.c.OTLPAddr().String()
	gw, cat := provider(t, addr, "gateway"), provider(t, addr, "catalog")

	// gateway GET /titles → catalog ListTitles (failing), across processes:
	// the catalog's span has a remote parent.
	ctx, root := gw.Tracer("t").Start(context.Background(), "GET /api/v1/titles", trace.WithSpanKind(trace.SpanKindServer))
	_, client := gw.Tracer("t").Start(ctx, "marquee.catalog.v1.CatalogService/ListTitles", trace.WithSpanKind(trace.SpanKindClient))
	remote := trace.ContextWithRemoteSpanContext(context.Background(), client.SpanContext())
	_, server := cat.Tracer("t").Start(remote, "marquee.catalog.v1.CatalogService/ListTitles",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("rpc.system", "grpc")))
	server.SetStatus(codes.Error, "database is down")
	server.End()
	client.End()
	root.End()
	traceID := root.SpanContext().TraceID().String()

	// Another trace, fine, from the catalog alone.
	_, other := cat.Tracer("t").Start(context.Background(), "refresh")
	other.End()

	var list struct {
		Traces []TraceSummary `json:"traces"`
		Note   string         `json:"note"`
	}
	h.getJSON("/api/v1/console/traces", &list)
	if len(list.Traces) != 2 || list.Note != "" {
		t.Fatalf("traces = %+v (note %q), want 2", list.Traces, list.Note)
	}
	if got := list.Traces[0]; got.Root != "refresh" || got.Error {
		t.Errorf("latest trace = %+v, want refresh without error", got)
	}
	sum := list.Traces[1]
	if sum.TraceID != traceID || sum.Root != "GET /api/v1/titles" || sum.Service != "gateway" || sum.Spans != 3 || !sum.Error ||
		fmt.Sprint(sum.Services) != "[catalog gateway]" || sum.DurationMs < 0 {
		t.Errorf("trace summary = %+v, want root GET /api/v1/titles on gateway, 3 spans, an error, services catalog and gateway", sum)
	}
	h.getJSON("/api/v1/console/traces?errors=true", &list)
	if len(list.Traces) != 1 || list.Traces[0].TraceID != traceID {
		t.Errorf("traces with errors = %+v, want only %s", list.Traces, traceID)
	}
	h.getJSON("/api/v1/console/traces?service=gateway&limit=5", &list)
	if len(list.Traces) != 1 || list.Traces[0].TraceID != traceID {
		t.Errorf("traces of the gateway = %+v, want only %s", list.Traces, traceID)
	}

	var tr Trace
	h.getJSON("/api/v1/console/traces/"+traceID, &tr)
	if len(tr.Spans) != 3 {
		t.Fatalf("trace spans = %+v, want 3", tr.Spans)
	}
	wantOrder := []struct{ name, service, kind, parent string }{
		{"GET /api/v1/titles", "gateway", "server", ""},
		{"marquee.catalog.v1.CatalogService/ListTitles", "gateway", "client", root.SpanContext().SpanID().String()},
		{"marquee.catalog.v1.CatalogService/ListTitles", "catalog", "server", client.SpanContext().SpanID().String()},
	}
	for i, w := range wantOrder {
		sp := tr.Spans[i]
		if sp.Name != w.name || sp.Service != w.service || sp.Kind != w.kind || sp.ParentSpanID != w.parent {
			t.Errorf("span %d = %s/%s/%s parent %q, want %s/%s/%s parent %q", i, sp.Service, sp.Name, sp.Kind, sp.ParentSpanID, w.service, w.name, w.kind, w.parent)
		}
		if sp.OffsetMs < 0 || sp.DurationMs < 0 || sp.OffsetMs+sp.DurationMs > tr.DurationMs+0.001 {
			t.Errorf("span %d at +%vms for %vms, outside the trace's %vms", i, sp.OffsetMs, sp.DurationMs, tr.DurationMs)
		}
	}
	if sp := tr.Spans[2]; !sp.Error || sp.Status != "database is down" || sp.Attributes["rpc.system"] != "grpc" {
		t.Errorf("catalog span = %+v, want the error, its message and attributes", sp)
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/v1/console/traces/" + "0123456789abcdef0123456789abcdef", 404},
		{"/api/v1/console/traces/xyz", 400},
		{"/api/v1/console/traces?limit=0", 400},
		{"/api/v1/console/traces?errors=maybe", 400},
	} {
		if status, _, b := h.do(http.MethodGet, tc.path, h.sign(h.key, "admin")); status != tc.want {
			t.Errorf("GET %s = %d %s, want %d", tc.path, status, b, tc.want)
		}
	}
}

func TestTracesWithoutReceiver(t *testing.T) {
	h := newHarness(t, Config{}, true)
	var list struct {
		Traces []TraceSummary `json:"traces"`
		Note   string         `json:"note"`
	}
	h.getJSON("/api/v1/console/traces", &list)
	if list.Traces == nil || len(list.Traces) != 0 || list.Note == "" {
		t.Errorf("without a receiver: %+v, want an empty list and a note", list)
	}
	if h.c.OTLPAddr() != nil {
		t.Errorf("OTLPAddr() = %v without a receiver, want nil", h.c.OTLPAddr())
	}
}

func exportOf(traceID byte, spans int) *coltracepb.ExportTraceServiceRequest {
	ss := &tracepb.ScopeSpans{}
	for i := range spans {
		ss.Spans = append(ss.Spans, &tracepb.Span{
			TraceId: []byte{traceID, 15: 1}, SpanId: []byte{byte(i >> 8), byte(i), 7: 1}, Name: "s",
			StartTimeUnixNano: uint64(time.Second), EndTimeUnixNano: uint64(2 * time.Second),
		})
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{ss}}}}
}

func TestTraceStoreBounds(t *testing.T) {
	s := newTraceStore(3)
	for id := range byte(5) {
		s.add(exportOf(id, 1))
	}
	// Trace 2 gets a late span: it becomes the most recent.
	s.add(exportOf(2, 1))
	var got []string
	for _, sum := range s.list(10, "", false) {
		got = append(got, sum.TraceID[:2])
	}
	if fmt.Sprint(got) != "[02 04 03]" {
		t.Errorf("kept traces = %v, want [02 04 03] (most recently updated first)", got)
	}
	if _, ok := s.get(hex.EncodeToString([]byte{0, 15: 1})); ok {
		t.Error("trace 00 is still kept, want it evicted")
	}
	if sum := s.list(1, "", false); len(sum) != 1 || sum[0].Service != "unknown" {
		t.Errorf("list(1) = %+v, want one trace of service unknown (no resource)", sum)
	}

	s.add(exportOf(9, maxSpansPerTrace+5))
	tr, ok := s.get(hex.EncodeToString([]byte{9, 15: 1}))
	if !ok || len(tr.Spans) != maxSpansPerTrace || tr.DroppedSpans != 5 || tr.TraceSummary.Spans != maxSpansPerTrace+5 {
		t.Errorf("an oversized trace keeps %d spans, drops %d; want %d and 5", len(tr.Spans), tr.DroppedSpans, maxSpansPerTrace)
	}
}
