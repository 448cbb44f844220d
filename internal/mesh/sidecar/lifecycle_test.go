package sidecar

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

func TestDrain(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app, drain: 30 * time.Second})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	cli := m.start("client", sidecarOpts{})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{
		{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})
	hc := dialHealth(t, cli)

	result := make(chan error, 1)
	go func() {
		_, _, err := check(context.Background(), hc, svcHold)
		result <- err
	}()
	<-app.held // the slow request is in the app

	stopped := make(chan error, 1)
	go func() { stopped <- srv.stop() }()
	// New connections are refused once draining starts, while the slow
	// request is still in flight.
	eventually(t, "inbound refusing connections", func() bool {
		c, err := net.Dial("tcp", srv.InboundAddr())
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	select {
	case err := <-result:
		t.Fatalf("the slow request ended before the app answered: %v", err)
	case err := <-stopped:
		t.Fatalf("Run returned with a request in flight: %v", err)
	default:
	}
	close(app.release)
	if err := <-result; err != nil {
		t.Fatalf("in-flight request during drain: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestDrainTimeoutCutsOff(t *testing.T) {
	m := newMesh(t)
	app := startApp(t, "v1")
	srv := m.start("echo", sidecarOpts{app: app, drain: 200 * time.Millisecond})
	srv.apply(t, &snap{Service: "echo", Inbound: allowAll("client")})
	cli := m.start("client", sidecarOpts{})
	cli.apply(t, &snap{Service: "client", Destinations: []*meshv1.Destination{
		{Service: "echo", Endpoints: []*meshv1.Endpoint{ep(srv, "v1")}}}})
	hc := dialHealth(t, cli)
	result := make(chan error, 1)
	go func() {
		_, _, err := check(context.Background(), hc, svcHold)
		result <- err
	}()
	<-app.held
	if err := srv.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-result; err == nil {
		t.Fatal("a request held past the drain timeout succeeded")
	}
	close(app.release)
}

func TestApply(t *testing.T) {
	m := newMesh(t)
	s := m.start("client", sidecarOpts{})
	if s.Ready() || s.SnapshotVersion() != 0 {
		t.Fatalf("before any snapshot: Ready %v, version %d", s.Ready(), s.SnapshotVersion())
	}
	good := func(v uint64) *snap {
		return &snap{Version: v, Service: "client", Destinations: []*meshv1.Destination{{
			Service:   "echo",
			Endpoints: []*meshv1.Endpoint{{InstanceId: "echo-1", Address: "127.0.0.1:9", Version: "v1", Healthy: true}},
		}}}
	}
	if err := s.Apply(good(10)); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() || s.SnapshotVersion() != 10 {
		t.Fatalf("after version 10: Ready %v, version %d", s.Ready(), s.SnapshotVersion())
	}

	bad := []struct {
		name string
		snap *snap
		want string
	}{
		{"older version", good(9), "not newer"},
		{"same version", good(10), "not newer"},
		{"another service", &snap{Version: 11, Service: "billing"}, `for service "billing"`},
		{"nil", nil, "nil snapshot"},
		{"bad destination name", mod(good(11), func(d *meshv1.Destination) { d.Service = "Echo!" }), "invalid service name"},
		{"bad address", mod(good(11), func(d *meshv1.Destination) { d.Endpoints[0].Address = "nowhere" }), "address"},
		{"port zero", mod(good(11), func(d *meshv1.Destination) { d.Endpoints[0].Address = "127.0.0.1:0" }), "port"},
		{"unknown retry_on", mod(good(11), func(d *meshv1.Destination) {
			d.Retries = &meshv1.RetryPolicy{Attempts: 1, RetryOn: []string{"always"}}
		}), `unknown retry_on "always"`},
		{"too many attempts", mod(good(11), func(d *meshv1.Destination) {
			d.Retries = &meshv1.RetryPolicy{Attempts: 100, RetryOn: []string{"reset"}}
		}), "attempts"},
		{"budget over 100", mod(good(11), func(d *meshv1.Destination) {
			d.Retries = &meshv1.RetryPolicy{Attempts: 1, RetryOn: []string{"reset"}, BudgetPercent: 150}
		}), "budget_percent"},
		{"abort over 100%", mod(good(11), func(d *meshv1.Destination) {
			d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 101}}
		}), "abort.percent"},
		{"abort with OK", mod(good(11), func(d *meshv1.Destination) {
			d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 1, GrpcCode: "OK"}}
		}), "grpc_code"},
		{"abort with status 200", mod(good(11), func(d *meshv1.Destination) {
			d.Fault = &meshv1.Fault{Abort: &meshv1.FaultAbort{Percent: 1, HttpStatus: 200}}
		}), "http_status"},
		{"negative timeout", mod(good(11), func(d *meshv1.Destination) { d.Timeout = durationpb.New(-time.Second) }), "timeout"},
		{"zero split", mod(good(11), func(d *meshv1.Destination) {
			d.Split = []*meshv1.WeightedVersion{{Version: "v1"}}
		}), "weights are zero"},
		{"route without headers", mod(good(11), func(d *meshv1.Destination) {
			d.Routes = []*meshv1.Route{{Version: "v2"}}
		}), "no headers"},
		{"route header upper case", mod(good(11), func(d *meshv1.Destination) {
			d.Routes = []*meshv1.Route{{Headers: map[string]string{"X-Version": "v2"}, Version: "v2"}}
		}), "lower-case"},
		{"duplicate destination", func() *snap {
			s := good(11)
			s.Destinations = append(s.Destinations, s.Destinations[0])
			return s
		}(), "appears twice"},
		{"bad caller", &snap{Version: 11, Inbound: &meshv1.Inbound{Allow: []*meshv1.AllowRule{{Caller: "", Methods: []string{"*"}}}}}, "caller"},
		{"bad method", &snap{Version: 11, Inbound: &meshv1.Inbound{Allow: []*meshv1.AllowRule{{Caller: "a", Methods: []string{"/a*/b"}}}}}, "may only end in *"},
	}
	for _, c := range bad {
		err := s.Apply(c.snap)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply(%s) = %v, want an error with %q", c.name, err, c.want)
		}
	}
	if s.SnapshotVersion() != 10 {
		t.Errorf("after refused snapshots, version = %d, want 10", s.SnapshotVersion())
	}
	if err := s.Apply(good(11)); err != nil {
		t.Fatalf("newer valid snapshot: %v", err)
	}
}

func mod(s *snap, f func(*meshv1.Destination)) *snap {
	f(s.Destinations[0])
	return s
}
