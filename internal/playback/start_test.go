package playback_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback"
)

// TestStart runs the service as a program does: its own database, embedded
// NATS, catalog and profiles as named peers, demo seeding, the gRPC server
// and the media handler on the program's HTTP listener. The seeded viewing
// history and a new session reach the event stream through the outbox.
func TestStart(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	demoProfiles := &fakeProfiles{profiles: map[string]*profilesv1.Profile{}}
	for _, p := range seed.DemoProfiles {
		demoProfiles.profiles[p.ID] = &profilesv1.Profile{Id: p.ID, AccountId: seed.DemoAccountID, MaturityLevel: p.Maturity}
	}
	catalogConn := serveGRPC(t, func(s *grpc.Server) { catalogv1.RegisterCatalogServiceServer(s, &fakeCatalog{titles: testTitles}) })
	profilesConn := serveGRPC(t, func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, demoProfiles) })

	credentials := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(credentials, []byte(`{"demo":{"email":"demo@example.com","password":"demo-password"},"admin":{"email":"admin@example.com","password":"admin-password"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(app.Config{Program: "playback", GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	dialer := peers.NewDialer(peers.Table{"catalog": {catalogConn.Target()}, "profiles": {profilesConn.Target()}})
	t.Cleanup(func() { dialer.Close() })
	env := &service.Env{
		Name: "playback", Version: "v1", App: a,
		Storage:     storage.Config{Service: "playback", DataDir: t.TempDir()},
		NATSURL:     ns.ClientURL(),
		Peers:       dialer,
		Credentials: credentials,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := playback.Start(ctx, env); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-a.Started():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the program did not start")
	}
	grpcAddr, httpAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := playbackv1.NewPlaybackServiceClient(conn)

	demo := as(seed.DemoAccountID)
	ent, err := client.GetEntitlement(demo, &playbackv1.GetEntitlementRequest{})
	if err != nil || ent.GetPlan().GetPlanId() != seed.DemoPlan || ent.GetMaxStreams() != 4 {
		t.Fatalf("demo GetEntitlement = %v, %v; want the seeded %s plan", ent, err, seed.DemoPlan)
	}
	cw, err := client.ContinueWatching(demo, &playbackv1.ContinueWatchingRequest{ProfileId: seed.DemoProfiles[0].ID})
	if err != nil || len(cw.GetItems()) == 0 {
		t.Fatalf("demo ContinueWatching = %v, %v; want the seeded history", cw, err)
	}
	// The profile lookup goes through the peer dialer as the caller.
	started, err := client.StartPlayback(demo, &playbackv1.StartPlaybackRequest{ProfileId: seed.DemoProfiles[0].ID, TitleId: "t-pg13"})
	if err != nil {
		t.Fatalf("StartPlayback: %v", err)
	}
	resp, err := http.Get("http://" + httpAddr.String() + started.GetStreamUrl())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "video/webm" || len(body) < 100<<10 {
		t.Errorf("GET stream URL on the program's HTTP listener = %d, %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}

	// The stream holds the seeded history (6 titles for each of 3
	// profiles, 2 finished each) and the start.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	cons, err := js.OrderedConsumer(rctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"marquee.playback.>"}})
	if err != nil {
		t.Fatalf("OrderedConsumer: %v", err)
	}
	counts := map[string]int{}
	for n := 0; n < 25; n++ {
		msg, err := cons.Next(jetstream.FetchContext(rctx))
		if err != nil {
			t.Fatalf("after %d events (%v): %v", n, counts, err)
		}
		counts[msg.Subject()]++
		var data playback.ViewingEvent
		if err := json.Unmarshal(msg.Data(), &data); err != nil || data.AccountID != seed.DemoAccountID {
			t.Errorf("event %s data %s: %v", msg.Subject(), msg.Data(), err)
		}
		if h := msg.Headers(); h.Get(events.HeaderSpecVersion) != "1.0" || h.Get(events.HeaderType) != msg.Subject() || h.Get(events.HeaderSubject) != data.SessionID {
			t.Errorf("event %s headers %v", msg.Subject(), h)
		}
	}
	want := map[string]int{playback.SubjectProgress: 18, playback.SubjectCompleted: 6, playback.SubjectStarted: 1}
	for s, n := range want {
		if counts[s] != n {
			t.Errorf("events = %v, want %v", counts, want)
			break
		}
	}
	if demoProfiles.calls.Load() != 1 {
		t.Errorf("profiles called %d times, want once", demoProfiles.calls.Load())
	}
}
