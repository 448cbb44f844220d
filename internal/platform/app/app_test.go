package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	a, err := New(Config{Program: "test", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var dbReady atomic.Bool
	a.AddCheck("db", func(context.Context) error {
		if !dbReady.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	a.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("hello")) }))
	var order []string
	workerDone := make(chan struct{})
	a.Go("worker", func(ctx context.Context) error {
		<-ctx.Done()
		order = append(order, "worker")
		close(workerDone)
		return nil
	})
	a.OnClose(func() error { order = append(order, "first-opened"); return nil })
	a.OnClose(func() error { order = append(order, "last-opened"); return nil })

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	<-a.Started()
	grpcAddr, httpAddr, adminAddr := a.Addrs()
	admin := "http://" + adminAddr.String()

	if code, _ := get(t, admin+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, _ := get(t, admin+"/readyz"); code != 503 {
		t.Errorf("/readyz before the check passes = %d, want 503", code)
	}
	dbReady.Store(true)
	waitFor(t, "ready", a.Ready)
	if code, _ := get(t, admin+"/readyz"); code != 200 {
		t.Errorf("/readyz after the check passes = %d, want 200", code)
	}
	if _, body := get(t, "http://"+httpAddr.String()+"/"); body != "hello" {
		t.Errorf("main handler = %q, want hello", body)
	}
	if code, body := get(t, admin+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d without go_goroutines", code)
	}
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health = %v, %v; want SERVING", resp, err)
	}

	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run = %v, want nil on a clean stop", err)
	}
	<-workerDone
	if got, want := strings.Join(order, ","), "worker,last-opened,first-opened"; got != want {
		t.Errorf("shutdown order = %s, want %s", got, want)
	}
}

func TestWorkerFailureStopsProgram(t *testing.T) {
	a, _ := New(Config{Program: "test", AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.Go("broken", func(context.Context) error { return errors.New("boom") })
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Run = %v, want the worker's error", err)
	}
}
