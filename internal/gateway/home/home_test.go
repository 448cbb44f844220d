package home_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/gateway/home"
	"github.com/marquee-tv/marquee/internal/platform/logging"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// harness is the home handler over four fake services on real gRPC
// servers.
type harness struct {
	cat     *fakeCatalog
	prof    *fakeProfiles
	play    *fakePlayback
	recs    *fakeRecommendations
	stop    map[string]func()
	handler http.Handler
	dialer  dialer
	reg     *prometheus.Registry
	clock   *clock
}

// clock is a settable clock for the breakers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newHarness(t testing.TB, cfg home.Config) *harness {
	t.Helper()
	h := &harness{
		cat: &fakeCatalog{}, prof: &fakeProfiles{}, play: &fakePlayback{}, recs: &fakeRecommendations{},
		stop: map[string]func(){}, reg: prometheus.NewRegistry(),
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
	}
	d := dialer{}
	for name, register := range map[string]func(*grpc.Server){
		home.DepCatalog:         func(s *grpc.Server) { catalogv1.RegisterCatalogServiceServer(s, h.cat) },
		home.DepProfiles:        func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, h.prof) },
		home.DepPlayback:        func(s *grpc.Server) { playbackv1.RegisterPlaybackServiceServer(s, h.play) },
		home.DepRecommendations: func(s *grpc.Server) { recommendationsv1.RegisterRecommendationsServiceServer(s, h.recs) },
	} {
		addr, stop := serve(t, register)
		h.stop[name] = stop
		d[name] = dial(t, addr)
	}
	if cfg.Now == nil {
		cfg.Now = h.clock.now
	}
	cfg.Registerer = h.reg
	h.dialer = d
	h.handler = home.New(cfg, d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return h
}

func dialerOf(h *harness) home.Dialer { return h.dialer }

// response is a recorded answer.
type response struct {
	status  int
	header  http.Header
	page    home.Page
	err     errorBody
	elapsed time.Duration
}

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// get asks for the page as account (none when empty) with query.
func (h *harness) get(t testing.TB, account, query string) response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/home?"+query, nil)
	ctx := logging.WithRequestID(r.Context(), "req-42")
	if account != "" {
		ctx = principal.Attach(ctx, principal.Principal{AccountID: account, Roles: []string{principal.RoleViewer}})
	}
	w := httptest.NewRecorder()
	w.Header().Set("X-Request-Id", "req-42")
	start := time.Now()
	h.handler.ServeHTTP(w, r.WithContext(ctx))
	resp := response{status: w.Code, header: w.Header(), elapsed: time.Since(start)}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var err error
	if w.Code == http.StatusOK {
		err = json.Unmarshal(w.Body.Bytes(), &resp.page)
	} else {
		err = json.Unmarshal(w.Body.Bytes(), &resp.err)
	}
	if err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return resp
}

func (r response) ids() []string {
	var out []string
	for _, row := range r.page.Rows {
		out = append(out, row.ID)
	}
	return out
}

func (r response) row(id string) *home.Row {
	for i := range r.page.Rows {
		if r.page.Rows[i].ID == id {
			return &r.page.Rows[i]
		}
	}
	return nil
}

func items(r *home.Row) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, c := range r.Items {
		out = append(out, c.ID)
	}
	return out
}

// checkMaturity fails on any card above level or not available.
func checkMaturity(t *testing.T, r response, level catalogdomain.Level) {
	t.Helper()
	checkCards(t, r, level, true)
}

// checkCards fails on any card above level, and, when availability is
// set, on the unavailable title.
func checkCards(t *testing.T, r response, level catalogdomain.Level, availability bool) {
	t.Helper()
	for _, row := range r.page.Rows {
		for _, c := range row.Items {
			if !catalogdomain.Allows(level, catalogdomain.Rating(c.MaturityRating)) {
				t.Errorf("%s page: row %s has %s rated %s", level, row.ID, c.ID, c.MaturityRating)
			}
			if availability && c.ID == "m-gone" {
				t.Errorf("%s page: row %s has the unavailable m-gone", level, row.ID)
			}
		}
		if strings.Contains(row.Title, "Cold Open") && level != catalogdomain.LevelAdult {
			t.Errorf("%s page: row %q names an R title", level, row.Title)
		}
	}
}

