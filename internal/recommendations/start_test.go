package recommendations_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations"
)

// TestEndToEnd runs the service as a program runs it (Start on an App)
// against an embedded NATS: events published through another service's
// outbox reach the projection, and v2's rows change once a profile
// watches something.
func TestEndToEnd(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	fp := newFakeProfiles()
	paddr, _ := serveGRPC(t, func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, fp) })

	// The producer: a database with an outbox and its relay, standing for
	// the catalog and playback services.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	producer := storagetest.OpenSQLite(t, "producer", storage.Migrations{})
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "producer", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	relay := events.NewRelay(producer, js, nil)
	goRun(t, "relay", relay.Run)
	publish := func(evs ...events.Event) {
		t.Helper()
		err := producer.InTx(ctx, func(tx *storage.Tx) error {
			for _, ev := range evs {
				if err := events.Publish(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		relay.Notify()
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(app.Config{Program: "recommendations", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, logger)
	if err != nil {
		t.Fatal(err)
	}
	env := &service.Env{
		Name: "recommendations", Version: "v2", App: a,
		Storage: storage.Config{Service: "recommendations", DataDir: t.TempDir()},
		NATSURL: srv.ClientURL(), Peers: dialer(t, paddr),
	}
	if err := recommendations.Start(ctx, env); err != nil {
		t.Fatalf("Start: %v", err)
	}
	goRun(t, "app", a.Run)
	select {
	case <-a.Started():
	case <-ctx.Done():
		t.Fatal("app did not start")
	}
	grpcAddr, _, adminAddr := a.Addrs()
	c := client(t, grpcAddr.String())

	// The catalog, and others' viewing: comedy-1 and comedy-2 go together.
	at := time.Now().UTC().Add(-time.Hour)
	var evs []events.Event
	for _, ti := range demoTitles() {
		ti.AvailableUntil = nil
		evs = append(evs, titleEvent(t, ti, at))
	}
	for _, p := range []string{"p-x", "p-y"} {
		for _, id := range []string{"t-comedy-1", "t-comedy-2"} {
			at = at.Add(time.Second)
			evs = append(evs, viewEvent(t, recommendations.PlaybackProgressSubject,
				map[string]any{"account_id": accountA, "profile_id": p, "title_id": id, "position_seconds": 600, "duration_seconds": 1200}, at))
		}
	}
	publish(evs...)

	get := func() *recommendationsv1.GetRecommendationsResponse {
		resp, err := c.GetRecommendations(as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult"})
		if err != nil {
			t.Fatalf("GetRecommendations: %v", err)
		}
		return resp
	}
	eventually(t, 20*time.Second, "cold-start rows from the projection", func() (bool, string) {
		resp := get()
		r := row(resp, "trending")
		return r != nil && r.GetReason() == "cold_start" && slices.Equal(titleIDs(r), []string{"t-comedy-1", "t-comedy-2"}) && resp.GetVersion() == "v2",
			"rows " + strings.Join(rowIDs(resp), ",")
	})

	// p-adult watches comedy-1: v2 now recommends comedy-2 for it.
	publish(viewEvent(t, recommendations.PlaybackProgressSubject,
		map[string]any{"account_id": accountA, "profile_id": "p-adult", "title_id": "t-comedy-1", "position_seconds": 60, "duration_seconds": 1200}, time.Now().UTC()))
	eventually(t, 20*time.Second, "personal rows after watching", func() (bool, string) {
		resp := get()
		if len(resp.GetRows()) == 0 {
			return false, "no rows"
		}
		top := resp.GetRows()[0]
		return top.GetId() == "top-picks" && top.GetReason() == "top_picks" && slices.Equal(titleIDs(top), []string{"t-comedy-2"}),
			"rows " + strings.Join(rowIDs(resp), ",") + " first " + strings.Join(titleIDs(top), ",")
	})

	// The consumer lag is on /metrics.
	resp, err := http.Get("http://" + adminAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`marquee_events_consumer_lag{consumer="recommendations-playback",state="pending"} 0`,
		`marquee_events_consumer_lag{consumer="recommendations-catalog",state="ack_pending"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestStartRefusesUnknownVersion(t *testing.T) {
	a, err := app.New(app.Config{Program: "recommendations", GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	env := &service.Env{Name: "recommendations", Version: "v3", App: a, Storage: storage.Config{Service: "recommendations", DataDir: t.TempDir()}}
	if err := recommendations.Start(context.Background(), env); err == nil || !strings.Contains(err.Error(), "v1 or v2") {
		t.Errorf("Start(version v3) = %v, want an error naming v1 and v2", err)
	}
}
