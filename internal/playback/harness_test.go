package playback_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/playback"
)

// t0 is the start of the test clock.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeCatalog is a hand-written catalog: GetTitle over a fixed set.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	titles map[string]*catalogv1.Title
	down   atomic.Bool
}

func (f *fakeCatalog) GetTitle(_ context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	if f.down.Load() {
		return nil, status.Error(codes.Unavailable, "catalog is down")
	}
	t, ok := f.titles[req.GetId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such title")
	}
	return &catalogv1.GetTitleResponse{Title: t}, nil
}

func movie(id, rating string, rentable, available bool, asset string, genres ...string) *catalogv1.Title {
	return &catalogv1.Title{Id: id, Name: "Movie " + id, Kind: "movie", MaturityRating: rating, DurationSeconds: 6000,
		Rentable: rentable, Available: available, MediaAssetId: asset, Genres: genres}
}

// The test catalog.
var testTitles = map[string]*catalogv1.Title{
	"t-pg13":     movie("t-pg13", "PG-13", true, true, "demo-1", "drama", "sci-fi"),
	"t-g":        movie("t-g", "G", false, true, "demo-2", "family"),
	"t-r":        movie("t-r", "R", true, true, "demo-3", "horror"),
	"t-0007":     movie("t-0007", "PG", true, false, "demo-1", "comedy"), // withdrawn
	"t-norent":   movie("t-norent", "PG", false, true, "demo-1", "comedy"),
	"t-badmedia": movie("t-badmedia", "PG", true, true, "demo-9", "comedy"),
	"t-series": {Id: "t-series", Name: "Series", Kind: "series", MaturityRating: "TV-PG", DurationSeconds: 1500,
		Available: true, Genres: []string{"comedy"}, Seasons: []*catalogv1.Season{
			{Number: 1, Episodes: []*catalogv1.Episode{
				{Id: "t-series-s01e01", Number: 1, DurationSeconds: 1200, MediaAssetId: "demo-2"},
				{Id: "t-series-s01e02", Number: 2, DurationSeconds: 1500, MediaAssetId: "demo-3"},
			}},
			{Number: 2, Episodes: []*catalogv1.Episode{
				{Id: "t-series-s02e01", Number: 1, DurationSeconds: 1800, MediaAssetId: "demo-1"},
			}},
		}},
}

// fakeProfiles is a hand-written profiles service: it answers only the
// caller's own profiles, as the real one does, so a missing forwarded
// caller shows as NotFound.
type fakeProfiles struct {
	profilesv1.UnimplementedProfilesServiceServer
	profiles map[string]*profilesv1.Profile
	calls    atomic.Int64
}

func (f *fakeProfiles) GetProfile(ctx context.Context, req *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	f.calls.Add(1)
	p, ok := principal.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no caller")
	}
	pr, found := f.profiles[req.GetId()]
	if !found || pr.GetAccountId() != p.AccountID {
		return nil, status.Error(codes.NotFound, "no such profile")
	}
	return &profilesv1.GetProfileResponse{Profile: pr}, nil
}

// Accounts and profiles of the tests.
const (
	acc1 = "acc-1"
	acc2 = "acc-2"
)

var testProfiles = map[string]*profilesv1.Profile{
	"p-adult":  {Id: "p-adult", AccountId: acc1, MaturityLevel: "adult"},
	"p-teen":   {Id: "p-teen", AccountId: acc1, MaturityLevel: "teen"},
	"p-kids":   {Id: "p-kids", AccountId: acc1, MaturityLevel: "kids"},
	"p-adult2": {Id: "p-adult2", AccountId: acc1, MaturityLevel: "adult"},
	"p-other":  {Id: "p-other", AccountId: acc2, MaturityLevel: "adult"},
}

// env is a running playback service with its fakes.
type env struct {
	t        testing.TB
	db       *storage.DB
	svc      *playback.Service
	client   playbackv1.PlaybackServiceClient
	clock    *clock
	catalog  *fakeCatalog
	profiles *fakeProfiles
	media    *httptest.Server
}

