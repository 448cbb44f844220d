package recommendations_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// fixture is a service of one version over a fresh SQLite projection, on a
// gRPC server, with the fake profiles service behind a peers dialer.
type fixture struct {
	svc          *recommendations.Service
	db           *storage.DB
	client       recommendationsv1.RecommendationsServiceClient
	profiles     *fakeProfiles
	stopProfiles func()
}

func newFixture(t *testing.T, db *storage.DB, version domain.Version) *fixture {
	t.Helper()
	fp := newFakeProfiles()
	paddr, stopProfiles := serveGRPC(t, func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, fp) })
	conn, err := dialer(t, paddr).Conn("profiles")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := recommendations.NewService(context.Background(), db, recommendations.Options{
		Version:     version,
		Profiles:    recommendations.NewProfilesClient(conn),
		Now:         func() time.Time { return now },
		SnapshotTTL: -1,
	})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	addr, _ := serveGRPC(t, func(s *grpc.Server) { svc.Register(s) })
	return &fixture{svc: svc, db: db, client: client(t, addr), profiles: fp, stopProfiles: stopProfiles}
}

// seed applies the demo catalog and a viewing history:
//
//	p-x watched comedy-1, comedy-2, thriller; p-y comedy-1, comedy-2;
//	p-z comedy-2, family. Trending (all now): comedy-2 3, comedy-1 2,
//	thriller 1, family 1.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	for _, ti := range demoTitles() {
		apply(t, f.svc, f.db, titleEvent(t, ti, now.Add(-time.Hour)))
	}
	at := now.Add(-2 * time.Hour)
	for _, w := range []struct{ profile, title string }{
		{"p-x", "t-comedy-1"}, {"p-x", "t-comedy-2"}, {"p-x", "t-thriller"},
		{"p-y", "t-comedy-1"}, {"p-y", "t-comedy-2"},
		{"p-z", "t-comedy-2"}, {"p-z", "t-family"},
		{"p-z", "t-withdrawn"},
	} {
		at = at.Add(time.Minute)
		apply(t, f.svc, f.db, watch(t, w.profile, w.title, at, true)...)
	}
}

func (f *fixture) get(t *testing.T, account, profile string) *recommendationsv1.GetRecommendationsResponse {
	t.Helper()
	resp, err := f.client.GetRecommendations(as(t, account), &recommendationsv1.GetRecommendationsRequest{ProfileId: profile})
	if err != nil {
		t.Fatalf("GetRecommendations(%s as %s): %v", profile, account, err)
	}
	return resp
}

func rowIDs(resp *recommendationsv1.GetRecommendationsResponse) []string {
	var out []string
	for _, r := range resp.GetRows() {
		out = append(out, r.GetId())
	}
	return out
}

func titleIDs(r *recommendationsv1.Row) []string {
	var out []string
	for _, t := range r.GetTitles() {
		out = append(out, t.GetId())
	}
	return out
}

func row(resp *recommendationsv1.GetRecommendationsResponse, id string) *recommendationsv1.Row {
	for _, r := range resp.GetRows() {
		if r.GetId() == id {
			return r
		}
	}
	return nil
}

// checkVisible fails on a title the level may not see or that is not
// available.
func checkVisible(t *testing.T, resp *recommendationsv1.GetRecommendationsResponse, level catalogdomain.Level) {
	t.Helper()
	for _, r := range resp.GetRows() {
		for _, ti := range r.GetTitles() {
			if !catalogdomain.Allows(level, catalogdomain.Rating(ti.GetMaturityRating())) {
				t.Errorf("%s profile: row %s holds %s rated %s", level, r.GetId(), ti.GetId(), ti.GetMaturityRating())
			}
			if ti.GetId() == "t-withdrawn" {
				t.Errorf("%s profile: row %s holds the withdrawn title", level, r.GetId())
			}
		}
	}
}

