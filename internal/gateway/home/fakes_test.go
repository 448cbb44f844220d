package home_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

const (
	accountA = "acct-a"
	accountB = "acct-b"
)

// The catalog of the fakes. m-gone is outside its availability window.
var catalogTitles = []*catalogv1.Title{
	{Id: "m-kids1", Name: "Kite Day", Kind: "movie", Year: 2019, MaturityRating: "G", Genres: []string{"family"}, Available: true, ArtworkUrl: "/api/v1/titles/m-kids1/artwork"},
	{Id: "m-kids2", Name: "Pratfall", Kind: "movie", Year: 2021, MaturityRating: "PG", Genres: []string{"comedy"}, Available: true},
	{Id: "m-kids3", Name: "Puddles", Kind: "movie", Year: 2020, MaturityRating: "TV-Y", Genres: []string{"family"}, Available: true},
	{Id: "m-teen", Name: "Laugh Track", Kind: "movie", Year: 2023, MaturityRating: "PG-13", Genres: []string{"comedy"}, Available: true},
	{Id: "m-adult", Name: "Cold Open", Kind: "movie", Year: 2022, MaturityRating: "R", Genres: []string{"thriller"}, Available: true},
	{Id: "s-adult", Name: "Night Shift", Kind: "series", Year: 2024, MaturityRating: "TV-MA", Genres: []string{"drama"}, Available: true},
	{Id: "m-gone", Name: "Gone Fishing", Kind: "movie", Year: 2018, MaturityRating: "G", Genres: []string{"family"}, Available: false},
}

// callers records the principals and request ids a fake saw.
type callers struct {
	mu       sync.Mutex
	accounts []string
	requests []string
}

func (c *callers) saw(ctx context.Context) (principal.Principal, bool) {
	p, ok := principal.FromContext(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.accounts = append(c.accounts, p.AccountID)
	c.requests = append(c.requests, md.Get("x-request-id")...)
	return p, ok
}

func (c *callers) seen() ([]string, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.accounts...), append([]string(nil), c.requests...)
}

// fakeCatalog serves catalogTitles. leaky ignores maturity_level, as a
// buggy catalog would.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	callers
	leaky   bool
	batches []int // sizes of the BatchGetTitles asked, under callers.mu
}

func levelOf(s string) catalogdomain.Level {
	if s == "" {
		return catalogdomain.LevelAdult
	}
	return catalogdomain.Level(s)
}

func (f *fakeCatalog) allowed(level string, t *catalogv1.Title) bool {
	return f.leaky || catalogdomain.Allows(levelOf(level), catalogdomain.Rating(t.GetMaturityRating()))
}

func (f *fakeCatalog) BatchGetTitles(ctx context.Context, req *catalogv1.BatchGetTitlesRequest) (*catalogv1.BatchGetTitlesResponse, error) {
	f.saw(ctx)
	if len(req.GetIds()) > 200 {
		return nil, rpcerr.New(codes.InvalidArgument, "INVALID_ARGUMENT", "at most 200 ids")
	}
	f.mu.Lock()
	f.batches = append(f.batches, len(req.GetIds()))
	f.mu.Unlock()
	resp := &catalogv1.BatchGetTitlesResponse{}
	for _, id := range req.GetIds() {
		if strings.HasPrefix(id, "gen-") { // generated: any number of G titles
			resp.Titles = append(resp.Titles, &catalogv1.Title{Id: id, Name: id, Kind: "movie", MaturityRating: "G", Available: true})
			continue
		}
		for _, t := range catalogTitles {
			if t.GetId() == id && f.allowed(req.GetMaturityLevel(), t) {
				resp.Titles = append(resp.Titles, t)
			}
		}
	}
	return resp, nil
}

