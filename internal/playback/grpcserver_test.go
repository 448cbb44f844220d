package playback_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	catalogdemo "github.com/marquee-tv/marquee/internal/catalog/demo"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/playback"
)

func TestStartPlaybackChecks(t *testing.T) {
	e := newEnv(t)
	// No entitlement at all.
	_, err := e.start(acc1, "p-adult", "t-pg13")
	wantCode(t, "no entitlement", err, codes.PermissionDenied, "NOT_ENTITLED")

	e.grant(acc1, "premium", "")
	for _, c := range []struct {
		name, account, profile, title string
		code                          codes.Code
		reason                        string
	}{
		{"kids profile, PG-13", acc1, "p-kids", "t-pg13", codes.PermissionDenied, "MATURITY_RESTRICTED"},
		{"teen profile, R", acc1, "p-teen", "t-r", codes.PermissionDenied, "MATURITY_RESTRICTED"},
		{"kids profile, TV-PG series", acc1, "p-kids", "t-series", codes.PermissionDenied, "MATURITY_RESTRICTED"},
		{"another account's profile", acc1, "p-other", "t-pg13", codes.NotFound, "NOT_FOUND"},
		{"unknown profile", acc1, "p-nope", "t-pg13", codes.NotFound, "NOT_FOUND"},
		{"unknown title", acc1, "p-adult", "t-nope", codes.NotFound, "NOT_FOUND"},
		{"withdrawn title", acc1, "p-adult", "t-0007", codes.FailedPrecondition, "TITLE_UNAVAILABLE"},
		{"asset playback cannot serve", acc1, "p-adult", "t-badmedia", codes.FailedPrecondition, "MEDIA_UNAVAILABLE"},
		{"bad title id", acc1, "p-adult", "../x", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no profile id", acc1, "", "t-pg13", codes.InvalidArgument, "INVALID_ARGUMENT"},
	} {
		_, err := e.start(c.account, c.profile, c.title)
		wantCode(t, c.name, err, c.code, c.reason)
	}
	_, err = e.client.StartPlayback(context.Background(), &playbackv1.StartPlaybackRequest{ProfileId: "p-adult", TitleId: "t-pg13"})
	wantCode(t, "no caller", err, codes.Unauthenticated, "UNAUTHENTICATED")
	_, err = e.client.StartPlayback(as(acc1), &playbackv1.StartPlaybackRequest{ProfileId: "p-adult", TitleId: "t-pg13", EpisodeId: "t-series-s01e01"})
	wantCode(t, "episode of a movie", err, codes.InvalidArgument, "INVALID_ARGUMENT")

	// Allowed: each level's own ratings.
	for _, c := range []struct{ profile, title string }{{"p-kids", "t-g"}, {"p-teen", "t-pg13"}, {"p-adult", "t-r"}} {
		resp := e.mustStart(acc1, c.profile, c.title)
		if resp.GetSessionId() == "" || !strings.HasPrefix(resp.GetStreamUrl(), "/media/") || resp.GetHeartbeatIntervalSeconds() <= 0 ||
			resp.GetHeartbeatIntervalSeconds() > 60 || resp.GetDurationSeconds() != 6000 || resp.GetResumePositionSeconds() != 0 {
			t.Errorf("StartPlayback(%s, %s) = %v", c.profile, c.title, resp)
		}
		if got, want := resp.GetStreamUrlExpiresAt().AsTime(), t0.Add(4*time.Hour); !got.Equal(want) {
			t.Errorf("stream URL expires at %v, want %v", got, want)
		}
	}

	// The catalog going down is a 503, not a refusal.
	e.catalog.down.Store(true)
	_, err = e.start(acc1, "p-adult", "t-pg13")
	wantCode(t, "catalog down", err, codes.Unavailable, "UNAVAILABLE")
}

func TestRentalEntitlesOneTitle(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "", "t-pg13")
	got, err := e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{TitleId: "t-pg13"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPlan() != nil || len(got.GetRentals()) != 1 || got.GetRentals()[0].GetTitleId() != "t-pg13" ||
		got.GetMaxStreams() != 1 || !got.GetEntitled() || got.GetRentals()[0].GetStatus() != "active" {
		t.Errorf("GetEntitlement(t-pg13) = %v, want one active rental of it, 1 stream, entitled", got)
	}
	if exp := got.GetRentals()[0].GetExpiresAt().AsTime(); !exp.Equal(t0.Add(48 * time.Hour)) {
		t.Errorf("rental expires at %v, want +48h", exp)
	}
	other, _ := e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{TitleId: "t-g"})
	if other.GetEntitled() {
		t.Errorf("GetEntitlement(t-g) entitled with a rental of t-pg13 only")
	}
	_, err = e.start(acc1, "p-adult", "t-g")
	wantCode(t, "another title", err, codes.PermissionDenied, "NOT_ENTITLED")
	s := e.mustStart(acc1, "p-adult", "t-pg13")
	// Rentals without a plan allow one stream.
	_, err = e.start(acc1, "p-teen", "t-pg13")
	wantCode(t, "second stream on a rental", err, codes.FailedPrecondition, "TOO_MANY_STREAMS")
	e.mustStop(acc1, s.GetSessionId(), 0)

	// The rental ends after 48 hours.
	e.clock.Advance(48 * time.Hour)
	_, err = e.start(acc1, "p-adult", "t-pg13")
	wantCode(t, "expired rental", err, codes.PermissionDenied, "NOT_ENTITLED")
	got, _ = e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{})
	if len(got.GetRentals()) != 0 || got.GetMaxStreams() != 0 {
		t.Errorf("GetEntitlement after expiry = %v, want nothing", got)
	}
	// Another account's entitlements are not the caller's.
	got, _ = e.client.GetEntitlement(as(acc2), &playbackv1.GetEntitlementRequest{})
	if got.GetPlan() != nil || len(got.GetRentals()) != 0 {
		t.Errorf("GetEntitlement(acc2) = %v, want nothing", got)
	}
}

