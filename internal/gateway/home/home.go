// Package home serves the viewer's home page, GET /api/v1/home?profile_id=,
// by aggregating the services in parallel under one deadline: continue
// watching (playback), My List (profiles), recommended, because-you-watched,
// trending and by-genre rows (recommendations), every title resolved to a
// card by the catalog at the profile's maturity level.
//
// A slow or dead dependency degrades only its rows. Each call has its own
// timeout inside the page deadline and goes through a per-dependency
// circuit breaker that fails calls at once while the dependency is known
// to be down. A row that cannot be served as usual is served from a
// fallback or left out, and its id is listed in "degraded":
//
//	dependency down    rows affected
//	playback           continue_watching: left out
//	profiles (lists)   my_list: left out
//	recommendations    recommended: the catalog's titles at the profile's
//	                   level; trending: left out; genre:<id>: the catalog's
//	                   titles of its genres with the most titles
//	catalog            continue_watching, my_list: left out; the
//	                   recommendation rows: the titles as recommendations
//	                   knows them, filtered here by maturity
//	profiles (profile) see below
//
// The page never fails because a dependency other than profiles is down,
// and not even then: when the profile cannot be read, its maturity level
// is unknown, so the page is served as for a kids profile (the most
// restricted level; failing closed on content, open on availability) and
// "profile" leads the degraded list. A profile that does not exist or
// belongs to another account answers 404, which needs profiles to say so.
//
// Maturity is enforced twice: the catalog is asked at the profile's level,
// and every card is checked here again with the catalog's own rule
// (internal/catalog/domain.Allows), so a dependency answering a title above
// the level never puts it on the page. Unavailable titles are left out too.
//
// Mount the handler behind the gateway's authentication, which attaches the
// caller (principal.Attach); without one the handler answers 401. Errors
// have the product shape {"error":{"code","message","request_id"}}.
package home

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/logging"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// Peer names of the dependencies.
const (
	DepCatalog         = "catalog"
	DepProfiles        = "profiles"
	DepPlayback        = "playback"
	DepRecommendations = "recommendations"
)

// Row ids of the page, and the other entries of "degraded".
const (
	RowContinueWatching = "continue_watching"
	RowMyList           = "my_list"
	RowRecommended      = "recommended"
	RowTrending         = "trending"
	// RowGenrePrefix + genre id is a by-genre row.
	RowGenrePrefix = "genre:"
	// RowBecausePrefix + title id is a because-you-watched row.
	RowBecausePrefix = "because_you_watched:"
	// DegradedProfile in "degraded" says the profile could not be read:
	// every row is restricted to kids titles.
	DegradedProfile = "profile"
)

// Defaults for the zero values of Config.
const (
	DefaultDeadline         = 800 * time.Millisecond
	DefaultRowSize          = 20
	DefaultGenreRows        = 6
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 5 * time.Second
)