func (f *fakeCatalog) ListTitles(ctx context.Context, req *catalogv1.ListTitlesRequest) (*catalogv1.ListTitlesResponse, error) {
	f.saw(ctx)
	resp := &catalogv1.ListTitlesResponse{}
	for _, t := range catalogTitles {
		if len(resp.Titles) == int(req.GetPageSize()) {
			break
		}
		if (req.GetGenre() == "" || t.GetGenres()[0] == req.GetGenre()) && f.allowed(req.GetMaturityLevel(), t) {
			resp.Titles = append(resp.Titles, t)
		}
	}
	return resp, nil
}

func (f *fakeCatalog) ListGenres(ctx context.Context, _ *catalogv1.ListGenresRequest) (*catalogv1.ListGenresResponse, error) {
	f.saw(ctx)
	return &catalogv1.ListGenresResponse{Genres: []*catalogv1.Genre{
		{Id: "comedy", Name: "Comedy", TitleCount: 2},
		{Id: "family", Name: "Family", TitleCount: 3},
		{Id: "thriller", Name: "Thriller", TitleCount: 1},
		{Id: "horror", Name: "Horror", TitleCount: 0},
	}}, nil
}

// fakeProfiles owns the profiles: id → {account, level}, and My Lists.
type fakeProfiles struct {
	profilesv1.UnimplementedProfilesServiceServer
	callers
}

var profiles = map[string][2]string{
	"p-adult": {accountA, "adult"},
	"p-kids":  {accountA, "kids"},
	"p-teen":  {accountA, "teen"},
	"p-b":     {accountB, "adult"},
}

var myLists = map[string][]string{
	"p-adult": {"m-kids1", "m-adult"},
	"p-kids":  {"m-adult", "m-kids3", "s-adult"},
	"p-teen":  {"m-kids2"},
}

func (f *fakeProfiles) own(ctx context.Context, id string) error {
	p, ok := f.saw(ctx)
	if !ok {
		return rpcerr.New(codes.Unauthenticated, "UNAUTHENTICATED", "sign in first")
	}
	if pr, ok := profiles[id]; !ok || pr[0] != p.AccountID {
		return rpcerr.New(codes.NotFound, "NOT_FOUND", "no such profile")
	}
	return nil
}

func (f *fakeProfiles) GetProfile(ctx context.Context, req *profilesv1.GetProfileRequest) (*profilesv1.GetProfileResponse, error) {
	if err := f.own(ctx, req.GetId()); err != nil {
		return nil, err
	}
	pr := profiles[req.GetId()]
	return &profilesv1.GetProfileResponse{Profile: &profilesv1.Profile{Id: req.GetId(), AccountId: pr[0], MaturityLevel: pr[1]}}, nil
}

func (f *fakeProfiles) ListMyList(ctx context.Context, req *profilesv1.ListMyListRequest) (*profilesv1.ListMyListResponse, error) {
	if err := f.own(ctx, req.GetProfileId()); err != nil {
		return nil, err
	}
	resp := &profilesv1.ListMyListResponse{}
	for _, id := range myLists[req.GetProfileId()] {
		resp.Items = append(resp.Items, &profilesv1.MyListItem{TitleId: id})
	}
	return resp, nil
}

// fakePlayback answers continue watching; for p-kids it leaks an R title.
type fakePlayback struct {
	playbackv1.UnimplementedPlaybackServiceServer
	callers
}

var continueWatching = map[string][]*playbackv1.ContinueWatchingItem{
	"p-adult": {
		{TitleId: "m-teen", PositionSeconds: 120, DurationSeconds: 600},
		{TitleId: "s-adult", EpisodeId: "s-adult-1-2", PositionSeconds: 30, DurationSeconds: 1800},
	},
	"p-kids": {
		{TitleId: "m-adult", PositionSeconds: 10, DurationSeconds: 600},
		{TitleId: "m-kids1", PositionSeconds: 0, DurationSeconds: 900},
	},
	"p-teen": {{TitleId: "m-teen", PositionSeconds: 50, DurationSeconds: 600}},
}

