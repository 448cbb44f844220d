// Package store keeps the recommendations projection in the service's own
// database, SQLite or PostgreSQL: its copy of the catalog, the profile ×
// title view matrix, per-title viewers and plays, plays per hour for
// trending, and co-view counts for item-to-item similarity. It is written
// only by the event handlers (ApplyTitle, ApplyViewing), each inside the
// consumer's transaction, and read by the gRPC service.
//
// Co-view counts are kept incrementally: when a profile views a title for
// the first time, the pair (title, other) gains a co-viewer for each other
// title the profile viewed (its MaxHistory most recent ones), in both
// orders. Together with the titles' viewer counts this is everything the
// cosine similarity of domain.Cosine needs.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is the recommendations schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// MaxHistory is how many of a profile's most recent titles a new view is
// paired with in the co-view counts.
const MaxHistory = 1000

// pairsPerStatement bounds the rows of one co-view upsert.
const pairsPerStatement = 200

// Store is the projection's repository.
type Store struct {
	db *storage.DB
}

// New returns a Store over db, which must have been opened with Migrations.
func New(db *storage.DB) *Store { return &Store{db: db} }

// CheckSchema reports an error unless the projection's tables exist.
func (s *Store) CheckSchema(ctx context.Context) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM rec_titles LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("recommendations store: schema missing (open the database with store.Migrations): %w", err)
	}
	return nil
}

// ts is a time as stored: UTC at microsecond precision (PostgreSQL's).
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ts(t)
}

// ApplyTitle writes t into the catalog projection in tx, unless the
// projection already holds the title from a newer event (t.Version). It
// reports whether it wrote.
func (s *Store) ApplyTitle(ctx context.Context, tx *storage.Tx, t domain.Title) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO rec_titles (id, name, kind, artwork_url, maturity_rating, genres, year,
	available_from, available_until, available, last_episode_id, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, artwork_url = excluded.artwork_url,
	maturity_rating = excluded.maturity_rating, genres = excluded.genres, year = excluded.year,
	available_from = excluded.available_from, available_until = excluded.available_until,
	available = excluded.available, last_episode_id = excluded.last_episode_id, version = excluded.version
WHERE rec_titles.version <= excluded.version`,
		t.ID, t.Name, t.Kind, t.ArtworkURL, string(t.Rating), strings.Join(t.Genres, ","), t.Year,
		nullTime(t.AvailableFrom), nullTime(t.AvailableUntil), t.Available, t.LastEpisodeID, ts(t.Version))
	if err != nil {
		return false, fmt.Errorf("recommendations store: save title %s: %w", t.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("recommendations store: save title %s: %w", t.ID, err)
	}
	return n > 0, nil
}

const titleColumns = `id, name, kind, artwork_url, maturity_rating, genres, year,
	available_from, available_until, available, last_episode_id, version`

type scanner interface{ Scan(dest ...any) error }

func scanTitle(sc scanner) (domain.Title, error) {
	var (
		t           domain.Title
		rating      string
		genres      string
		from, until sql.NullTime
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Kind, &t.ArtworkURL, &rating, &genres, &t.Year,
		&from, &until, &t.Available, &t.LastEpisodeID, &t.Version); err != nil {
		return t, err
	}
	t.Rating = catalog.Rating(rating)
	if genres != "" {
		t.Genres = strings.Split(genres, ",")
	}
	if from.Valid {
		t.AvailableFrom = from.Time.UTC()
	}
	if until.Valid {
		t.AvailableUntil = until.Time.UTC()
	}
	t.Version = t.Version.UTC()
	return t, nil
}

// Title returns the projection of one title; ok is false when it has none.
func (s *Store) Title(ctx context.Context, id string) (t domain.Title, ok bool, err error) {
	return title(ctx, s.db, id)
}

func title(ctx context.Context, q storage.Queryer, id string) (domain.Title, bool, error) {
	t, err := scanTitle(q.QueryRow(ctx, "SELECT "+titleColumns+" FROM rec_titles WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("recommendations store: title %s: %w", id, err)
	}
	return t, true, nil
}

// Titles returns the whole catalog projection.
func (s *Store) Titles(ctx context.Context) ([]domain.Title, error) {
	rows, err := s.db.Query(ctx, "SELECT "+titleColumns+" FROM rec_titles")
	if err != nil {
		return nil, fmt.Errorf("recommendations store: titles: %w", err)
	}
	defer rows.Close()
	var out []domain.Title
	for rows.Next() {
		t, err := scanTitle(rows)
		if err != nil {
			return nil, fmt.Errorf("recommendations store: titles: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommendations store: titles: %w", err)
	}
	return out, nil
}

// ApplyViewing folds a viewing event into the projection in tx (see
// domain.Apply) and returns the view and effect. It first touches the
// profile's row in rec_profiles, which serialises concurrent events of one
// profile (a row lock on PostgreSQL; SQLite has one writer), so that the
// co-view counts never miss a pair.
func (s *Store) ApplyViewing(ctx context.Context, tx *storage.Tx, ev domain.ViewingEvent) (domain.View, domain.Effect, error) {
	ev.At = ts(ev.At)
	fail := func(what string, err error) (domain.View, domain.Effect, error) {
		return domain.View{}, domain.Effect{}, fmt.Errorf("recommendations store: %s (profile %s, title %s): %w", what, ev.ProfileID, ev.TitleID, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rec_profiles (profile_id, account_id, events) VALUES ($1, $2, 1)
ON CONFLICT (profile_id) DO UPDATE SET events = rec_profiles.events + 1`, ev.ProfileID, ev.AccountID); err != nil {
		return fail("lock profile", err)
	}
	prev, found, err := view(ctx, tx, ev.ProfileID, ev.TitleID)
	if err != nil {
		return fail("read view", err)
	}
	t, known, err := title(ctx, tx, ev.TitleID)
	if err != nil {
		return fail("read title", err)
	}
	var pv *domain.View
	if found {
		pv = &prev
	}
	var pt *domain.Title
	if known {
		pt = &t
	}
	next, eff := domain.Apply(pv, ev, pt)

	var others []string
	if eff.NewViewer {
		if others, err = s.recentTitles(ctx, tx, ev.ProfileID, MaxHistory); err != nil {
			return fail("read history", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rec_views (profile_id, title_id, account_id, first_at, last_at, last_play_at,
	plays, position_seconds, duration_seconds, episode_id, finished)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (profile_id, title_id) DO UPDATE SET account_id = excluded.account_id, first_at = excluded.first_at,
	last_at = excluded.last_at, last_play_at = excluded.last_play_at, plays = excluded.plays,
	position_seconds = excluded.position_seconds, duration_seconds = excluded.duration_seconds,
	episode_id = excluded.episode_id, finished = excluded.finished`,
		next.ProfileID, next.TitleID, next.AccountID, ts(next.FirstAt), ts(next.LastAt), ts(next.LastPlayAt),
		next.Plays, next.Position, next.Duration, next.EpisodeID, next.Finished); err != nil {
		return fail("save view", err)
	}
	viewers, plays := 0, 0
	if eff.NewViewer {
		viewers = 1
	}
	if eff.Play {
		plays = 1
		if _, err := tx.Exec(ctx, `INSERT INTO rec_activity (title_id, bucket, plays) VALUES ($1, $2, 1)
ON CONFLICT (title_id, bucket) DO UPDATE SET plays = rec_activity.plays + 1`, ev.TitleID, domain.Bucket(ev.At)); err != nil {
			return fail("count play", err)
		}
	}
	if viewers+plays > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO rec_title_stats (title_id, viewers, plays) VALUES ($1, $2, $3)
ON CONFLICT (title_id) DO UPDATE SET viewers = rec_title_stats.viewers + excluded.viewers,
	plays = rec_title_stats.plays + excluded.plays`, ev.TitleID, viewers, plays); err != nil {
			return fail("count viewer", err)
		}
	}
	if err := addCoViews(ctx, tx, ev.TitleID, others); err != nil {
		return fail("count co-views", err)
	}
	return next, eff, nil
}