// serveGRPC serves register on 127.0.0.1:0 and returns a client
// connection to it; both close when the test ends.
func serveGRPC(t testing.TB, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.GracefulStop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: t0}, catalog: &fakeCatalog{titles: testTitles}, profiles: &fakeProfiles{profiles: testProfiles}}
	catalogConn := serveGRPC(t, func(s *grpc.Server) { catalogv1.RegisterCatalogServiceServer(s, e.catalog) })
	profilesConn := serveGRPC(t, func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, e.profiles) })
	e.db = storagetest.OpenSQLite(t, "playback", playback.Migrations)
	svc, err := playback.NewService(context.Background(), e.db, playback.Options{
		Catalog: catalogConn, Profiles: profilesConn, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	e.svc = svc
	e.client = playbackv1.NewPlaybackServiceClient(serveGRPC(t, func(s *grpc.Server) { svc.Register(s) }))
	e.media = httptest.NewServer(svc.MediaHandler())
	t.Cleanup(e.media.Close)
	return e
}

// as returns a context calling as account.
func as(account string) context.Context {
	return principal.NewOutgoingContext(context.Background(), principal.Principal{AccountID: account, Roles: []string{principal.RoleViewer}})
}

// wantCode checks err is a status with code and product reason.
func wantCode(t *testing.T, what string, err error, code codes.Code, reason string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || rpcerr.Reason(err) != reason {
		t.Errorf("%s: error = %v (reason %q), want %v %s", what, err, rpcerr.Reason(err), code, reason)
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() != rpcerr.Domain {
			t.Errorf("%s: ErrorInfo domain %q, want %q", what, info.GetDomain(), rpcerr.Domain)
		}
	}
}

func (e *env) start(account, profile, title string) (*playbackv1.StartPlaybackResponse, error) {
	return e.client.StartPlayback(as(account), &playbackv1.StartPlaybackRequest{ProfileId: profile, TitleId: title})
}

func (e *env) mustStart(account, profile, title string) *playbackv1.StartPlaybackResponse {
	e.t.Helper()
	resp, err := e.start(account, profile, title)
	if err != nil {
		e.t.Fatalf("StartPlayback(%s, %s): %v", profile, title, err)
	}
	return resp
}

func (e *env) report(account, session string, pos int32) (*playbackv1.ReportProgressResponse, error) {
	return e.client.ReportProgress(as(account), &playbackv1.ReportProgressRequest{SessionId: session, PositionSeconds: pos})
}

func (e *env) mustReport(account, session string, pos int32) {
	e.t.Helper()
	if _, err := e.report(account, session, pos); err != nil {
		e.t.Fatalf("ReportProgress(%s, %d): %v", session, pos, err)
	}
}

func (e *env) mustStop(account, session string, pos int32) {
	e.t.Helper()
	if _, err := e.client.StopPlayback(as(account), &playbackv1.StopPlaybackRequest{SessionId: session, PositionSeconds: pos}); err != nil {
		e.t.Fatalf("StopPlayback(%s, %d): %v", session, pos, err)
	}
}

var keySeq atomic.Int64

// grant grants account a plan or rental with a fresh key and returns the
// key.
func (e *env) grant(account, planID, titleID string) string {
	e.t.Helper()
	key := "grant-" + strconv.FormatInt(keySeq.Add(1), 10)
	_, err := e.client.GrantEntitlement(context.Background(), &playbackv1.GrantEntitlementRequest{
		IdempotencyKey: key, OrderId: "order-" + key, SagaId: "saga-" + key, AccountId: account, PlanId: planID, TitleId: titleID,
	})
	if err != nil {
		e.t.Fatalf("GrantEntitlement(%s, %s%s): %v", account, planID, titleID, err)
	}
	return key
}

// event is one row of the outbox.
type event struct {
	Subject string
	Data    playback.ViewingEvent
}

// events returns the outbox, oldest first.
func (e *env) events() []event {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), "SELECT subject, data FROM marquee_outbox ORDER BY seq")
	if err != nil {
		e.t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var ev event
		var data []byte
		if err := rows.Scan(&ev.Subject, &data); err != nil {
			e.t.Fatalf("read outbox: %v", err)
		}
		if err := json.Unmarshal(data, &ev.Data); err != nil {
			e.t.Fatalf("outbox data %s: %v", data, err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatalf("read outbox: %v", err)
	}
	return out
}

// eventsOf returns the outbox events of one session as "subject@position".
func (e *env) eventsOf(session string) []string {
	var out []string
	for _, ev := range e.events() {
		if ev.Data.SessionID == session {
			s := strings.TrimPrefix(ev.Subject, "marquee.playback.") + "@" + strconv.Itoa(ev.Data.PositionSeconds)
			if ev.Data.Final {
				s += "(" + ev.Data.EndReason + ")"
			}
			out = append(out, s)
		}
	}
	return out
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