func TestTooManyStreams(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "basic", "")
	a := e.mustStart(acc1, "p-adult", "t-pg13")
	_, err := e.start(acc1, "p-teen", "t-g")
	wantCode(t, "second stream on basic", err, codes.FailedPrecondition, "TOO_MANY_STREAMS")

	// Freed by StopPlayback.
	e.mustStop(acc1, a.GetSessionId(), 30)
	b := e.mustStart(acc1, "p-teen", "t-g")
	got, _ := e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{})
	if got.GetMaxStreams() != 1 || got.GetActiveStreams() != 1 || got.GetPlan().GetPlanId() != "basic" {
		t.Errorf("GetEntitlement = %v, want basic, 1 of 1 streams", got)
	}

	// Heartbeats keep it: 80 s later, after a heartbeat at 60 s, it still
	// holds the stream.
	e.clock.Advance(60 * time.Second)
	e.mustReport(acc1, b.GetSessionId(), 60)
	e.clock.Advance(80 * time.Second)
	_, err = e.start(acc1, "p-adult", "t-pg13")
	wantCode(t, "stream kept by heartbeats", err, codes.FailedPrecondition, "TOO_MANY_STREAMS")

	// Freed by expiry: 91 s after the last heartbeat.
	e.clock.Advance(11 * time.Second)
	c := e.mustStart(acc1, "p-adult", "t-pg13")
	_, err = e.report(acc1, b.GetSessionId(), 70)
	wantCode(t, "heartbeat of an expired session", err, codes.NotFound, "SESSION_ENDED")
	if got := e.eventsOf(b.GetSessionId()); !slices.Equal(got, []string{"started@0", "progress@60", "progress@60(expired)"}) {
		t.Errorf("events of the expired session = %v", got)
	}

	// The same profile starting the same title again replaces its session
	// (a reloaded player) instead of being refused.
	d := e.mustStart(acc1, "p-adult", "t-pg13")
	_, err = e.report(acc1, c.GetSessionId(), 10)
	wantCode(t, "heartbeat of a replaced session", err, codes.NotFound, "SESSION_ENDED")
	if got := e.eventsOf(c.GetSessionId()); !slices.Equal(got, []string{"started@30", "progress@30(replaced)"}) {
		t.Errorf("events of the replaced session = %v", got)
	}

	// A bigger plan frees more streams at once.
	e.grant(acc1, "standard", "")
	e.mustStart(acc1, "p-teen", "t-g")
	_, err = e.start(acc1, "p-kids", "t-g")
	wantCode(t, "third stream on standard", err, codes.FailedPrecondition, "TOO_MANY_STREAMS")
	e.mustStop(acc1, d.GetSessionId(), 0)
	e.mustStart(acc1, "p-kids", "t-g")

	// Another account's limit is its own.
	e.grant(acc2, "basic", "")
	e.mustStart(acc2, "p-other", "t-pg13")
}

