package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// natsServer is an embedded server a test can stop and start again on the
// same port and store directory.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	mu   sync.Mutex
	srv  *server.Server
}

// startNATS starts an embedded JetStream server on a free port in a fresh
// directory; it is shut down when the test ends.
func startNATS(t *testing.T) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), port: -1}
	n.start()
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: n.port, StoreDir: n.dir})
	if err != nil {
		n.t.Fatalf("StartEmbedded(port %d): %v", n.port, err)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
}

func (n *natsServer) stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// connect connects to url and ensures the stream; the connection closes
// when the test ends.
func connect(t *testing.T, url string, logger *slog.Logger) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, url, "events-test", logger)
	if err != nil {
		t.Fatalf("Connect(%s): %v", url, err)
	}
	t.Cleanup(nc.Close)
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	return nc, js
}

// goRun runs fn in a goroutine until the test ends, then cancels it and
// waits for it; fn's error fails the test.
func goRun(t *testing.T, name string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30s of cancellation", name)
		}
	})
}

// openLike opens another fresh database on the same engine as db: the
// consuming service's own database.
func openLike(t *testing.T, db *storage.DB, service string) *storage.DB {
	t.Helper()
	if db.Dialect() == storage.Postgres {
		return storagetest.OpenPostgres(t, service, storage.Migrations{})
	}
	return storagetest.OpenSQLite(t, service, storage.Migrations{})
}

// eventually polls cond until it holds or the deadline passes, then fails
// with cond's last description.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(t *testing.T, q storage.Queryer, query string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// logs is a slog handler that records what it is given, so tests can
// assert on logging without writing after the test ends.
type logs struct {
	mu      sync.Mutex
	records []string
}

func newLogs(t *testing.T) (*logs, *slog.Logger) {
	l := &logs{}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range l.all() {
				t.Log(r)
			}
		}
	})
	return l, slog.New(l)
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.records = append(l.records, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logs) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.records...)
}

// matching counts the records at level whose message contains s.
func (l *logs) matching(level slog.Level, s string) int {
	n := 0
	for _, r := range l.all() {
		if strings.HasPrefix(r, level.String()+" ") && strings.Contains(r, s) {
			n++
		}
	}
	return n
}