// Config tunes the home page. The zero value is usable.
type Config struct {
	// Deadline bounds the whole page; zero means DefaultDeadline.
	Deadline time.Duration
	// CallTimeout bounds each call to a dependency, inside the deadline; it
	// leaves room for a fallback after a slow call. Zero means five eighths
	// of Deadline; it is capped at Deadline. A call cut short by the page's
	// deadline rather than its own timeout does not count against the
	// dependency's circuit breaker.
	CallTimeout time.Duration
	// Timeouts overrides CallTimeout per dependency (DepCatalog, ...);
	// each is capped at Deadline.
	Timeouts map[string]time.Duration
	// RowSize is the most titles per row (1..50); zero means DefaultRowSize.
	RowSize int
	// GenreRows is the most by-genre rows (1..15); zero means
	// DefaultGenreRows.
	GenreRows int
	// BreakerThreshold is how many consecutive failures of a dependency
	// open its circuit; zero means DefaultBreakerThreshold.
	BreakerThreshold int
	// BreakerCooldown is how long an open circuit fails calls at once
	// before letting one probe through; zero means DefaultBreakerCooldown.
	BreakerCooldown time.Duration
	// Now is the breakers' clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the handler's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = c.Deadline * 5 / 8
	}
	c.CallTimeout = min(c.CallTimeout, c.Deadline)
	timeouts := map[string]time.Duration{}
	for dep, d := range c.Timeouts {
		if d > 0 {
			timeouts[dep] = min(d, c.Deadline)
		}
	}
	c.Timeouts = timeouts
	if c.RowSize <= 0 {
		c.RowSize = DefaultRowSize
	}
	c.RowSize = min(c.RowSize, 50)
	if c.GenreRows <= 0 {
		c.GenreRows = DefaultGenreRows
	}
	c.GenreRows = min(c.GenreRows, 15)
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Dialer hands out the connection to a dependency by peer name (the
// gateway's peers dialer).
type Dialer interface {
	Conn(service string) (*grpc.ClientConn, error)
}

// Handler serves the home page; see the package documentation.
type Handler struct {
	cfg      Config
	dialer   Dialer
	log      *slog.Logger
	breakers map[string]*breaker
	degraded *prometheus.CounterVec
}

var _ http.Handler = (*Handler)(nil)

// New returns the home page handler. A nil logger means slog.Default().
func New(cfg Config, dialer Dialer, logger *slog.Logger) http.Handler {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	h := &Handler{
		cfg:      cfg,
		dialer:   dialer,
		log:      logger.With("component", "home"),
		breakers: map[string]*breaker{},
		degraded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_home_degraded_rows_total",
			Help: "Home page rows served from a fallback or left out, by kind of row.",
		}, []string{"row"}),
	}
	for _, dep := range []string{DepCatalog, DepProfiles, DepPlayback, DepRecommendations} {
		h.breakers[dep] = newBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, cfg.Now)
	}
	if cfg.Registerer != nil {
		open := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "marquee_home_circuit_open",
			Help: "1 while the home page's circuit breaker of a dependency is open.",
		}, []string{"dependency"})
		if err := cfg.Registerer.Register(h.degraded); err != nil {
			h.log.Warn("home: metrics not registered", "err", err)
		} else if err := cfg.Registerer.Register(gaugeFunc{open, h}); err != nil {
			h.log.Warn("home: metrics not registered", "err", err)
		}
	}
	return h
}

// gaugeFunc fills the circuit gauge at collection time.
type gaugeFunc struct {
	g *prometheus.GaugeVec
	h *Handler
}

func (f gaugeFunc) Describe(ch chan<- *prometheus.Desc) { f.g.Describe(ch) }

func (f gaugeFunc) Collect(ch chan<- prometheus.Metric) {
	for dep, b := range f.h.breakers {
		v := 0.0
		if b.open() {
			v = 1
		}
		f.g.WithLabelValues(dep).Set(v)
	}
	f.g.Collect(ch)
}

// Page is the home page as answered.
type Page struct {
	ProfileID string `json:"profile_id"`
	Rows      []Row  `json:"rows"`
	// Degraded names the rows served from a fallback or left out, in page
	// order, "profile" first when the profile could not be read.
	Degraded []string `json:"degraded"`
}

// Row is a titled row of cards.
type Row struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Items []Card `json:"items"`
}

// Card is a title as the page shows it. Continue-watching cards carry
// where to resume.
type Card struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Kind           string   `json:"kind"`
	Year           int32    `json:"year"`
	MaturityRating string   `json:"maturity_rating"`
	ArtworkURL     string   `json:"artwork_url"`
	Genres         []string `json:"genres"`
	// PositionSeconds and DurationSeconds are set on continue-watching
	// cards; EpisodeID when the title is a series.
	PositionSeconds *int32 `json:"position_seconds,omitempty"`
	DurationSeconds *int32 `json:"duration_seconds,omitempty"`
	EpisodeID       string `json:"episode_id,omitempty"`
}

// Errors the page answers instead of rows.
var (
	errProfileNotFound = errors.New("home: no such profile")
	errUnauthenticated = errors.New("home: unauthenticated")
)

