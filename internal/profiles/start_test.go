package profiles_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/profiles"
)

// TestStart runs the service as a program does: its own database, embedded
// NATS, the catalog as a named peer, demo seeding. The seed and a later
// change reach the event stream through the outbox relay, and the catalog
// is reached through the peer dialer as the caller.
func TestStart(t *testing.T) {
	ns, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	fake := newFakeCatalog()
	fake.ratings["t-0001"] = "PG-13"
	catalogConn := serveGRPC(t, func(r grpc.ServiceRegistrar) { catalogv1.RegisterCatalogServiceServer(r, fake) })

	credentials := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(credentials, []byte(`{"demo":{"email":"demo@example.com","password":"demo-password"},"admin":{"email":"admin@example.com","password":"admin-password"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(app.Config{Program: "profiles", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, log)
	if err != nil {
		t.Fatal(err)
	}
	dialer := peers.NewDialer(peers.Table{"catalog": {catalogConn.Target()}})
	t.Cleanup(func() { dialer.Close() })
	env := &service.Env{
		Name: "profiles", Version: "v1", App: a,
		Storage:     storage.Config{Service: "profiles", DataDir: t.TempDir()},
		NATSURL:     ns.ClientURL(),
		Peers:       dialer,
		Credentials: credentials,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := profiles.Start(ctx, env); err != nil {
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
	grpcAddr, _, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := profilesv1.NewProfilesServiceClient(conn)

	demo := as(seed.DemoAccountID)
	list, err := client.ListProfiles(demo, &profilesv1.ListProfilesRequest{})
	if err != nil || len(list.GetProfiles()) != len(seed.DemoProfiles) {
		t.Fatalf("demo ListProfiles = %v, %v; want the %d demo profiles", list, err, len(seed.DemoProfiles))
	}
	first := seed.DemoProfiles[0].ID
	// Re-adding a seeded title goes to the catalog through the peer, as
	// the user, and changes nothing.
	if _, err := client.AddToMyList(demo, &profilesv1.AddToMyListRequest{ProfileId: first, TitleId: "t-0001"}); err != nil {
		t.Fatalf("AddToMyList(t-0001): %v", err)
	}
	fake.mu.Lock()
	callers := slices.Clone(fake.callers)
	fake.mu.Unlock()
	if !slices.Equal(callers, []string{seed.DemoAccountID}) {
		t.Errorf("catalog callers = %v, want the demo account once", callers)
	}
	created, err := client.CreateProfile(demo, &profilesv1.CreateProfileRequest{Name: "Guest", MaturityLevel: "teen"})
	if err != nil {
		t.Fatalf("CreateProfile: %v", err)
	}

	// The stream holds the seed (4 profiles, 6 My List titles) and the new
	// profile, each once.
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
	cons, err := js.OrderedConsumer(rctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"marquee.profiles.>"}})
	if err != nil {
		t.Fatalf("OrderedConsumer: %v", err)
	}
	counts := map[string]int{}
	var last profiles.EventData
	for n := 0; n < 11; n++ {
		msg, err := cons.Next(jetstream.FetchContext(rctx))
		if err != nil {
			t.Fatalf("after %d events (%v): %v", n, counts, err)
		}
		counts[msg.Subject()]++
		last = profiles.EventData{}
		if err := json.Unmarshal(msg.Data(), &last); err != nil {
			t.Fatalf("event data %s: %v", msg.Data(), err)
		}
		if msg.Headers().Get(events.HeaderType) != msg.Subject() || msg.Headers().Get(events.HeaderSubject) != last.ProfileID {
			t.Errorf("event headers = %v", msg.Headers())
		}
	}
	if counts[profiles.SubjectProfileCreated] != 5 || counts[profiles.SubjectMyListAdded] != 6 {
		t.Errorf("events = %v, want 5 profile_created and 6 my_list_added", counts)
	}
	if last != (profiles.EventData{AccountID: seed.DemoAccountID, ProfileID: created.GetProfile().GetId(), Maturity: "teen", Language: "en"}) {
		t.Errorf("last event = %+v, want the new profile", last)
	}
	if msg, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Errorf("unexpected extra event %s %s", msg.Subject(), msg.Data())
	}
}
