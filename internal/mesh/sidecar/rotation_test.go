package sidecar

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// rotationRate is the request rate of TestRotationUnderLoad; it holds
// under the race detector too.
const rotationRate = 1000

// TestRotationUnderLoad runs gRPC calls through a pair at a steady rate
// (open loop: a clock decides when each is sent, not the previous call's
// end) while both sidecars' certificates live 4s and are renewed about
// every 2s. Not one call may fail.
func TestRotationUnderLoad(t *testing.T) {
	length := 60 * time.Second
	if testing.Short() {
		length = 10 * time.Second
	}
	const ttl = 4 * time.Second
	m := newMesh(t)
	app := startApp(t, "v1")
	srvCerts := m.rotatingCerts("echo", ttl)
	cliCerts := m.rotatingCerts("client", ttl)
	srv := m.start("echo", sidecarOpts{app: app, certs: srvCerts})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	// The client reaches the server through a relay that counts
	// connections: each renewal must bring a new one, a handshake with the
	// new certificates.
	front, conns := countingRelay(t, srv.InboundAddr())
	cli := m.start("client", sidecarOpts{certs: cliCerts})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{
		{Service: "echo", Endpoints: []*meshv1.Endpoint{{InstanceId: "echo-1", Address: front, Version: "v1", Healthy: true}}}}})
	hc := dialHealth(t, cli)
	srvStart, cliStart := srvCerts.Renewals(), cliCerts.Renewals()

	var (
		sent, failed atomic.Int64
		errMu        sync.Mutex
		firstErrs    []error
		wg           sync.WaitGroup
	)
	jobs := make(chan struct{}, rotationRate*int(length/time.Second))
	for range 64 {
		wg.Go(func() {
			for range jobs {
				if _, _, err := check(context.Background(), hc, svcOK); err != nil {
					failed.Add(1)
					errMu.Lock()
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, err)
					}
					errMu.Unlock()
				}
			}
		})
	}
	total := int64(rotationRate) * int64(length/time.Second)
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	for sent.Load() < total {
		<-tick.C
		due := min(int64(time.Since(start).Seconds()*rotationRate), total)
		for sent.Load() < due {
			jobs <- struct{}{}
			sent.Add(1)
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	took := time.Since(start)

	srvRenewals, cliRenewals := srvCerts.Renewals()-srvStart, cliCerts.Renewals()-cliStart
	t.Logf("%d calls in %s (%.0f/s), %d failed; renewals: server %d, client %d; connections %d",
		sent.Load(), took.Round(time.Millisecond), float64(sent.Load())/took.Seconds(), failed.Load(), srvRenewals, cliRenewals, conns.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d calls failed during rotation; first: %v", failed.Load(), sent.Load(), firstErrs)
	}
	// Renewal comes at about half the remaining life: every ~2s.
	want := int(length / (3 * time.Second))
	if srvRenewals < want || cliRenewals < want {
		t.Errorf("renewals: server %d, client %d; want at least %d each", srvRenewals, cliRenewals, want)
	}
	if got := conns.Load(); got < int64(want) {
		t.Errorf("%d connections to the server, want at least %d (one per client renewal)", got, want)
	}
	if got := metric(t, cli.reg, "marquee_mesh_requests_total", map[string]string{"direction": "outbound", "code": "OK"}); int64(got) != total {
		t.Errorf("client outbound OK = %v, want %d", got, total)
	}
}

// countingRelay relays TCP connections to target and counts them.
func countingRelay(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	ln := listen(t)
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() {
					io.Copy(up, c)
					up.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String(), &n
}