// recentTitles returns the ids of the titles profile viewed, newest first.
func (s *Store) recentTitles(ctx context.Context, q storage.Queryer, profile string, limit int) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT title_id FROM rec_views WHERE profile_id = $1
ORDER BY last_at DESC, title_id LIMIT $2`, profile, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// addCoViews adds one co-viewer to (title, o) and (o, title) for each o.
func addCoViews(ctx context.Context, tx *storage.Tx, title string, others []string) error {
	var pairs [][2]string
	for _, o := range others {
		if o != title {
			pairs = append(pairs, [2]string{title, o}, [2]string{o, title})
		}
	}
	for len(pairs) > 0 {
		chunk := pairs[:min(len(pairs), pairsPerStatement)]
		pairs = pairs[len(chunk):]
		var b strings.Builder
		args := make([]any, 0, 2*len(chunk))
		b.WriteString("INSERT INTO rec_coviews (title_a, title_b, viewers) VALUES ")
		for i, p := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($%d, $%d, 1)", 2*i+1, 2*i+2)
			args = append(args, p[0], p[1])
		}
		b.WriteString(" ON CONFLICT (title_a, title_b) DO UPDATE SET viewers = rec_coviews.viewers + 1")
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

const viewColumns = `profile_id, title_id, account_id, first_at, last_at, last_play_at, plays,
	position_seconds, duration_seconds, episode_id, finished`

func scanView(sc scanner) (domain.View, error) {
	var v domain.View
	err := sc.Scan(&v.ProfileID, &v.TitleID, &v.AccountID, &v.FirstAt, &v.LastAt, &v.LastPlayAt, &v.Plays,
		&v.Position, &v.Duration, &v.EpisodeID, &v.Finished)
	v.FirstAt, v.LastAt, v.LastPlayAt = v.FirstAt.UTC(), v.LastAt.UTC(), v.LastPlayAt.UTC()
	return v, err
}

func view(ctx context.Context, q storage.Queryer, profile, title string) (domain.View, bool, error) {
	v, err := scanView(q.QueryRow(ctx, "SELECT "+viewColumns+" FROM rec_views WHERE profile_id = $1 AND title_id = $2", profile, title))
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	return v, err == nil, err
}

// View returns the profile's view of a title; ok is false when it has none.
func (s *Store) View(ctx context.Context, profile, title string) (v domain.View, ok bool, err error) {
	v, ok, err = view(ctx, s.db, profile, title)
	if err != nil {
		err = fmt.Errorf("recommendations store: view: %w", err)
	}
	return v, ok, err
}

// History returns up to limit of the profile's views, newest first.
func (s *Store) History(ctx context.Context, profile string, limit int) ([]domain.View, error) {
	rows, err := s.db.Query(ctx, "SELECT "+viewColumns+` FROM rec_views WHERE profile_id = $1
