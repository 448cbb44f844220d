package sidecar

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// twoVersions starts v1 and v2 of echo, each behind its own sidecar, and
// a client sidecar whose destination dest adjusts.
func twoVersions(t *testing.T, dest func(*meshv1.Destination)) (client *sidecar, hc healthpb.HealthClient) {
	t.Helper()
	m := newMesh(t)
	var eps []*meshv1.Endpoint
	for _, v := range []string{"v1", "v2"} {
		s := m.start("echo", sidecarOpts{app: startApp(t, v)})
		s.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
		eps = append(eps, ep(s, v))
	}
	client = m.start("client", sidecarOpts{})
	d := &meshv1.Destination{Service: "echo", Endpoints: eps}
	dest(d)
	client.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{d}})
	return client, healthpb.NewHealthClient(dialOutbound(t, client, "echo"))
}

// versionCounts makes n calls with 16 workers and counts the answering
// versions.
func versionCounts(t *testing.T, ctx context.Context, hc healthpb.HealthClient, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for range jobs {
				hdr, _, err := check(ctx, hc, svcOK)
				mu.Lock()
				if err != nil {
					counts["error: "+err.Error()]++
				} else {
					counts[hdr.Get("x-version")[0]]++
				}
				mu.Unlock()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return counts
}

func TestSplitByWeight(t *testing.T) {
	client, hc := twoVersions(t, func(d *meshv1.Destination) {
		d.Split = []*meshv1.WeightedVersion{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}}
	})
	const n = 10000
	counts := versionCounts(t, context.Background(), hc, n)
	if counts["v1"]+counts["v2"] != n {
		t.Fatalf("answers by version = %v, want %d in v1 and v2", counts, n)
	}
	share := float64(counts["v2"]) / n * 100
	if share < 8 || share > 12 {
		t.Errorf("v2 share = %.2f%%, want 10%% ± 2", share)
	}
	for _, v := range []string{"v1", "v2"} {
		got := metric(t, client.reg, "marquee_mesh_requests_total", map[string]string{
			"direction": "outbound", "destination": "echo", "destination_version": v, "code": "OK"})
		if int(got) != counts[v] {
			t.Errorf("requests_total{destination_version=%s} = %v, want %d", v, got, counts[v])
		}
	}
}

func TestHeaderRoute(t *testing.T) {
	_, hc := twoVersions(t, func(d *meshv1.Destination) {
		d.Split = []*meshv1.WeightedVersion{{Version: "v1", Weight: 100}}
		d.Routes = []*meshv1.Route{{Headers: map[string]string{"x-marquee-version": "v2"}, Version: "v2"}}
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-marquee-version", "v2")
	if got := versionCounts(t, ctx, hc, 200); got["v2"] != 200 {
		t.Errorf("with x-marquee-version: v2, answers = %v, want all 200 from v2", got)
	}
	if got := versionCounts(t, context.Background(), hc, 200); got["v1"] != 200 {
		t.Errorf("without the header, answers = %v, want all 200 from v1", got)
	}
	// A header with another value does not match.
	ctx = metadata.AppendToOutgoingContext(context.Background(), "x-marquee-version", "v3")
	if got := versionCounts(t, ctx, hc, 50); got["v1"] != 50 {
		t.Errorf("with x-marquee-version: v3, answers = %v, want all 50 from v1", got)
	}
}

func TestNoHealthyUpstream(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Endpoints[0].Healthy = false
	})
	hdr, trl, err := check(context.Background(), pr.health, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: no healthy upstream for echo")
	if got := meshErrorOf(hdr, trl); got != "no_healthy_upstream" {
		t.Errorf("x-marquee-mesh-error = %q, want no_healthy_upstream", got)
	}
}

func TestHeaderRouteToVersionWithoutEndpoints(t *testing.T) {
	pr := newPair(t, func(d *meshv1.Destination) {
		d.Routes = []*meshv1.Route{{Headers: map[string]string{"x-marquee-version": "v9"}, Version: "v9"}}
	})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-marquee-version", "v9")
	_, _, err := check(ctx, pr.health, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: no healthy upstream for echo")
}

func TestUnknownDestination(t *testing.T) {
	pr := newPair(t, nil)
	hc := healthpb.NewHealthClient(dialOutbound(t, pr.client, "nope"))
	hdr, trl, err := check(context.Background(), hc, svcOK)
	mustStatus(t, err, codes.Unavailable, "mesh: unknown destination nope")
	if got := meshErrorOf(hdr, trl); got != "unknown_destination" {
		t.Errorf("x-marquee-mesh-error = %q, want unknown_destination", got)
	}
}