func TestExpireSessionsSweeper(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "premium", "")
	a := e.mustStart(acc1, "p-adult", "t-pg13")
	b := e.mustStart(acc1, "p-teen", "t-g")
	e.clock.Advance(30 * time.Second)
	e.mustReport(acc1, b.GetSessionId(), 25)
	e.clock.Advance(61 * time.Second) // a: 91 s silent; b: 61 s
	n, err := e.svc.ExpireSessions(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ExpireSessions = %d, %v, want 1", n, err)
	}
	if got := e.eventsOf(a.GetSessionId()); !slices.Equal(got, []string{"started@0", "progress@0(expired)"}) {
		t.Errorf("events of the expired session = %v", got)
	}
	if n, _ := e.svc.ExpireSessions(context.Background()); n != 0 {
		t.Errorf("second ExpireSessions = %d, want 0", n)
	}
	e.mustReport(acc1, b.GetSessionId(), 80)
	// Stopping the swept session succeeds and publishes nothing more.
	e.mustStop(acc1, a.GetSessionId(), 0)
	if got := e.eventsOf(a.GetSessionId()); len(got) != 2 {
		t.Errorf("events after stopping an expired session = %v", got)
	}
}

func TestProgressResumeAndContinueWatching(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "premium", "")
	s := e.mustStart(acc1, "p-adult", "t-pg13")
	for _, pos := range []int32{5, 9, 12, 15, 30} {
		e.clock.Advance(5 * time.Second)
		e.mustReport(acc1, s.GetSessionId(), pos)
	}
	for _, c := range []struct {
		pos    int32
		reason string
	}{{-1, "INVALID_ARGUMENT"}, {6061, "INVALID_ARGUMENT"}} {
		_, err := e.report(acc1, s.GetSessionId(), c.pos)
		wantCode(t, "position out of range", err, codes.InvalidArgument, c.reason)
	}
	_, err := e.report(acc2, s.GetSessionId(), 40)
	wantCode(t, "another account's session", err, codes.NotFound, "NOT_FOUND")
	_, err = e.report(acc1, "no-such-session", 40)
	wantCode(t, "unknown session", err, codes.NotFound, "NOT_FOUND")
	e.clock.Advance(5 * time.Second)
	e.mustStop(acc1, s.GetSessionId(), 1200)
	e.mustStop(acc1, s.GetSessionId(), 1300) // already ended: no change
	if got := e.eventsOf(s.GetSessionId()); !slices.Equal(got, []string{"started@0", "progress@12", "progress@30", "progress@1200(stopped)"}) {
		t.Errorf("events = %v", got)
	}

	// Resume where it stopped.
	again := e.mustStart(acc1, "p-adult", "t-pg13")
	if again.GetResumePositionSeconds() != 1200 {
		t.Errorf("resume = %d, want 1200", again.GetResumePositionSeconds())
	}
	// Another profile has its own place.
	if other := e.mustStart(acc1, "p-teen", "t-pg13"); other.GetResumePositionSeconds() != 0 {
		t.Errorf("another profile resumes at %d, want 0", other.GetResumePositionSeconds())
	}

	e.mustStop(acc1, again.GetSessionId(), 0)

	// A series: the second episode, then continue watching.
	e.clock.Advance(time.Minute)
	ep, err := e.client.StartPlayback(as(acc1), &playbackv1.StartPlaybackRequest{ProfileId: "p-adult", TitleId: "t-series", EpisodeId: "t-series-s01e02"})
	if err != nil || ep.GetEpisodeId() != "t-series-s01e02" || ep.GetDurationSeconds() != 1500 || !strings.Contains(ep.GetStreamUrl(), "/demo-3/") {
		t.Fatalf("StartPlayback(episode 2) = %v, %v", ep, err)
	}
	e.clock.Advance(time.Minute)
	e.mustReport(acc1, ep.GetSessionId(), 600)
	cw, err := e.client.ContinueWatching(as(acc1), &playbackv1.ContinueWatchingRequest{ProfileId: "p-adult"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range cw.GetItems() {
		got = append(got, it.GetTitleId()+"/"+it.GetEpisodeId()+"@"+itoa(it.GetPositionSeconds()))
	}
	if want := []string{"t-series/t-series-s01e02@600", "t-pg13/@1200"}; !slices.Equal(got, want) {
		t.Errorf("ContinueWatching = %v, want %v", got, want)
	}
	// Without an episode id, the series resumes the episode in progress.
	e.mustStop(acc1, ep.GetSessionId(), 0)
	resumed, err := e.client.StartPlayback(as(acc1), &playbackv1.StartPlaybackRequest{ProfileId: "p-adult", TitleId: "t-series"})
	if err != nil || resumed.GetEpisodeId() != "t-series-s01e02" || resumed.GetResumePositionSeconds() != 600 {
		t.Errorf("StartPlayback(series) = %v, %v, want episode 2 at 600", resumed, err)
	}
	// Finishing it (90%) moves on to the next episode and out of the list.
	e.mustStop(acc1, resumed.GetSessionId(), 1400)
	next, err := e.client.StartPlayback(as(acc1), &playbackv1.StartPlaybackRequest{ProfileId: "p-adult", TitleId: "t-series"})
	if err != nil || next.GetEpisodeId() != "t-series-s02e01" || next.GetResumePositionSeconds() != 0 {
		t.Errorf("StartPlayback(series) after finishing episode 2 = %v, %v, want s02e01 at 0", next, err)
	}
	e.mustStop(acc1, next.GetSessionId(), 0)

	// Finishing the movie: completed once, then no resume and out of the list.
	fin := e.mustStart(acc1, "p-adult", "t-pg13")
	e.mustReport(acc1, fin.GetSessionId(), 5390)
	e.mustReport(acc1, fin.GetSessionId(), 5400)
	e.mustStop(acc1, fin.GetSessionId(), 5950)
	if got := e.eventsOf(fin.GetSessionId()); !slices.Equal(got, []string{"started@1200", "progress@5390", "progress@5400", "completed@5400", "progress@5950(stopped)"}) {
		t.Errorf("events of the finished session = %v", got)
	}
	if r := e.mustStart(acc1, "p-adult", "t-pg13"); r.GetResumePositionSeconds() != 0 {
		t.Errorf("resume after finishing = %d, want 0", r.GetResumePositionSeconds())
	}
	cw, _ = e.client.ContinueWatching(as(acc1), &playbackv1.ContinueWatchingRequest{ProfileId: "p-adult"})
	for _, it := range cw.GetItems() {
		if it.GetTitleId() == "t-pg13" || it.GetEpisodeId() == "t-series-s01e02" {
			t.Errorf("ContinueWatching lists finished %s/%s", it.GetTitleId(), it.GetEpisodeId())
		}
	}
	// Another account sees nothing of this profile.
	cw, _ = e.client.ContinueWatching(as(acc2), &playbackv1.ContinueWatchingRequest{ProfileId: "p-adult"})
	if len(cw.GetItems()) != 0 {
		t.Errorf("ContinueWatching of another account's profile = %v", cw.GetItems())
	}
	_, err = e.client.ContinueWatching(as(acc1), &playbackv1.ContinueWatchingRequest{ProfileId: "p-adult", PageToken: "garbage"})
	wantCode(t, "bad page token", err, codes.InvalidArgument, "INVALID_ARGUMENT")
}

func TestContinueWatchingPaging(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "premium", "")
	titles := []string{"t-pg13", "t-g", "t-r", "t-norent"}
	for i, title := range titles {
		e.clock.Advance(time.Minute)
		s := e.mustStart(acc1, "p-adult", title)
		e.mustStop(acc1, s.GetSessionId(), int32(100+i))
	}
	var got []string
	token := ""
	for pages := 0; pages < 5; pages++ {
		resp, err := e.client.ContinueWatching(as(acc1), &playbackv1.ContinueWatchingRequest{ProfileId: "p-adult", PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range resp.GetItems() {
			got = append(got, it.GetTitleId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{"t-norent", "t-r", "t-g", "t-pg13"}; !slices.Equal(got, want) {
		t.Errorf("paged ContinueWatching = %v, want %v", got, want)
	}
}

func TestEventPayload(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "premium", "")
	s := e.mustStart(acc1, "p-adult", "t-pg13")
	e.clock.Advance(time.Minute)
	e.mustStop(acc1, s.GetSessionId(), 5500)
	evs := e.events()
	var subjects []string
	for _, ev := range evs {
		subjects = append(subjects, ev.Subject)
		d := ev.Data
		if d.SessionID != s.GetSessionId() || d.AccountID != acc1 || d.ProfileID != "p-adult" || d.TitleID != "t-pg13" ||
			d.DurationSeconds != 6000 || !slices.Equal(d.Genres, []string{"drama", "sci-fi"}) || d.OccurredAt.IsZero() {
			t.Errorf("%s data = %+v", ev.Subject, d)
		}
	}
	if want := []string{"marquee.playback.started", "marquee.playback.progress", "marquee.playback.completed"}; !slices.Equal(subjects, want) {
		t.Errorf("subjects = %v, want %v", subjects, want)
	}
	if last := evs[1].Data; !last.Final || last.EndReason != "stopped" || last.PositionSeconds != 5500 || !last.OccurredAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("final progress = %+v, want final, stopped, at 5500, at the clock's time", last)
	}
	var ceSubject string
	if err := e.db.QueryRow(context.Background(), "SELECT ce_subject FROM marquee_outbox ORDER BY seq LIMIT 1").Scan(&ceSubject); err != nil || ceSubject != s.GetSessionId() {
		t.Errorf("CloudEvents subject = %q, %v, want the session id", ceSubject, err)
	}
}

func TestStreamURLServesMedia(t *testing.T) {
	e := newEnv(t)
	e.grant(acc1, "premium", "")
	s := e.mustStart(acc1, "p-adult", "t-pg13")
	req, _ := http.NewRequest("GET", e.media.URL+s.GetStreamUrl(), nil)
	req.Header.Set("Range", "bytes=0-1023")
	resp, err := e.media.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || len(body) != 1024 || resp.Header.Get("Content-Type") != "video/webm" ||
		!strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes 0-1023/") {
		t.Errorf("GET stream URL with Range = %d, %d bytes, %v", resp.StatusCode, len(body), resp.Header)
	}
	// Past its expiry the URL is refused.
	e.clock.Advance(4 * time.Hour)
	resp, err = e.media.Client().Get(e.media.URL + s.GetStreamUrl())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET expired stream URL = %d, want 403", resp.StatusCode)
	}
}

func TestGrantValidation(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name string
		req  *playbackv1.GrantEntitlementRequest
	}{
		{"no key", &playbackv1.GrantEntitlementRequest{AccountId: acc1, PlanId: "basic"}},
		{"no account", &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k", PlanId: "basic"}},
		{"unknown plan", &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k", AccountId: acc1, PlanId: "gold"}},
		{"wrong streams", &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k", AccountId: acc1, PlanId: "basic", MaxStreams: 3}},
		{"plan and title", &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k", AccountId: acc1, PlanId: "basic", TitleId: "t-pg13"}},
		{"neither", &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k", AccountId: acc1}},
	} {
		_, err := e.client.GrantEntitlement(context.Background(), c.req)
		wantCode(t, c.name, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	}
	_, err := e.client.RevokeEntitlement(context.Background(), &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "r", AccountId: acc1})
	wantCode(t, "revoke without a grant key", err, codes.InvalidArgument, "INVALID_ARGUMENT")
}

func TestPlanSupersedesAndRevokeRestores(t *testing.T) {
	e := newEnv(t)
	basic := e.grant(acc1, "basic", "")
	e.clock.Advance(time.Hour)
	premium := e.grant(acc1, "premium", "")
	plan := func() string {
		got, err := e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return got.GetPlan().GetPlanId()
	}
	if got := plan(); got != "premium" {
		t.Errorf("plan after upgrading = %q, want premium", got)
	}
	list, err := e.client.ListEntitlements(context.Background(), &playbackv1.ListEntitlementsRequest{AccountId: acc1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range list.GetEntitlements() {
		got = append(got, en.GetPlanId()+":"+en.GetStatus())
	}
	if want := []string{"premium:active", "basic:superseded"}; !slices.Equal(got, want) {
		t.Errorf("ListEntitlements = %v, want %v", got, want)
	}
	revoke := func(grantKey string) *playbackv1.Entitlement {
		t.Helper()
		resp, err := e.client.RevokeEntitlement(context.Background(), &playbackv1.RevokeEntitlementRequest{
			IdempotencyKey: "revoke-" + grantKey, GrantIdempotencyKey: grantKey, AccountId: acc1, Reason: "compensation",
		})
		if err != nil {
			t.Fatalf("RevokeEntitlement(%s): %v", grantKey, err)
		}
		return resp.GetEntitlement()
	}
	if r := revoke(premium); r.GetStatus() != "revoked" || r.GetPlanId() != "premium" || r.GetRevokedAt() == nil {
		t.Errorf("Revoke(premium) = %v", r)
	}
	if got := plan(); got != "basic" {
		t.Errorf("plan after revoking the upgrade = %q, want basic restored", got)
	}
	revoke(basic)
	if got := plan(); got != "" {
		t.Errorf("plan after revoking both = %q, want none", got)
	}
	byOrder, err := e.client.ListEntitlements(context.Background(), &playbackv1.ListEntitlementsRequest{OrderId: "order-" + premium})
	if err != nil || len(byOrder.GetEntitlements()) != 1 || byOrder.GetEntitlements()[0].GetStatus() != "revoked" {
		t.Errorf("ListEntitlements(order of premium) = %v, %v", byOrder, err)
	}
}

func TestGrantRevokeIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Keys as the saga engine makes them: <saga id>/<step>/<kind>.
	const k1 = "s1/grant_entitlement/action"
	req := &playbackv1.GrantEntitlementRequest{IdempotencyKey: k1, OrderId: "o1", SagaId: "s1", AccountId: acc1, PlanId: "standard", MaxStreams: 2}
	first, err := e.client.GrantEntitlement(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if en := first.GetEntitlement(); en.GetStatus() != "active" || en.GetKind() != "plan" || en.GetMaxStreams() != 2 || en.GetIdempotencyKey() != k1 || en.GetOrderId() != "o1" {
		t.Errorf("Grant = %v", en)
	}
	// A duplicate answers the same entitlement and grants nothing more.
	e.clock.Advance(time.Minute)
	dup, err := e.client.GrantEntitlement(ctx, req)
	if err != nil || dup.GetEntitlement().GetId() != first.GetEntitlement().GetId() ||
		!dup.GetEntitlement().GetCreatedAt().AsTime().Equal(first.GetEntitlement().GetCreatedAt().AsTime()) {
		t.Errorf("duplicate Grant = %v, %v, want %v", dup, err, first)
	}
	list, _ := e.client.ListEntitlements(ctx, &playbackv1.ListEntitlementsRequest{AccountId: acc1})
	if len(list.GetEntitlements()) != 1 {
		t.Errorf("entitlements after a duplicate grant: %d, want 1", len(list.GetEntitlements()))
	}
	// The same key with other arguments is refused.
	other := &playbackv1.GrantEntitlementRequest{IdempotencyKey: k1, OrderId: "o1", SagaId: "s1", AccountId: acc1, PlanId: "premium"}
	_, err = e.client.GrantEntitlement(ctx, other)
	wantCode(t, "key reused", err, codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")

	// Revoke, twice: the second answers the first's result.
	rev := &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "s1/grant_entitlement/compensation", OrderId: "o1", SagaId: "s1", AccountId: acc1, GrantIdempotencyKey: k1}
	r1, err := e.client.RevokeEntitlement(ctx, rev)
	if err != nil || r1.GetEntitlement().GetStatus() != "revoked" || r1.GetEntitlement().GetId() != first.GetEntitlement().GetId() {
		t.Fatalf("Revoke = %v, %v", r1, err)
	}
	e.clock.Advance(time.Minute)
	r2, err := e.client.RevokeEntitlement(ctx, rev)
	if err != nil || r2.GetEntitlement().GetId() != r1.GetEntitlement().GetId() ||
		!r2.GetEntitlement().GetRevokedAt().AsTime().Equal(r1.GetEntitlement().GetRevokedAt().AsTime()) {
		t.Errorf("duplicate Revoke = %v, %v, want %v", r2, err, r1)
	}
	wrongAccount := &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "s1/grant_entitlement/compensation", AccountId: acc2, GrantIdempotencyKey: k1}
	_, err = e.client.RevokeEntitlement(ctx, wrongAccount)
	wantCode(t, "revoke key reused for another account", err, codes.FailedPrecondition, "IDEMPOTENCY_KEY_REUSED")

	// Revoke before grant: recorded as cancelled; the late grant grants
	// nothing and says so.
	early := &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "k2-c", OrderId: "o2", SagaId: "s2", AccountId: acc1, GrantIdempotencyKey: "k2"}
	for i := 0; i < 2; i++ {
		r, err := e.client.RevokeEntitlement(ctx, early)
		if err != nil || r.GetEntitlement().GetStatus() != "cancelled" || r.GetEntitlement().GetIdempotencyKey() != "k2" {
			t.Errorf("Revoke before Grant (call %d) = %v, %v, want cancelled", i+1, r, err)
		}
	}
	late, err := e.client.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{IdempotencyKey: "k2", OrderId: "o2", SagaId: "s2", AccountId: acc1, PlanId: "premium"})
	if err != nil || late.GetEntitlement().GetStatus() != "cancelled" || late.GetEntitlement().GetId() != "" {
		t.Errorf("Grant after its Revoke = %v, %v, want cancelled, nothing granted", late, err)
	}
	got, _ := e.client.GetEntitlement(as(acc1), &playbackv1.GetEntitlementRequest{})
	if got.GetPlan() != nil {
		t.Errorf("after a cancelled grant the account has plan %v", got.GetPlan())
	}
	list, _ = e.client.ListEntitlements(ctx, &playbackv1.ListEntitlementsRequest{OrderId: "o2"})
	if len(list.GetEntitlements()) != 0 {
		t.Errorf("order o2 has entitlements %v, want none", list.GetEntitlements())
	}
}

func TestRentalOfUnavailableTitle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, title := range []string{"t-0007", "t-norent", "t-nope"} {
		_, err := e.client.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{IdempotencyKey: "rent-" + title, OrderId: "o-" + title, AccountId: acc1, TitleId: title})
		wantCode(t, "rent "+title, err, codes.FailedPrecondition, "TITLE_UNAVAILABLE")
	}
	// Nothing was recorded: the saga's compensation finds nothing to undo,
	// and a retried grant after it is cancelled.
	r, err := e.client.RevokeEntitlement(ctx, &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "c", AccountId: acc1, GrantIdempotencyKey: "rent-t-0007"})
	if err != nil || r.GetEntitlement().GetStatus() != "cancelled" {
		t.Errorf("Revoke of the refused rental = %v, %v, want cancelled", r, err)
	}
	late, err := e.client.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{IdempotencyKey: "rent-t-0007", OrderId: "o-t-0007", AccountId: acc1, TitleId: "t-0007"})
	if err != nil || late.GetEntitlement().GetStatus() != "cancelled" || late.GetEntitlement().GetKind() != "rental" {
		t.Errorf("Grant after the compensation = %v, %v, want cancelled", late, err)
	}
	// With the catalog down the grant is retryable, not refused.
	e.catalog.down.Store(true)
	_, err = e.client.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{IdempotencyKey: "rent-down", AccountId: acc1, TitleId: "t-pg13"})
	wantCode(t, "catalog down", err, codes.Unavailable, "UNAVAILABLE")
	e.catalog.down.Store(false)
	ok, err := e.client.GrantEntitlement(ctx, &playbackv1.GrantEntitlementRequest{IdempotencyKey: "rent-down", AccountId: acc1, TitleId: "t-pg13", RentalDurationSeconds: 3600})
	if err != nil || ok.GetEntitlement().GetStatus() != "active" || !ok.GetEntitlement().GetExpiresAt().AsTime().Equal(t0.Add(time.Hour)) {
		t.Errorf("Grant once the catalog is back = %v, %v, want an active rental for 1 h", ok, err)
	}
	list, _ := e.client.ListEntitlements(ctx, &playbackv1.ListEntitlementsRequest{AccountId: acc1})
	if len(list.GetEntitlements()) != 1 {
		t.Errorf("entitlements = %v, want the one rental", list.GetEntitlements())
	}
}