// ServeHTTP answers GET with the page of the profile_id of the caller.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "method "+r.Method+" not allowed on this route")
		return
	}
	p, ok := principal.Attached(r.Context())
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED", "sign in first")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT", "malformed query string")
		return
	}
	profileID := q.Get("profile_id")
	switch {
	case profileID == "":
		writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid profile_id: is required")
		return
	case !catalogdomain.ValidID(profileID):
		writeError(w, r, http.StatusBadRequest, "INVALID_ARGUMENT", "invalid profile_id: must be 1 to 64 letters, digits, '-' or '_'")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Deadline)
	defer cancel()
	ctx = principal.NewOutgoingContext(ctx, p)
	if id := requestID(w, r); id != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, logging.RequestIDHeader, id)
	}
	page, err := h.page(ctx, profileID)
	switch {
	case errors.Is(err, errProfileNotFound):
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "no such profile")
		return
	case errors.Is(err, errUnauthenticated):
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED", "sign in first")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, page)
}

// answer is the result of a call made in the background.
type answer[T any] struct {
	v   T
	err error
}

func async[T any](fn func() (T, error)) <-chan answer[T] {
	ch := make(chan answer[T], 1)
	go func() {
		v, err := fn()
		ch <- answer[T]{v, err}
	}()
	return ch
}

