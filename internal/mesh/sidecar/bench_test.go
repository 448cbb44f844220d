package sidecar

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkPair measures a unary gRPC call (grpc.health.v1 Check) straight
// to the application and through a sidecar pair (mTLS between the two), in
// one process: the difference is what the pair adds. allocs/op counts the
// whole call: client, both sidecars and the application.
func BenchmarkPair(b *testing.B) {
	pr := newPair(b, nil)
	direct, err := grpc.NewClient("passthrough:///"+pr.app.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	clients := []struct {
		name string
		hc   healthpb.HealthClient
	}{
		{"direct", healthpb.NewHealthClient(direct)},
		{"pair", pr.health},
	}
	req := &healthpb.HealthCheckRequest{}
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := c.hc.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.hc.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.hc.Check(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