func TestFullPage(t *testing.T) {
	h := newHarness(t, home.Config{})
	r := h.get(t, accountA, "profile_id=p-adult")
	if r.status != http.StatusOK {
		t.Fatalf("GET home = %d %+v", r.status, r.err)
	}
	if r.page.ProfileID != "p-adult" || len(r.page.Degraded) != 0 {
		t.Errorf("page = %q, degraded %v; want p-adult, none", r.page.ProfileID, r.page.Degraded)
	}
	want := []string{"continue_watching", "my_list", "recommended", "because_you_watched:m-kids1",
		"because_you_watched:m-adult", "trending", "genre:comedy", "genre:family"}
	if got := r.ids(); !slices.Equal(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
	cw := r.row("continue_watching")
	if cw.Title != "Continue watching" || !slices.Equal(items(cw), []string{"m-teen", "s-adult"}) {
		t.Errorf("continue watching = %q %v", cw.Title, items(cw))
	}
	s := cw.Items[1]
	if s.PositionSeconds == nil || *s.PositionSeconds != 30 || *s.DurationSeconds != 1800 || s.EpisodeID != "s-adult-1-2" ||
		s.Name != "Night Shift" || s.Kind != "series" || s.Year != 2024 || s.MaturityRating != "TV-MA" || !slices.Equal(s.Genres, []string{"drama"}) {
		t.Errorf("continue watching card = %+v", s)
	}
	if got := items(r.row("my_list")); !slices.Equal(got, []string{"m-kids1", "m-adult"}) {
		t.Errorf("my list = %v", got)
	}
	if ml := r.row("my_list").Items[0]; ml.PositionSeconds != nil || ml.ArtworkURL != "/api/v1/titles/m-kids1/artwork" {
		t.Errorf("my list card = %+v; want artwork and no progress", ml)
	}
	if got := items(r.row("recommended")); !slices.Equal(got, []string{"m-kids2", "m-adult", "m-teen"}) {
		t.Errorf("recommended = %v", got)
	}
	if got := items(r.row("trending")); !slices.Equal(got, []string{"m-adult", "m-kids1"}) {
		t.Errorf("trending = %v, want the unavailable title left out", got)
	}
	if row := r.row("genre:comedy"); row.Title != "Popular in Comedy" {
		t.Errorf("genre row title = %q", row.Title)
	}
	// Every dependency was called as the caller, with the request id.
	for name, c := range map[string]*callers{"catalog": &h.cat.callers, "profiles": &h.prof.callers, "playback": &h.play.callers, "recommendations": &h.recs.callers} {
		accounts, requests := c.seen()
		if len(accounts) == 0 || slices.ContainsFunc(accounts, func(a string) bool { return a != accountA }) {
			t.Errorf("%s saw callers %v, want only %s", name, accounts, accountA)
		}
		if len(requests) == 0 || slices.ContainsFunc(requests, func(id string) bool { return id != "req-42" }) {
			t.Errorf("%s saw request ids %v, want req-42", name, requests)
		}
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	checkMaturity(t, r, catalogdomain.LevelAdult)
}

func TestRecommendationsDown(t *testing.T) {
	h := newHarness(t, home.Config{})
	h.stop[home.DepRecommendations]()
	r := h.get(t, accountA, "profile_id=p-adult")
	if r.status != http.StatusOK {
		t.Fatalf("GET home with recommendations down = %d %+v", r.status, r.err)
	}
	wantDegraded := []string{"recommended", "trending", "genre:family", "genre:comedy", "genre:thriller"}
	if !slices.Equal(r.page.Degraded, wantDegraded) {
		t.Errorf("degraded = %v, want %v", r.page.Degraded, wantDegraded)
	}
	if got := items(r.row("recommended")); len(got) == 0 {
		t.Errorf("no fallback recommended row; rows %v", r.ids())
	}
	if r.row("trending") != nil {
		t.Error("a trending row without recommendations")
	}
	if got := items(r.row("genre:family")); !slices.Equal(got, []string{"m-kids1", "m-kids3"}) {
		t.Errorf("fallback family row = %v, want the catalog's available family titles", got)
	}
	if r.row("continue_watching") == nil || r.row("my_list") == nil {
		t.Errorf("rows %v: continue watching and My List must not suffer", r.ids())
	}
	checkMaturity(t, r, catalogdomain.LevelAdult)
}

func TestRecommendationsSlow(t *testing.T) {
	const deadline = 400 * time.Millisecond
	h := newHarness(t, home.Config{Deadline: deadline, CallTimeout: 300 * time.Millisecond,
		Timeouts: map[string]time.Duration{home.DepRecommendations: 150 * time.Millisecond}})
	h.recs.delay.Store(int64(5 * time.Second))
	r := h.get(t, accountA, "profile_id=p-adult")
	if r.status != http.StatusOK {
		t.Fatalf("GET home with slow recommendations = %d %+v", r.status, r.err)
	}
	if r.elapsed > deadline+150*time.Millisecond {
		t.Errorf("page took %v, want within the %v deadline", r.elapsed, deadline)
	}
	if r.elapsed < 150*time.Millisecond {
		t.Errorf("page took %v, less than the recommendations timeout; was the slow call made?", r.elapsed)
	}
	if !slices.Contains(r.page.Degraded, "recommended") {
		t.Errorf("degraded = %v, want recommended", r.page.Degraded)
	}
	if len(items(r.row("recommended"))) == 0 || r.row("continue_watching") == nil || r.row("my_list") == nil {
		t.Errorf("rows = %v: want the fallback recommended row and the others intact", r.ids())
	}
}

func TestMaturityRespected(t *testing.T) {
	h := newHarness(t, home.Config{})
	h.cat.leaky = true // even the catalog answers adult titles
	r := h.get(t, accountA, "profile_id=p-kids")
	if r.status != http.StatusOK {
		t.Fatalf("GET home = %d %+v", r.status, r.err)
	}
	checkMaturity(t, r, catalogdomain.LevelKids)
	if got := items(r.row("continue_watching")); !slices.Equal(got, []string{"m-kids1"}) {
		t.Errorf("kids continue watching = %v, want [m-kids1]", got)
	}
	if got := items(r.row("my_list")); !slices.Equal(got, []string{"m-kids3"}) {
		t.Errorf("kids My List = %v, want [m-kids3]", got)
	}
	if r.row("because_you_watched:m-adult") != nil {
		t.Error("a kids page has a row named after an R title")
	}
	if r.row("because_you_watched:m-kids1") == nil {
		t.Errorf("rows %v: the kids-safe because-you-watched row is missing", r.ids())
	}
	// The same leaks through the fallbacks.
	h.stop[home.DepRecommendations]()
	r = h.get(t, accountA, "profile_id=p-kids")
	checkMaturity(t, r, catalogdomain.LevelKids)
}

func TestAuthAndProfileErrors(t *testing.T) {
	h := newHarness(t, home.Config{})
	tests := []struct {
		name, account, query string
		status               int
		code                 string
	}{
		{"no principal", "", "profile_id=p-adult", http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"another account's profile", accountB, "profile_id=p-adult", http.StatusNotFound, "NOT_FOUND"},
		{"unknown profile", accountA, "profile_id=p-nobody", http.StatusNotFound, "NOT_FOUND"},
		{"no profile_id", accountA, "", http.StatusBadRequest, "INVALID_ARGUMENT"},
		{"malformed profile_id", accountA, "profile_id=a%2Fb", http.StatusBadRequest, "INVALID_ARGUMENT"},
		{"malformed query", accountA, "profile_id=%zz", http.StatusBadRequest, "INVALID_ARGUMENT"},
	}
	for _, tt := range tests {
		r := h.get(t, tt.account, tt.query)
		if r.status != tt.status || r.err.Error.Code != tt.code || r.err.Error.RequestID != "req-42" || r.err.Error.Message == "" {
			t.Errorf("%s: GET home?%s = %d %+v, want %d %s with request id req-42", tt.name, tt.query, r.status, r.err, tt.status, tt.code)
		}
	}
	if got := h.get(t, "", "profile_id=p-adult").header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Errorf("401 WWW-Authenticate = %q", got)
	}
	w := httptest.NewRecorder()
	h.handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/home?profile_id=p-adult", nil))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET" {
		t.Errorf("POST home = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestProfilesDownServesKidsPage(t *testing.T) {
	h := newHarness(t, home.Config{})
	h.stop[home.DepProfiles]()
	r := h.get(t, accountA, "profile_id=p-adult")
	if r.status != http.StatusOK {
		t.Fatalf("GET home with profiles down = %d %+v", r.status, r.err)
	}
	if len(r.page.Degraded) < 2 || r.page.Degraded[0] != "profile" || r.page.Degraded[1] != "my_list" {
		t.Errorf("degraded = %v, want profile, my_list first", r.page.Degraded)
	}
	checkMaturity(t, r, catalogdomain.LevelKids)
	if len(items(r.row("recommended"))) == 0 {
		t.Errorf("rows %v: want a kids recommended row", r.ids())
	}
}

func TestCatalogDown(t *testing.T) {
	h := newHarness(t, home.Config{})
	h.stop[home.DepCatalog]()
	r := h.get(t, accountA, "profile_id=p-teen-less")
	if r.status != http.StatusNotFound {
		t.Fatalf("unknown profile with catalog down = %d", r.status)
	}
	r = h.get(t, accountA, "profile_id=p-teen")
	if r.status != http.StatusOK {
		t.Fatalf("GET home with catalog down = %d %+v", r.status, r.err)
	}
	for _, want := range []string{"continue_watching", "my_list", "recommended", "because_you_watched:m-kids1", "trending", "genre:comedy"} {
		if !slices.Contains(r.page.Degraded, want) {
			t.Errorf("degraded = %v, want %s in it", r.page.Degraded, want)
		}
	}
	if got := items(r.row("recommended")); !slices.Equal(got, []string{"m-kids2", "m-teen"}) {
		t.Errorf("recommended from recommendations' own data = %v, want the teen-safe [m-kids2 m-teen]", got)
	}
	if r.row("because_you_watched:m-kids1") != nil || r.row("continue_watching") != nil || r.row("my_list") != nil {
		t.Errorf("rows %v: continue watching, My List and because-you-watched need the catalog", r.ids())
	}
	// Availability is then as recommendations says (the real service never
	// answers an unavailable title; this fake does).
	checkCards(t, r, catalogdomain.LevelTeen, false)
}

func TestEmptyRecommendationsFallBack(t *testing.T) {
	h := newHarness(t, home.Config{})
	h.recs.empty.Store(true)
	r := h.get(t, accountA, "profile_id=p-adult")
	if !slices.Equal(r.page.Degraded, []string{"recommended"}) || len(items(r.row("recommended"))) == 0 {
		t.Errorf("empty recommendations: degraded %v, rows %v; want a catalog recommended row", r.page.Degraded, r.ids())
	}
}

func TestCircuitBreaker(t *testing.T) {
	const callTimeout = 150 * time.Millisecond
	h := newHarness(t, home.Config{Deadline: 600 * time.Millisecond, CallTimeout: callTimeout, BreakerThreshold: 2, BreakerCooldown: time.Minute})
	h.recs.delay.Store(int64(5 * time.Second))
	for i := range 2 {
		if r := h.get(t, accountA, "profile_id=p-adult"); r.elapsed < callTimeout {
			t.Fatalf("request %d took %v, before the call timeout; the slow call was not made", i, r.elapsed)
		}
	}
	calls := h.recs.calls.Load()
	r := h.get(t, accountA, "profile_id=p-adult")
	if h.recs.calls.Load() != calls {
		t.Error("with the circuit open, recommendations was still called")
	}
	if r.elapsed >= callTimeout || !slices.Contains(r.page.Degraded, "recommended") {
		t.Errorf("with the circuit open: %v, degraded %v; want a fast fallback", r.elapsed, r.page.Degraded)
	}
	if got := metric(t, h.reg, "marquee_home_circuit_open", "recommendations"); got != 1 {
		t.Errorf("marquee_home_circuit_open{recommendations} = %v, want 1", got)
	}
	if got := metric(t, h.reg, "marquee_home_degraded_rows_total", "recommended"); got != 3 {
		t.Errorf("marquee_home_degraded_rows_total{recommended} = %v, want 3", got)
	}
	// After the cooldown one probe goes through; it succeeds and closes it.
	h.recs.delay.Store(0)
	h.clock.add(time.Minute)
	r = h.get(t, accountA, "profile_id=p-adult")
	if len(r.page.Degraded) != 0 || h.recs.calls.Load() != calls+1 {
		t.Errorf("after the cooldown: degraded %v, calls %d; want the probe to succeed", r.page.Degraded, h.recs.calls.Load()-calls)
	}
	if got := metric(t, h.reg, "marquee_home_circuit_open", "recommendations"); got != 0 {
		t.Errorf("marquee_home_circuit_open{recommendations} = %v after recovery, want 0", got)
	}
}

// metric reads a gauge or counter with one label value from reg.
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.GetGauge() != nil {
					return m.GetGauge().GetValue()
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func TestClientGoneCountsNothing(t *testing.T) {
	h := newHarness(t, home.Config{BreakerThreshold: 1})
	h.recs.delay.Store(int64(5 * time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodGet, "/api/v1/home?profile_id=p-adult", nil)
	r = r.WithContext(principal.Attach(ctx, principal.Principal{AccountID: accountA}))
	time.AfterFunc(50*time.Millisecond, cancel)
	h.handler.ServeHTTP(httptest.NewRecorder(), r)
	if got := metric(t, h.reg, "marquee_home_circuit_open", "recommendations"); got != 0 {
		t.Errorf("a client that went away opened the circuit (gauge %v)", got)
	}
}

// TestManyTitlesAreResolvedInBatches: more titles than one BatchGetTitles
// takes are resolved in several.
func TestManyTitlesAreResolvedInBatches(t *testing.T) {
	h := newHarness(t, home.Config{RowSize: 50, GenreRows: 15})
	h.recs.many.Store(true)
	r := h.get(t, accountA, "profile_id=p-adult")
	n := 0
	for _, row := range r.page.Rows {
		if strings.HasPrefix(row.ID, "genre:") {
			n += len(row.Items)
			if len(row.Items) != 50 {
				t.Errorf("row %s has %d titles, want 50", row.ID, len(row.Items))
			}
		}
	}
	// 20 rows asked (the most recommendations answers), 15 genre rows kept,
	// plus a recommended row mixing them.
	if n != 15*50 || len(r.page.Degraded) != 0 {
		t.Errorf("genre rows hold %d titles, degraded %v; want %d, none", n, r.page.Degraded, 15*50)
	}
	h.cat.mu.Lock()
	defer h.cat.mu.Unlock()
	if !slices.ContainsFunc(h.cat.batches, func(n int) bool { return n == 200 }) {
		t.Errorf("batch sizes %v, want full batches of 200", h.cat.batches)
	}
}