ORDER BY last_at DESC, title_id LIMIT $2`, profile, limit)
	if err != nil {
		return nil, fmt.Errorf("recommendations store: history: %w", err)
	}
	defer rows.Close()
	var out []domain.View
	for rows.Next() {
		v, err := scanView(rows)
		if err != nil {
			return nil, fmt.Errorf("recommendations store: history: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommendations store: history: %w", err)
	}
	return out, nil
}

// Stats are a title's counters.
type Stats struct {
	Viewers int
	Plays   int
}

// Stats returns every title's counters, by title id.
func (s *Store) Stats(ctx context.Context) (map[string]Stats, error) {
	rows, err := s.db.Query(ctx, "SELECT title_id, viewers, plays FROM rec_title_stats")
	if err != nil {
		return nil, fmt.Errorf("recommendations store: stats: %w", err)
	}
	defer rows.Close()
	out := map[string]Stats{}
	for rows.Next() {
		var id string
		var st Stats
		if err := rows.Scan(&id, &st.Viewers, &st.Plays); err != nil {
			return nil, fmt.Errorf("recommendations store: stats: %w", err)
		}
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommendations store: stats: %w", err)
	}
	return out, nil
}

// Activity returns the plays per title and bucket from since on.
func (s *Store) Activity(ctx context.Context, since time.Time) ([]domain.Activity, error) {
	rows, err := s.db.Query(ctx, "SELECT title_id, bucket, plays FROM rec_activity WHERE bucket >= $1", domain.Bucket(since))
	if err != nil {
		return nil, fmt.Errorf("recommendations store: activity: %w", err)
	}
	defer rows.Close()
	var out []domain.Activity
	for rows.Next() {
		var a domain.Activity
		if err := rows.Scan(&a.TitleID, &a.Bucket, &a.Plays); err != nil {
			return nil, fmt.Errorf("recommendations store: activity: %w", err)
		}
		a.Bucket = a.Bucket.UTC()
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommendations store: activity: %w", err)
	}
	return out, nil
}

// PruneActivity deletes the play counts of buckets before before, which
// trending no longer reads; it returns how many it deleted.
func (s *Store) PruneActivity(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, "DELETE FROM rec_activity WHERE bucket < $1", domain.Bucket(before))
	if err != nil {
		return 0, fmt.Errorf("recommendations store: prune activity: %w", err)
	}
	return res.RowsAffected()
}

// CoViews returns, for each seed, up to perSeed of the titles co-viewed
// with it, most similar first, with the counts their similarity is computed
// from.
func (s *Store) CoViews(ctx context.Context, seeds []string, perSeed int) ([]domain.CoView, error) {
	if len(seeds) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(seeds)+1)
	ph := make([]string, len(seeds))
	for i, id := range seeds {
		args = append(args, id)
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	args = append(args, perSeed)
	// The rank orders by cosine squared, which orders as the cosine and
	// needs no square root (SQLite may lack one).
	q := `SELECT title_a, title_b, both_viewers, a_viewers, b_viewers FROM (
	SELECT c.title_a, c.title_b, c.viewers AS both_viewers, sa.viewers AS a_viewers, sb.viewers AS b_viewers,
		ROW_NUMBER() OVER (PARTITION BY c.title_a
			ORDER BY (c.viewers * 1.0 * c.viewers) / (sa.viewers * 1.0 * sb.viewers) DESC, c.title_b) AS pos
	FROM rec_coviews c
	JOIN rec_title_stats sa ON sa.title_id = c.title_a
	JOIN rec_title_stats sb ON sb.title_id = c.title_b
	WHERE c.title_a IN (` + strings.Join(ph, ", ") + `) AND sa.viewers > 0 AND sb.viewers > 0
) ranked WHERE pos <= $` + strconv.Itoa(len(args)) + ` ORDER BY title_a, pos`
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("recommendations store: co-views: %w", err)
	}
	defer rows.Close()
	var out []domain.CoView
	for rows.Next() {
		var c domain.CoView
		if err := rows.Scan(&c.Seed, &c.Other, &c.Both, &c.SeedViewers, &c.OtherViewers); err != nil {
			return nil, fmt.Errorf("recommendations store: co-views: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recommendations store: co-views: %w", err)
	}
	return out, nil
}
