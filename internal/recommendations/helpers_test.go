package recommendations_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/recommendations"
)

// now is the test clock.
var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

const (
	accountA = "acct-a"
	accountB = "acct-b"
)

// fakeProfiles is a hand-written profiles service: profile id → account
// and maturity level, answered only to the owning account. It records the
// callers it saw.
type fakeProfiles struct {
	profilesv1.UnimplementedProfilesServiceServer
	mu       sync.Mutex
	profiles map[string][2]string // id → {account, level}
	calls    int
}

func newFakeProfiles() *fakeProfiles {
	return &fakeProfiles{profiles: map[string][2]string{
		"p-adult": {accountA, "adult"},
		"p-teen":  {accountA, "teen"},
		"p-kids":  {accountA, "kids"},
		"p-new":   {accountA, "adult"},
		"p-other": {accountB, "adult"},
		"p-x":     {accountA, "adult"},
		"p-y":     {accountA, "adult"},
		"p-z":     {accountA, "adult"},
	}}
}

func (f *fakeProfiles) GetProfile(ctx context.Context, req *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	p, ok := f.profiles[req.GetId()]
	if !ok || p[0] != caller.AccountID {
		return nil, rpcerr.New(codes.NotFound, "NOT_FOUND", "no such profile")
	}
	return &profilesv1.GetProfileResponse{Profile: &profilesv1.Profile{Id: req.GetId(), AccountId: p[0], MaturityLevel: p[1]}}, nil
}

// serveGRPC serves what register registers on 127.0.0.1:0 until the test
// ends (or stop is called) and returns the address.
func serveGRPC(t *testing.T, register func(*grpc.Server)) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	register(gs)
	done := make(chan error, 1)
	go func() { done <- gs.Serve(lis) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			gs.Stop()
			if err := <-done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// dialer returns a peers dialer whose "profiles" is addr.
func dialer(t *testing.T, addr string) *peers.Dialer {
	t.Helper()
	d := peers.NewDialer(peers.Table{"profiles": {addr}})
	t.Cleanup(func() { d.Close() })
	return d
}

// client dials the recommendations server at addr.
func client(t *testing.T, addr string) recommendationsv1.RecommendationsServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return recommendationsv1.NewRecommendationsServiceClient(conn)
}

// as returns a context calling as a viewer of account.
func as(t *testing.T, account string) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return principal.NewOutgoingContext(ctx, principal.Principal{AccountID: account, Roles: []string{principal.RoleViewer}})
}

// title builds a catalog title as the catalog publishes it.
func title(id, name, rating string, year int32, genres ...string) *catalogv1.Title {
	return &catalogv1.Title{
		Id: id, Name: name, Kind: "movie", MaturityRating: rating, Year: year, Genres: genres,
		ArtworkUrl: "/api/v1/titles/" + id + "/artwork", Available: true,
		AvailableFrom: timestamppb.New(now.Add(-365 * 24 * time.Hour)),
	}
}

// demoTitles is a small catalog: every row test uses it.
func demoTitles() []*catalogv1.Title {
	withdrawn := title("t-withdrawn", "Gone Fishing", "G", 2020, "family")
	withdrawn.AvailableUntil = timestamppb.New(now.Add(-time.Hour))
	series := title("t-series", "Harbour Lights", "TV-14", 2024, "drama")
	series.Kind = "series"
	series.Seasons = []*catalogv1.Season{
		{Number: 1, Episodes: []*catalogv1.Episode{{Id: "t-series-1-1", Number: 1}, {Id: "t-series-1-2", Number: 2}}},
		{Number: 2, Episodes: []*catalogv1.Episode{{Id: "t-series-2-1", Number: 1}}},
	}
	return []*catalogv1.Title{
		title("t-comedy-1", "Laugh Track", "PG", 2023, "comedy"),
		title("t-comedy-2", "Pratfall", "G", 2021, "comedy", "family"),
		title("t-thriller", "Cold Open", "R", 2022, "thriller"),
		title("t-family", "Kite Day", "G", 2019, "family"),
		title("t-drama", "Long Winter", "PG-13", 2018, "drama"),
		withdrawn,
		series,
	}
}

// titleEvent is a title_upserted event at at.
func titleEvent(t *testing.T, ti *catalogv1.Title, at time.Time) events.Event {
	t.Helper()
	ev, err := events.NewEvent(recommendations.TitleUpsertedSubject, ti.GetId(), ti)
	if err != nil {
		t.Fatal(err)
	}
	ev.Time = at
	return ev
}

// viewEvent is a playback event with data at at.
func viewEvent(t *testing.T, subject string, data map[string]any, at time.Time) events.Event {
	t.Helper()
	ev, err := events.NewEvent(subject, "", data)
	if err != nil {
		t.Fatal(err)
	}
	ev.Time = at
	return ev
}

// watch is a started then completed (or progress) pair for profile.
func watch(t *testing.T, profile, titleID string, at time.Time, finish bool) []events.Event {
	data := map[string]any{"account_id": accountA, "profile_id": profile, "title_id": titleID, "position_seconds": 0, "duration_seconds": 1000}
	evs := []events.Event{viewEvent(t, recommendations.PlaybackStartedSubject, data, at)}
	end := map[string]any{"account_id": accountA, "profile_id": profile, "title_id": titleID, "position_seconds": 300, "duration_seconds": 1000}
	subject := recommendations.PlaybackProgressSubject
	if finish {
		end["position_seconds"] = 1000
		subject = recommendations.PlaybackCompletedSubject
	}
	return append(evs, viewEvent(t, subject, end, at.Add(10*time.Minute)))
}

// apply runs each event's handler in its own transaction, as the consumer
// does.
func apply(t *testing.T, svc *recommendations.Service, db *storage.DB, evs ...events.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		handle := svc.HandleViewingEvent
		if ev.Subject == recommendations.TitleUpsertedSubject {
			handle = svc.HandleCatalogEvent
		}
		if err := db.InTx(ctx, func(tx *storage.Tx) error { return handle(ctx, tx, ev) }); err != nil {
			t.Fatalf("handle %s: %v", ev.Subject, err)
		}
	}
}