func (f *fakePlayback) ContinueWatching(ctx context.Context, req *playbackv1.ContinueWatchingRequest) (*playbackv1.ContinueWatchingResponse, error) {
	if _, ok := f.saw(ctx); !ok {
		return nil, rpcerr.New(codes.Unauthenticated, "UNAUTHENTICATED", "sign in first")
	}
	return &playbackv1.ContinueWatchingResponse{Items: continueWatching[req.GetProfileId()]}, nil
}

// fakeRecommendations answers fixed v2 rows that ignore maturity (so the
// page must filter), after delay.
type fakeRecommendations struct {
	recommendationsv1.UnimplementedRecommendationsServiceServer
	callers
	delay atomic.Int64 // nanoseconds
	empty atomic.Bool
	many  atomic.Bool // answer 11 rows of 50 generated titles
	calls atomic.Int32
}

func rt(id string) *recommendationsv1.RecommendedTitle {
	for _, t := range catalogTitles {
		if t.GetId() == id {
			return &recommendationsv1.RecommendedTitle{Id: id, Name: t.GetName(), Kind: t.GetKind(), MaturityRating: t.GetMaturityRating(), Genres: t.GetGenres(), Year: t.GetYear()}
		}
	}
	return &recommendationsv1.RecommendedTitle{Id: id}
}

func recRow(id, title, reason, seed string, ids ...string) *recommendationsv1.Row {
	r := &recommendationsv1.Row{Id: id, Title: title, Reason: reason, SeedTitleId: seed}
	for _, i := range ids {
		r.Titles = append(r.Titles, rt(i))
	}
	return r
}

func (f *fakeRecommendations) GetRecommendations(ctx context.Context, req *recommendationsv1.GetRecommendationsRequest) (*recommendationsv1.GetRecommendationsResponse, error) {
	f.calls.Add(1)
	f.saw(ctx)
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp := &recommendationsv1.GetRecommendationsResponse{ProfileId: req.GetProfileId(), Version: "v2"}
	if f.empty.Load() {
		return resp, nil
	}
	if f.many.Load() {
		for i := range req.GetMaxRows() {
			r := &recommendationsv1.Row{Id: fmt.Sprintf("genre:g%d", i), Title: "Many", Reason: "popular_in_genre"}
			for j := range req.GetMaxTitlesPerRow() {
				r.Titles = append(r.Titles, &recommendationsv1.RecommendedTitle{Id: fmt.Sprintf("gen-%d-%d", i, j), MaturityRating: "G"})
			}
			resp.Rows = append(resp.Rows, r)
		}
		return resp, nil
	}
	resp.Rows = []*recommendationsv1.Row{
		recRow("top-picks", "Top picks for you", "top_picks", "", "m-kids2", "m-adult", "m-teen"),
		recRow("because-you-watched:m-kids1", "Because you watched Kite Day", "because_you_watched", "m-kids1", "m-kids3", "m-adult"),
		recRow("because-you-watched:m-adult", "Because you watched Cold Open", "because_you_watched", "m-adult", "m-teen"),
		recRow("trending", "Trending now", "trending", "", "m-adult", "m-kids1", "m-gone"),
		recRow("genre:comedy", "Popular in Comedy", "popular_in_genre", "", "m-kids2", "m-teen"),
		recRow("genre:family", "Popular in Family", "popular_in_genre", "", "m-kids1", "m-kids3"),
	}
	return resp, nil
}

// serve runs a gRPC server on 127.0.0.1:0 until the test ends or stop.
func serve(t testing.TB, register func(*grpc.Server)) (addr string, stop func()) {
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

// dialer is a hand-written peers dialer: one connection per name.
type dialer map[string]*grpc.ClientConn

func (d dialer) Conn(name string) (*grpc.ClientConn, error) {
	if c, ok := d[name]; ok {
		return c, nil
	}
	return nil, rpcerr.New(codes.Unavailable, "UNAVAILABLE", "no peer "+name)
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
