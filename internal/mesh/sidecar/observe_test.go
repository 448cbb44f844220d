package sidecar

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

func TestAccessLog(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	var logs syncBuffer
	cli := m.start("client", sidecarOpts{logTo: &logs})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{
		{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})

	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-request-id", "req-42")
	if _, _, err := check(ctx, dialHealth(t, cli), svcOK); err != nil {
		t.Fatal(err)
	}
	_, _, err := check(context.Background(), healthpb.NewHealthClient(dialOutbound(t, cli, "nope")), svcOK)
	mustStatus(t, err, codes.Unavailable, "unknown destination")

	type line struct {
		Msg         string   `json:"msg"`
		Direction   string   `json:"direction"`
		Source      string   `json:"source"`
		Destination string   `json:"destination"`
		Version     string   `json:"version"`
		Endpoint    string   `json:"endpoint"`
		Method      string   `json:"method"`
		Code        string   `json:"code"`
		MeshError   string   `json:"mesh_error"`
		RequestID   string   `json:"request_id"`
		DurationMS  *float64 `json:"duration_ms"`
		Attempts    int      `json:"attempts"`
	}
	var got []line
	eventually(t, "two access log lines", func() bool {
		got = got[:0]
		for _, s := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var l line
			if json.Unmarshal([]byte(s), &l) == nil && l.Msg == "mesh request" {
				got = append(got, l)
			}
		}
		return len(got) == 2
	})
	ok := got[0]
	if ok.Direction != "outbound" || ok.Source != "client" || ok.Destination != "echo" || ok.Version != "v1" ||
		ok.Endpoint != srv.InboundAddr() || ok.Method != "/grpc.health.v1.Health/Check" || ok.Code != "OK" ||
		ok.Attempts != 1 || ok.RequestID != "req-42" || ok.MeshError != "" || ok.DurationMS == nil {
		t.Errorf("access log of a good call = %+v", ok)
	}
	bad := got[1]
	if bad.Code != "UNAVAILABLE" || bad.MeshError != "unknown_destination" || bad.Destination != "unknown" {
		t.Errorf("access log of a call to an unknown destination = %+v", bad)
	}
}

// TestTracePropagation: each sidecar makes a span, the child of the
// caller's, and the application sees the inbound sidecar's span as its
// parent.
func TestTracePropagation(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	pr := newPair(t, nil)

	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-"+parentID+"-01")
	hdr, _, err := check(ctx, pr.health, svcOK)
	if err != nil {
		t.Fatal(err)
	}
	var out, in sdktrace.ReadOnlySpan
	eventually(t, "two spans", func() bool {
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "mesh outbound":
				out = s
			case "mesh inbound":
				in = s
			}
		}
		return out != nil && in != nil
	})
	if out.SpanContext().TraceID().String() != traceID || out.Parent().SpanID().String() != parentID || out.SpanKind() != trace.SpanKindClient {
		t.Errorf("outbound span: trace %s parent %s kind %s; want trace %s parent %s, client",
			out.SpanContext().TraceID(), out.Parent().SpanID(), out.SpanKind(), traceID, parentID)
	}
	if in.SpanContext().TraceID().String() != traceID || in.Parent().SpanID() != out.SpanContext().SpanID() {
		t.Errorf("inbound span: trace %s parent %s; want trace %s parent %s (the outbound span)",
			in.SpanContext().TraceID(), in.Parent().SpanID(), traceID, out.SpanContext().SpanID())
	}
	want := "00-" + traceID + "-" + in.SpanContext().SpanID().String() + "-01"
	if got := hdr.Get("x-seen-traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("the app saw traceparent %q, want %q (the inbound span as parent)", got, want)
	}
	attrs := map[string]string{}
	for _, a := range out.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["mesh.destination"] != "echo" || attrs["mesh.code"] != "OK" || attrs["mesh.endpoint"] != pr.server.InboundAddr() {
		t.Errorf("outbound span attributes = %v", attrs)
	}
}