func TestSeed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.svc.Seed(ctx); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	n := len(e.events())
	if err := e.svc.Seed(ctx); err != nil {
		t.Fatalf("second Seed: %v", err)
	}
	if again := len(e.events()); again != n || n == 0 {
		t.Errorf("events after seeding twice: %d then %d, want the same non-zero count", n, again)
	}
	demo := "00000000-0000-4000-8000-00000000de70"
	got, err := e.client.GetEntitlement(as(demo), &playbackv1.GetEntitlementRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if p := got.GetPlan(); p.GetPlanId() != "premium" || p.GetStatus() != "active" || !p.GetExpiresAt().AsTime().Equal(t0.Add(365*24*time.Hour)) || got.GetMaxStreams() != 4 {
		t.Errorf("demo plan = %v, want premium for a year", got)
	}
	list, _ := e.client.ListEntitlements(ctx, &playbackv1.ListEntitlementsRequest{AccountId: demo})
	if len(list.GetEntitlements()) != 1 {
		t.Errorf("demo entitlements after seeding twice = %d, want 1", len(list.GetEntitlements()))
	}
	completed := 0
	for _, ev := range e.events() {
		if ev.Subject == "marquee.playback.completed" {
			completed++
		}
		if ev.Data.AccountID != demo || ev.Data.TitleID == "" || ev.Data.DurationSeconds <= 0 || len(ev.Data.Genres) == 0 {
			t.Errorf("seed event %s = %+v", ev.Subject, ev.Data)
		}
	}
	if completed != 6 {
		t.Errorf("seeded completed events = %d, want 2 per profile", completed)
	}
	for _, p := range []string{"00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2", "00000000-0000-4000-8000-0000000000a3"} {
		cw, err := e.client.ContinueWatching(as(demo), &playbackv1.ContinueWatchingRequest{ProfileId: p})
		if err != nil || len(cw.GetItems()) != 4 {
			t.Errorf("ContinueWatching(%s) = %d items, %v, want 4", p, len(cw.GetItems()), err)
			continue
		}
		for i, it := range cw.GetItems() {
			if it.GetPositionSeconds() <= 0 || it.GetPositionSeconds() >= it.GetDurationSeconds() {
				t.Errorf("%s item %d = %v", p, i, it)
			}
			if i > 0 && it.GetUpdatedAt().AsTime().After(cw.GetItems()[i-1].GetUpdatedAt().AsTime()) {
				t.Errorf("%s: items not newest first", p)
			}
		}
	}
}

