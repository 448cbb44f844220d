package gateway

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/gateway/auth"
	"github.com/marquee-tv/marquee/internal/platform/events"
)

// TestRevokedSession revokes sessions through identity's session_revoked
// events on NATS: one before the gateway starts (replayed from the stream)
// and one while it runs (live). Tokens of those sessions are refused from
// then on and never reach the upstream; other sessions still work.
func TestRevokedSession(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	publish := func(sid string) {
		t.Helper()
		ev, err := events.NewEvent(auth.RevokedSubject, sid, map[string]string{"sid": sid})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, events.Message(ev)); err != nil {
			t.Fatal(err)
		}
	}
	publish("sid-early")

	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{NATSURL: srv.ClientURL()}, nil)
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	key := u.identity.key()
	tok := func(acc, sid string) http.Header {
		c := claims(acc)
		c.SessionID = sid
		return header("Authorization", "Bearer "+key.sign(t, c))
	}
	early := tok("acc-1", "sid-early")
	live := tok("acc-2", "sid-live")
	other := tok("acc-2", "sid-other")

	// Before the live revocation: the live session works (and its token is
	// cached as verified).
	if r := g.do(t, http.MethodGet, "/api/v1/account", live, nil); r.status != http.StatusOK {
		t.Fatalf("token of a live session = %s, want 200", describe(r))
	}
	waitStatus(t, g, early, http.StatusUnauthorized, "token of a session revoked before the gateway started")

	publish("sid-live")
	waitStatus(t, g, live, http.StatusUnauthorized, "token of a session revoked while the gateway runs")
	before := u.calls()
	for _, h := range []http.Header{early, live} {
		r := g.do(t, http.MethodGet, "/api/v1/account", h, nil)
		if e := errorOf(t, r); r.status != 401 || e.Code != "UNAUTHENTICATED" {
			t.Errorf("revoked session = %s, want 401 UNAUTHENTICATED", describe(r))
		}
	}
	if u.calls() != before {
		t.Errorf("requests with revoked sessions reached the upstream")
	}
	if r := g.do(t, http.MethodGet, "/api/v1/account", other, nil); r.status != http.StatusOK {
		t.Errorf("another session of the same account = %s, want 200", describe(r))
	}
}

// waitStatus polls GET /api/v1/account with h until it answers want.
func waitStatus(t *testing.T, g *testGateway, h http.Header, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := g.do(t, http.MethodGet, "/api/v1/account", h, nil)
		if r.status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %s, want %d within 5 s", what, describe(r), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