// call runs fn against dependency dep through its breaker, bounded by the
// call timeout.
func (h *Handler) call(ctx context.Context, dep string, fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	b := h.breakers[dep]
	if !b.allow() {
		return errCircuitOpen
	}
	conn, err := h.dialer.Conn(dep)
	if err != nil {
		b.record(err)
		return err
	}
	timeout, ok := h.cfg.Timeouts[dep]
	if !ok {
		timeout = h.cfg.CallTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = fn(cctx, conn)
	if err != nil && ctx.Err() != nil {
		// The page's deadline passed, or the client went away, before this
		// call's own timeout: that says nothing about dep.
		b.record(context.Canceled)
		return err
	}
	b.record(err)
	return err
}

// failed logs a dependency failure that degrades a row.
func (h *Handler) failed(ctx context.Context, dep, what string, err error) {
	if errors.Is(err, errCircuitOpen) || errors.Is(err, context.Canceled) {
		h.log.DebugContext(ctx, "home: dependency skipped", "dependency", dep, "call", what, "err", err)
		return
	}
	h.log.WarnContext(ctx, "home: dependency failed; degrading its rows", "dependency", dep, "call", what,
		"grpc_code", status.Code(err).String(), "err", err)
}

// page builds the page of profileID; it fails only when the profile is not
// the caller's (or the caller is refused).
func (h *Handler) page(ctx context.Context, profileID string) (*Page, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	level := async(func() (catalogdomain.Level, error) { return h.maturity(ctx, profileID) })
	cw := async(func() (*playbackv1.ContinueWatchingResponse, error) {
		var resp *playbackv1.ContinueWatchingResponse
		err := h.call(ctx, DepPlayback, func(ctx context.Context, c *grpc.ClientConn) (err error) {
			resp, err = playbackv1.NewPlaybackServiceClient(c).ContinueWatching(ctx,
				&playbackv1.ContinueWatchingRequest{ProfileId: profileID, PageSize: int32(h.cfg.RowSize)})
			return err
		})
		return resp, err
	})
	ml := async(func() (*profilesv1.ListMyListResponse, error) {
		var resp *profilesv1.ListMyListResponse
		err := h.call(ctx, DepProfiles, func(ctx context.Context, c *grpc.ClientConn) (err error) {
			resp, err = profilesv1.NewProfilesServiceClient(c).ListMyList(ctx,
				&profilesv1.ListMyListRequest{ProfileId: profileID, PageSize: int32(h.cfg.RowSize)})
			return err
		})
		return resp, err
	})
	recs := async(func() (*recommendationsv1.GetRecommendationsResponse, error) {
		var resp *recommendationsv1.GetRecommendationsResponse
		err := h.call(ctx, DepRecommendations, func(ctx context.Context, c *grpc.ClientConn) (err error) {
			resp, err = recommendationsv1.NewRecommendationsServiceClient(c).GetRecommendations(ctx,
				&recommendationsv1.GetRecommendationsRequest{
					ProfileId:       profileID,
					MaxRows:         int32(min(20, 5+h.cfg.GenreRows)),
					MaxTitlesPerRow: int32(h.cfg.RowSize),
				})
			return err
		})
		return resp, err
	})

	page := &Page{ProfileID: profileID, Rows: []Row{}, Degraded: []string{}}
	lv := <-level
	switch {
	case lv.err == nil:
	case errors.Is(lv.err, errProfileNotFound), errors.Is(lv.err, errUnauthenticated):
		return nil, lv.err
	default:
		h.failed(ctx, DepProfiles, "GetProfile", lv.err)
		lv.v = catalogdomain.LevelKids
		page.Degraded = append(page.Degraded, DegradedProfile)
		h.degraded.WithLabelValues(DegradedProfile).Inc()
	}

	var (
		wg             sync.WaitGroup
		cwRows, mlRows section
		recRows        section
	)
	wg.Go(func() { cwRows = h.continueWatching(ctx, lv.v, <-cw) })
	wg.Go(func() { mlRows = h.myList(ctx, lv.v, <-ml) })
	wg.Go(func() { recRows = h.recommendations(ctx, lv.v, <-recs) })
	wg.Wait()
	for _, s := range []section{cwRows, mlRows, recRows} {
		for _, r := range s.rows {
			if len(r.Items) > 0 {
				page.Rows = append(page.Rows, r)
			}
		}
		for _, d := range s.degraded {
			page.Degraded = append(page.Degraded, d)
			h.degraded.WithLabelValues(rowKind(d)).Inc()
		}
	}
	return page, nil
}

// section is some rows of the page and which of them are degraded.
type section struct {
	rows     []Row
	degraded []string
}

// rowKind is the metric label of a degraded entry.
func rowKind(id string) string {
	switch {
	case strings.HasPrefix(id, RowGenrePrefix):
		return "genre"
	case strings.HasPrefix(id, RowBecausePrefix):
		return "because_you_watched"
	}
	return id
}

// maturity reads the profile's level; errProfileNotFound and
// errUnauthenticated are answers, anything else means unknown.
func (h *Handler) maturity(ctx context.Context, profileID string) (catalogdomain.Level, error) {
	var resp *profilesv1.GetProfileResponse
	err := h.call(ctx, DepProfiles, func(ctx context.Context, c *grpc.ClientConn) (err error) {
		resp, err = profilesv1.NewProfilesServiceClient(c).GetProfile(ctx, &profilesv1.GetProfileRequest{Id: profileID})
		return err
	})
	if err != nil {
		switch status.Code(err) {
		case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument:
			return "", errProfileNotFound
		case codes.Unauthenticated:
			return "", errUnauthenticated
		}
		return "", err
	}
	level, err := catalogdomain.ParseLevel(resp.GetProfile().GetMaturityLevel())
	if err != nil {
		return "", err // treated as unknown: kids
	}
	return level, nil
}

// visible reports whether a catalog title may be on the page at level.
func visible(level catalogdomain.Level, t *catalogv1.Title) bool {
	return t != nil && t.GetAvailable() && catalogdomain.Allows(level, catalogdomain.Rating(t.GetMaturityRating()))
}

func cardOf(t *catalogv1.Title) Card {
	return Card{
		ID: t.GetId(), Name: t.GetName(), Kind: t.GetKind(), Year: t.GetYear(),
		MaturityRating: t.GetMaturityRating(), ArtworkURL: t.GetArtworkUrl(), Genres: nonNil(t.GetGenres()),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// maxBatch is the most ids one BatchGetTitles takes.
const maxBatch = 200

// cards resolves ids to catalog titles at level, by id, in batches of
// maxBatch asked in parallel. The catalog leaves out unknown ids and titles
// above level.
func (h *Handler) cards(ctx context.Context, level catalogdomain.Level, ids []string) (map[string]*catalogv1.Title, error) {
	ids = dedupe(ids)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		out  = map[string]*catalogv1.Title{}
		errs []error
	)
	for len(ids) > 0 {
		batch := ids[:min(len(ids), maxBatch)]
		ids = ids[len(batch):]
		wg.Go(func() {
			var resp *catalogv1.BatchGetTitlesResponse
			err := h.call(ctx, DepCatalog, func(ctx context.Context, c *grpc.ClientConn) (err error) {
				resp, err = catalogv1.NewCatalogServiceClient(c).BatchGetTitles(ctx,
					&catalogv1.BatchGetTitlesRequest{Ids: batch, MaturityLevel: string(level)})
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for _, t := range resp.GetTitles() {
				out[t.GetId()] = t
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (h *Handler) continueWatching(ctx context.Context, level catalogdomain.Level, a answer[*playbackv1.ContinueWatchingResponse]) section {
	degraded := section{degraded: []string{RowContinueWatching}}
	if a.err != nil {
		h.failed(ctx, DepPlayback, "ContinueWatching", a.err)
		return degraded
	}
	items := a.v.GetItems()
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.GetTitleId()
	}
	titles, err := h.cards(ctx, level, ids)
	if err != nil {
		h.failed(ctx, DepCatalog, "BatchGetTitles", err)
		return degraded
	}
	row := Row{ID: RowContinueWatching, Title: "Continue watching", Items: []Card{}}
	seen := map[string]bool{}
	for _, it := range items {
		t := titles[it.GetTitleId()]
		if !visible(level, t) || seen[t.GetId()] || len(row.Items) == h.cfg.RowSize {
			continue
		}
		seen[t.GetId()] = true
		c := cardOf(t)
		pos, dur := it.GetPositionSeconds(), it.GetDurationSeconds()
		c.PositionSeconds, c.DurationSeconds, c.EpisodeID = &pos, &dur, it.GetEpisodeId()
		row.Items = append(row.Items, c)
	}
	return section{rows: []Row{row}}
}

func (h *Handler) myList(ctx context.Context, level catalogdomain.Level, a answer[*profilesv1.ListMyListResponse]) section {
	degraded := section{degraded: []string{RowMyList}}
	if a.err != nil {
		h.failed(ctx, DepProfiles, "ListMyList", a.err)
		return degraded
	}
	var ids []string
	for _, it := range a.v.GetItems() {
		ids = append(ids, it.GetTitleId())
	}
	titles, err := h.cards(ctx, level, ids)
	if err != nil {
		h.failed(ctx, DepCatalog, "BatchGetTitles", err)
		return degraded
	}
	return section{rows: []Row{h.rowOf(RowMyList, "My List", level, dedupe(ids), titles)}}
}

// rowOf builds a row of the visible titles among ids, in order.
func (h *Handler) rowOf(id, title string, level catalogdomain.Level, ids []string, titles map[string]*catalogv1.Title) Row {
	row := Row{ID: id, Title: title, Items: []Card{}}
	for _, tid := range ids {
		if t := titles[tid]; visible(level, t) && len(row.Items) < h.cfg.RowSize {
			row.Items = append(row.Items, cardOf(t))
		}
	}
	return row
}

// recRow is a row as recommendations answered it, renamed for the page.
type recRow struct {
	id, title string
	seed      string // the watched title of a because-you-watched row
	titles    []*recommendationsv1.RecommendedTitle
}

func (r recRow) ids() []string {
	out := make([]string, len(r.titles))
	for i, t := range r.titles {
		out[i] = t.GetId()
	}
	return out
}

// recommendations turns the recommendations answer into the recommended,
// because-you-watched, trending and by-genre rows, or falls back to the
// catalog when it has none.
func (h *Handler) recommendations(ctx context.Context, level catalogdomain.Level, a answer[*recommendationsv1.GetRecommendationsResponse]) section {
	if a.err != nil {
		h.failed(ctx, DepRecommendations, "GetRecommendations", a.err)
		return h.catalogFallback(ctx, level, true)
	}
	var (
		top, trending  *recRow
		because, genre []recRow
	)
	for _, r := range a.v.GetRows() {
		rr := recRow{title: r.GetTitle(), titles: r.GetTitles()}
		switch {
		case r.GetId() == "trending":
			rr.id = RowTrending
			trending = &rr
		case strings.HasPrefix(r.GetId(), "genre:"):
			rr.id = RowGenrePrefix + strings.TrimPrefix(r.GetId(), "genre:")
			if len(genre) < h.cfg.GenreRows {
				genre = append(genre, rr)
			}
		case r.GetReason() == "top_picks" && top == nil:
			rr.id = RowRecommended
			top = &rr
		case r.GetReason() == "because_you_watched" && r.GetSeedTitleId() != "":
			rr.id, rr.seed = RowBecausePrefix+r.GetSeedTitleId(), r.GetSeedTitleId()
			because = append(because, rr)
		}
	}
	if top == nil {
		// No personal pick: recommend a mix of the popular rows.
		rr := recRow{id: RowRecommended, title: "Recommended for you", titles: mix(h.cfg.RowSize, genre)}
		if len(rr.titles) > 0 {
			top = &rr
		}
	} else {
		top.title = "Recommended for you"
	}
	var rows []recRow
	if top != nil {
		rows = append(rows, *top)
	}
	rows = append(rows, because...)
	if trending != nil {
		rows = append(rows, *trending)
	}
	rows = append(rows, genre...)

	var ids []string
	for _, r := range rows {
		ids = append(ids, r.ids()...)
		if r.seed != "" {
			ids = append(ids, r.seed)
		}
	}
	var out section
	titles, err := h.cards(ctx, level, ids)
	if err != nil {
		// The catalog is away: show the titles as recommendations knows
		// them, checked here against the level. A because-you-watched row
		// is left out: its heading names a title whose rating is unknown.
		h.failed(ctx, DepCatalog, "BatchGetTitles", err)
		for _, r := range rows {
			out.degraded = append(out.degraded, r.id)
			if r.seed != "" {
				continue
			}
			row := Row{ID: r.id, Title: r.title, Items: []Card{}}
			for _, t := range r.titles {
				if catalogdomain.Allows(level, catalogdomain.Rating(t.GetMaturityRating())) && len(row.Items) < h.cfg.RowSize {
					row.Items = append(row.Items, Card{ID: t.GetId(), Name: t.GetName(), Kind: t.GetKind(), Year: t.GetYear(),
						MaturityRating: t.GetMaturityRating(), ArtworkURL: t.GetArtworkUrl(), Genres: nonNil(t.GetGenres())})
				}
			}
			out.rows = append(out.rows, row)
		}
		return out
	}
	for _, r := range rows {
		if seed, ok := titles[r.seed]; r.seed != "" && (!ok || !catalogdomain.Allows(level, catalogdomain.Rating(seed.GetMaturityRating()))) {
			continue // never name a title the profile may not see
		}
		out.rows = append(out.rows, h.rowOf(r.id, r.title, level, dedupe(r.ids()), titles))
	}
	if top == nil || len(out.rows[0].Items) == 0 {
		// Recommendations had nothing to recommend (a new system): the
		// catalog's titles stand in.
		fb := h.catalogFallback(ctx, level, false)
		if top != nil {
			out.rows = out.rows[1:]
		}
		out.rows = append(fb.rows, out.rows...)
		out.degraded = append(fb.degraded, out.degraded...)
	}
	return out
}

// mix interleaves the titles of rows, without repeats, up to n.
func mix(n int, rows []recRow) []*recommendationsv1.RecommendedTitle {
	var out []*recommendationsv1.RecommendedTitle
	seen := map[string]bool{}
	for i := 0; len(out) < n; i++ {
		more := false
		for _, r := range rows {
			if i < len(r.titles) {
				more = true
				if t := r.titles[i]; !seen[t.GetId()] && len(out) < n {
					seen[t.GetId()] = true
					out = append(out, t)
				}
			}
		}
		if !more {
			break
		}
	}
	return out
}

// catalogFallback serves the recommended row from the catalog's titles at
// level, and, when all is true (recommendations is away), by-genre rows of
// the genres with the most titles, trending being left out.
func (h *Handler) catalogFallback(ctx context.Context, level catalogdomain.Level, all bool) section {
	list := func(genre string) ([]*catalogv1.Title, error) {
		var resp *catalogv1.ListTitlesResponse
		err := h.call(ctx, DepCatalog, func(ctx context.Context, c *grpc.ClientConn) (err error) {
			resp, err = catalogv1.NewCatalogServiceClient(c).ListTitles(ctx, &catalogv1.ListTitlesRequest{
				Genre: genre, MaturityLevel: string(level), PageSize: int32(h.cfg.RowSize),
			})
			return err
		})
		return resp.GetTitles(), err
	}
	rowFrom := func(id, title string, ts []*catalogv1.Title) Row {
		row := Row{ID: id, Title: title, Items: []Card{}}
		for _, t := range ts {
			if visible(level, t) && len(row.Items) < h.cfg.RowSize {
				row.Items = append(row.Items, cardOf(t))
			}
		}
		return row
	}
	out := section{degraded: []string{RowRecommended}}
	recommended := async(func() ([]*catalogv1.Title, error) { return list("") })
	var genreRows []Row
	if all {
		out.degraded = append(out.degraded, RowTrending)
		genres, err := h.topGenres(ctx)
		if err != nil {
			h.failed(ctx, DepCatalog, "ListGenres", err)
		}
		genreRows = make([]Row, len(genres))
		var wg sync.WaitGroup
		for i, g := range genres {
			wg.Go(func() {
				ts, err := list(g.GetId())
				if err != nil {
					h.failed(ctx, DepCatalog, "ListTitles", err)
				}
				genreRows[i] = rowFrom(RowGenrePrefix+g.GetId(), g.GetName(), ts)
			})
		}
		wg.Wait()
	}
	rec := <-recommended
	if rec.err != nil {
		h.failed(ctx, DepCatalog, "ListTitles", rec.err)
	}
	out.rows = append(out.rows, rowFrom(RowRecommended, "Recommended for you", rec.v))
	for _, r := range genreRows {
		out.rows = append(out.rows, r)
		out.degraded = append(out.degraded, r.ID)
	}
	return out
}

// topGenres returns the catalog's genres with the most titles, up to
// GenreRows.
func (h *Handler) topGenres(ctx context.Context) ([]*catalogv1.Genre, error) {
	var resp *catalogv1.ListGenresResponse
	err := h.call(ctx, DepCatalog, func(ctx context.Context, c *grpc.ClientConn) (err error) {
		resp, err = catalogv1.NewCatalogServiceClient(c).ListGenres(ctx, &catalogv1.ListGenresRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	genres := slices.Clone(resp.GetGenres())
	slices.SortStableFunc(genres, func(a, b *catalogv1.Genre) int { return int(b.GetTitleCount()) - int(a.GetTitleCount()) })
	var out []*catalogv1.Genre
	for _, g := range genres {
		if len(out) == h.cfg.GenreRows {
			break
		}
		if g.GetTitleCount() > 0 && catalogdomain.ValidID(g.GetId()) {
			out = append(out, g)
		}
	}
	return out, nil
}

// requestID is the request's id: the one the gateway put in the context,
// else the X-Request-Id it set on the response.
func requestID(w http.ResponseWriter, r *http.Request) string {
	if id := logging.RequestID(r.Context()); id != "" {
		return id
	}
	if id := w.Header().Get("X-Request-Id"); logging.ValidRequestID(id) {
		return id
	}
	return ""
}

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError writes the product error shape.
func writeError(w http.ResponseWriter, r *http.Request, httpStatus int, code, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, httpStatus, errorBody{errorFields{Code: code, Message: msg, RequestID: requestID(w, r)}})
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs of strings, numbers and slices come here
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	w.Write(append(b, '\n'))
}