func TestSeedHistoryRespectsMaturity(t *testing.T) {
	byID := map[string]catalogdomain.Title{}
	for _, title := range catalogdemo.Titles() {
		byID[title.ID] = title
	}
	seen := map[string]bool{}
	for i, level := range []catalogdomain.Level{catalogdomain.LevelAdult, catalogdomain.LevelTeen, catalogdomain.LevelKids} {
		h := playback.SeedHistory(level, i, t0)
		if len(h) != 6 {
			t.Errorf("SeedHistory(%s) has %d titles, want 6", level, len(h))
		}
		for _, st := range h {
			title := byID[st.TitleID]
			if !catalogdomain.Allows(level, title.Rating) || !title.AvailableAt(t0) {
				t.Errorf("SeedHistory(%s) has %s rated %s (available %v)", level, st.TitleID, title.Rating, title.AvailableAt(t0))
			}
			if st.Duration <= 0 || st.Position <= 0 || st.Position > st.Duration || (title.Kind == catalogdomain.KindSeries) != (st.EpisodeID != "") {
				t.Errorf("SeedHistory(%s) entry %+v", level, st)
			}
			seen[st.TitleID] = true
		}
	}
	if len(seen) < 12 {
		t.Errorf("the demo profiles share titles: %d distinct of 18", len(seen))
	}
}