func TestV1Rows(t *testing.T) {
	f := newFixture(t, storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations), domain.V1)
	f.seed(t)
	resp := f.get(t, accountA, "p-adult")
	if resp.GetVersion() != "v1" || resp.GetProfileId() != "p-adult" || !resp.GetGeneratedAt().AsTime().Equal(now) {
		t.Errorf("response header = %q %q %v", resp.GetVersion(), resp.GetProfileId(), resp.GetGeneratedAt().AsTime())
	}
	if got, want := rowIDs(resp), []string{"trending", "genre:comedy", "genre:family", "genre:thriller", "genre:drama"}; !slices.Equal(got, want) {
		t.Fatalf("v1 rows = %v, want %v", got, want)
	}
	if got, want := titleIDs(row(resp, "trending")), []string{"t-comedy-2", "t-comedy-1", "t-family", "t-thriller"}; !slices.Equal(got, want) {
		t.Errorf("trending = %v, want %v", got, want)
	}
	comedy := row(resp, "genre:comedy")
	if got, want := titleIDs(comedy), []string{"t-comedy-2", "t-comedy-1"}; !slices.Equal(got, want) {
		t.Errorf("popular in comedy = %v, want %v", got, want)
	}
	if comedy.GetTitle() != "Popular in Comedy" || comedy.GetReason() != "popular_in_genre" {
		t.Errorf("comedy row = %q %q", comedy.GetTitle(), comedy.GetReason())
	}
	c2 := comedy.GetTitles()[0]
	if c2.GetName() != "Pratfall" || c2.GetMaturityRating() != "G" || c2.GetYear() != 2021 || c2.GetArtworkUrl() == "" || !slices.Equal(c2.GetGenres(), []string{"comedy", "family"}) {
		t.Errorf("title card = %+v", c2)
	}
	checkVisible(t, resp, catalogdomain.LevelAdult)

	kids := f.get(t, accountA, "p-kids")
	checkVisible(t, kids, catalogdomain.LevelKids)
	if got, want := rowIDs(kids), []string{"trending", "genre:comedy", "genre:family"}; !slices.Equal(got, want) {
		t.Errorf("kids v1 rows = %v, want %v", got, want)
	}
	teen := f.get(t, accountA, "p-teen")
	checkVisible(t, teen, catalogdomain.LevelTeen)
	if r := row(teen, "genre:drama"); r == nil || !slices.Contains(titleIDs(r), "t-series") {
		t.Errorf("teen profile misses the TV-14 series in drama: %v", rowIDs(teen))
	}

	// Limits.
	resp, err := f.client.GetRecommendations(as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult", MaxRows: 2, MaxTitlesPerRow: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRows()) != 2 || len(resp.GetRows()[0].GetTitles()) != 1 {
		t.Errorf("max_rows 2, max_titles_per_row 1 = %v", resp.GetRows())
	}
}

func TestV2Rows(t *testing.T) {
	f := newFixture(t, storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations), domain.V2)
	f.seed(t)

	// A new profile: v1's rows, saying so.
	cold := f.get(t, accountA, "p-new")
	if cold.GetVersion() != "v2" || len(cold.GetRows()) == 0 {
		t.Fatalf("v2 cold start = %v", cold)
	}
	for _, r := range cold.GetRows() {
		if r.GetReason() != "cold_start" {
			t.Errorf("cold start row %s reason = %q, want cold_start", r.GetId(), r.GetReason())
		}
	}
	if got, want := rowIDs(cold)[0], "trending"; got != want {
		t.Errorf("cold start first row = %s, want %s", got, want)
	}

	// p-adult watches comedy-1 (not finished): the profiles who watched it
	// also watched comedy-2 (2 of 2) and the thriller (1).
	apply(t, f.svc, f.db, watch(t, "p-adult", "t-comedy-1", now.Add(-time.Minute), false)...)
	warm := f.get(t, accountA, "p-adult")
	if got := rowIDs(warm); len(got) < 2 || got[0] != "top-picks" {
		t.Fatalf("v2 rows after watching = %v, want top-picks first", got)
	}
	top := warm.GetRows()[0]
	if got, want := titleIDs(top), []string{"t-comedy-2", "t-thriller"}; !slices.Equal(got, want) {
		t.Errorf("top picks = %v, want %v", got, want)
	}
	if top.GetReason() != "top_picks" {
		t.Errorf("top picks reason = %q", top.GetReason())
	}
	for _, r := range warm.GetRows() {
		if r.GetReason() == "cold_start" {
			t.Errorf("row %s is cold_start for a profile with history", r.GetId())
		}
	}

	// A kids profile that watched comedy-1 is never offered the thriller.
	apply(t, f.svc, f.db, watch(t, "p-kids", "t-comedy-1", now.Add(-time.Minute), false)...)
	kids := f.get(t, accountA, "p-kids")
	checkVisible(t, kids, catalogdomain.LevelKids)
	if got := titleIDs(kids.GetRows()[0]); !slices.Equal(got, []string{"t-comedy-2"}) {
		t.Errorf("kids top picks = %v, want [t-comedy-2]", got)
	}

	// Finishing comedy-2 takes it out of every row.
	apply(t, f.svc, f.db, watch(t, "p-adult", "t-comedy-2", now, true)...)
	done := f.get(t, accountA, "p-adult")
	for _, r := range done.GetRows() {
		if slices.Contains(titleIDs(r), "t-comedy-2") {
			t.Errorf("row %s = %v holds t-comedy-2, which the profile finished", r.GetId(), titleIDs(r))
		}
	}
	var because []string
	for _, r := range done.GetRows() {
		if r.GetReason() == "because_you_watched" {
			because = append(because, r.GetSeedTitleId())
			if !strings.HasPrefix(r.GetTitle(), "Because you watched ") {
				t.Errorf("row %s title %q", r.GetId(), r.GetTitle())
			}
		}
	}
	if !slices.Contains(because, "t-comedy-2") {
		t.Errorf("because-you-watched seeds = %v, want t-comedy-2 among them", because)
	}
}

