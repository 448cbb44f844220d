package sidecar

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

func TestFaultAbort(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 100}}
	})
	hdr, trl, err := check(context.Background(), pr.health, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: fault injected (abort) by policy")
	if got := meshErrorOf(hdr, trl); got != "fault_injected" {
		t.Errorf("x-marquee-mesh-error = %q, want fault_injected", got)
	}
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if d, ok := d.(*errdetails.ErrorInfo); ok {
			info = d
		}
	}
	if info.GetReason() != "MESH_FAULT_INJECTED" || info.GetDomain() != errorDomain {
		t.Errorf("error details = %v, want ErrorInfo MESH_FAULT_INJECTED in %s", info, errorDomain)
	}
	if pr.app.calls.Load() != 0 {
		t.Error("an aborted request reached the app")
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_faults_total", map[string]string{"destination": "echo", "kind": "abort"}); got != 1 {
		t.Errorf("faults_total{kind=abort} = %v, want 1", got)
	}
}

func TestFaultAbortCodes(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 100, GrpcCode: "RESOURCE_EXHAUSTED", HttpStatus: 429}}
	})
	_, _, err := check(context.Background(), pr.health, svcOK)
	mustStatus(t, err, codes.ResourceExhausted, "mesh: fault injected (abort) by policy")

	resp, err := httpVia(pr.client).Get("http://echo/file")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 429 || body.Error.Code != "RESOURCE_EXHAUSTED" || body.Error.Message != "mesh: fault injected (abort) by policy" ||
		resp.Header.Get("X-Marquee-Mesh-Error") != "fault_injected" {
		t.Errorf("HTTP abort = %d %+v %q", resp.StatusCode, body, resp.Header.Get("X-Marquee-Mesh-Error"))
	}
}

func TestFaultAbortPercent(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 50}}
	})
	failed := 0
	const n = 400
	for range n {
		if _, _, err := check(context.Background(), pr.health, svcOK); err != nil {
			mustStatus(t, err, codes.Unavailable, "mesh: fault injected")
			failed++
		}
	}
	// 50% of 400: the standard deviation is 10.
	if failed < 140 || failed > 260 {
		t.Errorf("aborted %d of %d at 50%%", failed, n)
	}
}

func TestFaultDelay(t *testing.T) {
	const delay = 200 * time.Millisecond
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Fault = &meshv1.Fault{Delay: &meshv1.FaultDelay{Percent: 100, Duration: dur(delay)}}
	})
	start := time.Now()
	if _, _, err := check(context.Background(), pr.health, svcOK); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("delayed call took %s, want at least %s", took, delay)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_faults_total", map[string]string{"destination": "echo", "kind": "delay"}); got != 1 {
		t.Errorf("faults_total{kind=delay} = %v, want 1", got)
	}
}

func TestTimeout(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Timeout = dur(150 * time.Millisecond)
	})
	hdr, trl, err := check(context.Background(), pr.health, svcSleep)
	mustStatus(t, err, codes.DeadlineExceeded, "mesh: timeout after 150ms calling echo")
	if got := meshErrorOf(hdr, trl); got != "timeout" {
		t.Errorf("x-marquee-mesh-error = %q, want timeout", got)
	}
	if got := metric(t, pr.client.reg, "marquee_mesh_requests_total", map[string]string{"direction": "outbound", "code": "DEADLINE_EXCEEDED"}); got != 1 {
		t.Errorf("outbound DEADLINE_EXCEEDED = %v, want 1", got)
	}
	// A fast call in time is untouched.
	if _, _, err := check(context.Background(), pr.health, svcOK); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutHTTP(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Timeout = dur(150 * time.Millisecond)
	})
	resp, err := httpVia(pr.client).Get("http://echo/hold")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Marquee-Mesh-Error") != "timeout" {
		t.Errorf("HTTP call past the timeout = %d %q, want 504 timeout", resp.StatusCode, resp.Header.Get("X-Marquee-Mesh-Error"))
	}
}

func TestPerTryTimeoutRetried(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Timeout = dur(10 * time.Second)
		d.Retries = &meshv1.RetryPolicy{Attempts: 1, PerTryTimeout: dur(100 * time.Millisecond), RetryOn: []string{"deadline-exceeded"}, MinRetriesConcurrent: 1}
	})
	_, _, err := check(context.Background(), pr.health, svcSleep)
	mustStatus(t, err, codes.DeadlineExceeded, "mesh: timeout after 100ms (per try) calling echo")
	if got := pr.app.calls.Load(); got != 2 {
		t.Errorf("app calls = %d, want 2 (a try and a retry)", got)
	}
}

func TestFaultDelayWithinTimeout(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Timeout = dur(100 * time.Millisecond)
		d.Fault = &meshv1.Fault{Delay: &meshv1.FaultDelay{Percent: 100, Duration: dur(time.Minute)}}
	})
	_, _, err := check(context.Background(), pr.health, svcOK)
	mustStatus(t, err, codes.DeadlineExceeded, "mesh: timeout after 100ms calling echo")
}
