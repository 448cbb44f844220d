package revocation

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
)

func TestList(t *testing.T) {
	t0 := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	l := NewList()
	l.Add("s1", t0)
	l.Add("s2", t0.Add(5*time.Minute))
	if !l.Revoked("s1") || !l.Revoked("s2") || l.Revoked("s3") {
		t.Fatalf("Revoked(s1, s2, s3) = %v, %v, %v; want true, true, false", l.Revoked("s1"), l.Revoked("s2"), l.Revoked("s3"))
	}
	l.Prune(t0.Add(Window - time.Second))
	if l.Len() != 2 {
		t.Errorf("Len after pruning before any window ends = %d, want 2", l.Len())
	}
	l.Prune(t0.Add(Window))
	if l.Revoked("s1") || !l.Revoked("s2") {
		t.Errorf("after s1's window: Revoked(s1, s2) = %v, %v; want false, true", l.Revoked("s1"), l.Revoked("s2"))
	}
	// A later revocation of the same session extends it; an earlier one
	// does not shorten it.
	l.Add("s2", t0)
	l.Prune(t0.Add(5*time.Minute + Window - time.Second))
	if !l.Revoked("s2") {
		t.Error("an older revocation shortened s2's entry")
	}
	if Window < 15*time.Minute+30*time.Second {
		t.Errorf("Window = %v, shorter than an access token can live", Window)
	}
}

func TestDecode(t *testing.T) {
	good, _ := json.Marshal(Event{SessionID: "s", AccountID: "a", Reason: ReasonLogout, RevokedAt: time.Now()})
	if ev, err := Decode(good); err != nil || ev.SessionID != "s" || ev.Reason != ReasonLogout {
		t.Errorf("Decode(good) = %+v, %v", ev, err)
	}
	for _, bad := range []string{"", "{", `{"session_id":""}`, `{"session_id":"s"}`, `{"session_id":1}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = nil error", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := json.Marshal(Event{SessionID: "s", RevokedAt: time.Now()})
	f.Add(string(good))
	f.Add(`{"session_id":"x","revoked_at":"2026-01-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, in string) {
		ev, err := Decode([]byte(in))
		if err == nil && (ev.SessionID == "" || len(ev.SessionID) > 128 || ev.RevokedAt.IsZero()) {
			t.Fatalf("Decode(%q) accepted %+v", in, ev)
		}
	})
}

func TestFollower(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "revocation-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	publish := func(sid string, at time.Time) {
		t.Helper()
		data, _ := json.Marshal(Event{SessionID: sid, AccountID: "acc", Reason: ReasonLogout, RevokedAt: at})
		if _, err := js.Publish(ctx, Subject, data); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	// Before the follower starts: one revocation whose tokens are all
	// dead, one whose tokens may live, and noise on another subject.
	publish("old", time.Now().Add(-2*Window))
	publish("recent", time.Now().Add(-time.Minute))
	if _, err := js.Publish(ctx, "marquee.identity.account_created", []byte(`{"id":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, Subject, []byte("not json")); err != nil {
		t.Fatal(err)
	}

	list := NewList()
	f := NewFollower(js, list, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	select {
	case <-f.Synced():
	case <-ctx.Done():
		t.Fatal("the follower never caught up with the stream")
	}
	if !list.Revoked("recent") || list.Revoked("old") || list.Len() != 1 {
		t.Errorf("after catching up: recent=%v old=%v len=%d; want true, false, 1", list.Revoked("recent"), list.Revoked("old"), list.Len())
	}
	// A live revocation arrives within moments.
	publish("live", time.Now())
	for !list.Revoked("live") {
		select {
		case <-ctx.Done():
			t.Fatal("a live revocation never reached the list")
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil at cancel", err)
	}
}

// TestFollowerWaitsForTheStream checks a follower started before the
// stream exists catches up once it does.
func TestFollowerWaitsForTheStream(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "revocation-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	list := NewList()
	f := NewFollower(js, list, nil)
	go f.Run(ctx)
	time.Sleep(50 * time.Millisecond) // let it fail once on the missing stream
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(Event{SessionID: "s", RevokedAt: time.Now()})
	if _, err := js.Publish(ctx, Subject, data, jetstream.WithMsgID("e1")); err != nil {
		t.Fatal(err)
	}
	for !list.Revoked("s") {
		select {
		case <-ctx.Done():
			t.Fatal("the follower never picked up the revocation")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