func TestGetRecommendationsErrors(t *testing.T) {
	f := newFixture(t, storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations), domain.V1)
	tests := []struct {
		name   string
		ctx    context.Context
		req    *recommendationsv1.GetRecommendationsRequest
		code   codes.Code
		reason string
	}{
		{"no caller", context.Background(), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult"}, codes.Unauthenticated, "UNAUTHENTICATED"},
		{"another account's profile", as(t, accountB), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult"}, codes.NotFound, "NOT_FOUND"},
		{"unknown profile", as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-nobody"}, codes.NotFound, "NOT_FOUND"},
		{"no profile id", as(t, accountA), &recommendationsv1.GetRecommendationsRequest{}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"malformed profile id", as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "a/b"}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"too many rows", as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult", MaxRows: 21}, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"too many titles", as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult", MaxTitlesPerRow: 51}, codes.InvalidArgument, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		_, err := f.client.GetRecommendations(tt.ctx, tt.req)
		if status.Code(err) != tt.code || rpcerr.Reason(err) != tt.reason {
			t.Errorf("%s: GetRecommendations = %v, want %s %s", tt.name, err, tt.code, tt.reason)
		}
	}
	if f.profiles.calls == 0 {
		t.Error("the profiles service was never asked")
	}
	f.stopProfiles()
	_, err := f.client.GetRecommendations(as(t, accountA), &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult"})
	if status.Code(err) != codes.Unavailable || rpcerr.Reason(err) != "UNAVAILABLE" {
		t.Errorf("with profiles down: GetRecommendations = %v, want Unavailable", err)
	}
}

func TestEmptyProjectionAnswersNoRows(t *testing.T) {
	f := newFixture(t, storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations), domain.V2)
	resp := f.get(t, accountA, "p-adult")
	if len(resp.GetRows()) != 0 || resp.GetVersion() != "v2" {
		t.Errorf("empty projection = %v, want no rows", resp)
	}
}

// TestSnapshotIsReusedWithinTTL: the catalog projection is reloaded at
// most once per TTL, except while it is still empty.
func TestSnapshotIsReusedWithinTTL(t *testing.T) {
	db := storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations)
	clock := now
	levels := profilesFunc(func(context.Context, string) (catalogdomain.Level, error) { return catalogdomain.LevelAdult, nil })
	svc, err := recommendations.NewService(context.Background(), db, recommendations.Options{
		Version: domain.V1, Profiles: levels, Now: func() time.Time { return clock }, SnapshotTTL: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := metadataCtx(accountA)
	get := func() []string {
		resp, err := svc.Server().GetRecommendations(ctx, &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-adult"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range resp.GetRows() {
			ids = append(ids, titleIDs(r)...)
		}
		slices.Sort(ids)
		return slices.Compact(ids)
	}
	if got := get(); len(got) != 0 {
		t.Fatalf("empty projection answers %v", got)
	}
	apply(t, svc, db, titleEvent(t, title("t-1", "One", "G", 2020, "comedy"), now))
	if got := get(); !slices.Equal(got, []string{"t-1"}) {
		t.Fatalf("after the first title = %v; an empty snapshot must not be reused", got)
	}
	apply(t, svc, db, titleEvent(t, title("t-2", "Two", "G", 2020, "comedy"), now))
	if got := get(); !slices.Equal(got, []string{"t-1"}) {
		t.Errorf("within the TTL = %v, want the cached [t-1]", got)
	}
	clock = clock.Add(time.Minute)
	if got := get(); !slices.Equal(got, []string{"t-1", "t-2"}) {
		t.Errorf("after the TTL = %v, want [t-1 t-2]", got)
	}
}
