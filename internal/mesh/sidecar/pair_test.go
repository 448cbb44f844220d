package sidecar

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

func TestPairUnaryGRPC(t *testing.T) {
	pr := newPair(t, nil)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-marquee-caller", "forged", "x-marquee-principal", "user-7")
	hdr, _, err := check(ctx, pr.health, svcOK)
	if err != nil {
		t.Fatal(err)
	}
	// The server sidecar names the caller from its certificate, replacing
	// what the client sent.
	if got := hdr.Get("x-seen-caller"); len(got) != 1 || got[0] != "client" {
		t.Errorf("app saw x-marquee-caller %q, want [client]", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_requests_total", map[string]string{
		"direction": "outbound", "source": "client", "destination": "echo", "destination_version": "v1",
		"method": "/grpc.health.v1.Health/Check", "code": "OK"}); got != 1 {
		t.Errorf("client outbound OK requests = %v, want 1", got)
	}
	if got := metric(t, pr.server.reg, "marquee_mesh_requests_total", map[string]string{
		"direction": "inbound", "source": "client", "destination": "echo", "code": "OK"}); got != 1 {
		t.Errorf("server inbound OK requests = %v, want 1", got)
	}
	if got := metric(t, pr.server.reg, "marquee_mesh_request_duration_seconds", map[string]string{"direction": "inbound"}); got != 1 {
		t.Errorf("server inbound durations observed = %v, want 1", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_certificate_expiry_seconds", nil); got < 3600 {
		t.Errorf("certificate expiry gauge = %v, want about a day", got)
	}
	if got, want := metric(t, pr.client.reg, "marquee_mesh_snapshot_version", nil), float64(pr.client.SnapshotVersion()); got != want || got == 0 {
		t.Errorf("snapshot version gauge = %v, want %v", got, want)
	}
}

func TestPairServerStreamingGRPC(t *testing.T) {
	pr := newPair(t, nil)
	stream, err := pr.health.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []healthpb.HealthCheckResponse_ServingStatus
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.GetStatus())
	}
	want := []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("stream = %v, want %v", got, want)
	}
}

func TestPairHTTP(t *testing.T) {
	pr := newPair(t, nil)
	c := httpVia(pr.client)

	req, _ := http.NewRequest(http.MethodGet, "http://echo/file", strings.NewReader("a body on a GET"))
	req.Header.Set("Range", "bytes=10-15")
	req.Header.Set("X-Marquee-Caller", "forged")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(body) != "abcdef" {
		t.Fatalf("GET /file Range 10-15 = %d %q, want 206 \"abcdef\"", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Range"); got != "bytes 10-15/36" {
		t.Errorf("Content-Range = %q, want bytes 10-15/36", got)
	}
	if got := resp.Header.Get("X-Seen-Caller"); got != "client" {
		t.Errorf("app saw x-marquee-caller %q, want client", got)
	}
	if got, _ := pr.app.lastBody.Load().(string); got != "a body on a GET" {
		t.Errorf("app got body %q", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_requests_total", map[string]string{"method": "GET", "code": "206"}); got != 1 {
		t.Errorf("client requests GET 206 = %v, want 1", got)
	}

	// Not found passes through as the application's answer, not the
	// mesh's.
	resp, err = c.Get("http://echo/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Marquee-Mesh-Error") != "" {
		t.Errorf("GET /nothing = %d mesh error %q, want the app's 404", resp.StatusCode, resp.Header.Get("X-Marquee-Mesh-Error"))
	}
}

func TestPairHTTPMeshErrorIsJSON(t *testing.T) {
	pr := newPair(t, nil)
	resp, err := httpVia(pr.client).Get("http://nowhere/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Marquee-Mesh-Error") != "unknown_destination" ||
		body.Error.Code != "UNAVAILABLE" || body.Error.Message != "mesh: unknown destination nowhere" {
		t.Errorf("GET http://nowhere/x = %d %q %+v", resp.StatusCode, resp.Header.Get("X-Marquee-Mesh-Error"), body)
	}
}

// TestPairHTTPOverH2C sends plain HTTP requests to the outbound listener
// over HTTP/2 with prior knowledge: they are served like HTTP/1.1 ones.
func TestPairHTTPOverH2C(t *testing.T) {
	pr := newPair(t, nil)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+pr.client.OutboundAddr()+"/file", strings.NewReader("posted over h2c"))
	req.Host = "echo"
	req.Header.Set("Range", "bytes=0-3")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusPartialContent || string(body) != "0123" {
		t.Fatalf("POST /file over h2c = %s %d %q, want HTTP/2 206 \"0123\"", resp.Proto, resp.StatusCode, body)
	}
	if got, _ := pr.app.lastBody.Load().(string); got != "posted over h2c" {
		t.Errorf("app got body %q", got)
	}
	if got := resp.Header.Get("X-Seen-Caller"); got != "client" {
		t.Errorf("app saw x-marquee-caller %q, want client", got)
	}
}
