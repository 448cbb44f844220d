// Package store keeps the catalog in the service's own database, SQLite or
// PostgreSQL, behind domain.Repository. Queries are portable SQL except
// full-text search: an FTS5 table on SQLite and a tsvector column with a GIN
// index on PostgreSQL (see migrations/ and searchHits).
//
// Every write of a title goes through SaveTitleTx, inside a transaction,
// so that whatever must happen atomically with it (the outbox event
// marquee.catalog.title_upserted) happens in that same transaction.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is the catalog's schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// TitleSavedHook runs inside the transaction that saved t, after the title
// is written; an error rolls the write back.
type TitleSavedHook func(ctx context.Context, tx *storage.Tx, t domain.Title) error

// Options configure a Store. The zero value is usable.
type Options struct {
	// OnTitleSaved, if set, runs in the transaction of every title write
	// (where the title_upserted event is published to the outbox).
	OnTitleSaved TitleSavedHook
}

// Store is the SQL implementation of domain.Repository.
type Store struct {
	db   *storage.DB
	opts Options
}

var _ domain.Repository = (*Store)(nil)

// New returns a Store over db, which must have been opened with Migrations.
func New(db *storage.DB, opts Options) *Store {
	return &Store{db: db, opts: opts}
}

// CheckSchema reports an error unless the catalog tables exist (that is,
// unless the database was opened with Migrations).
func (s *Store) CheckSchema(ctx context.Context) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM titles LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("catalog store: schema missing (open the database with the catalog migrations): %w", err)
	}
	return nil
}

// args collects query arguments and names their $N placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func (a *args) list(vs []string) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = a.add(v)
	}
	return strings.Join(ph, ", ")
}

const titleColumns = `t.id, t.name, t.kind, t.synopsis, t.year, t.maturity_rating,
	t.duration_seconds, t.rentable, t.media_asset_id, t.available_from, t.available_until`

type scanner interface{ Scan(dest ...any) error }

func scanTitle(sc scanner, extra ...any) (domain.Title, error) {
	var (
		t        domain.Title
		kind     string
		rating   string
		duration int64
		from     int64
		until    sql.NullInt64
	)
	dest := append([]any{&t.ID, &t.Name, &kind, &t.Synopsis, &t.Year, &rating,
		&duration, &t.Rentable, &t.MediaAssetID, &from, &until}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return domain.Title{}, err
	}
	t.Kind = domain.Kind(kind)
	t.Rating = domain.Rating(rating)
	t.Duration = time.Duration(duration) * time.Second
	t.AvailableFrom = time.Unix(from, 0).UTC()
	if until.Valid {
		t.AvailableUntil = time.Unix(until.Int64, 0).UTC()
	}
	return t, nil
}

// Title returns one title with its genres, seasons and episodes.
func (s *Store) Title(ctx context.Context, id string) (domain.Title, error) {
	row := s.db.QueryRow(ctx, "SELECT "+titleColumns+" FROM titles t WHERE t.id = $1", id)
	t, err := scanTitle(row)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Title{}, fmt.Errorf("title %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Title{}, fmt.Errorf("catalog store: get title: %w", err)
	}
	titles := []domain.Title{t}
	if err := s.loadGenres(ctx, titles); err != nil {
		return domain.Title{}, err
	}
	t = titles[0]
	if t.Kind == domain.KindSeries {
		if t.Seasons, err = s.loadSeasons(ctx, id); err != nil {
			return domain.Title{}, err
		}
	}
	return t, nil
}

// Titles returns the titles with the given ids, without seasons, in the
// order of ids (repeated ids repeat), leaving out ids that do not exist.
func (s *Store) Titles(ctx context.Context, ids []string) ([]domain.Title, error) {
	unique := slices.Clone(ids)
	slices.Sort(unique)
	unique = slices.Compact(unique)
	if len(unique) == 0 {
		return nil, nil
	}
	var a args
	rows, err := s.db.Query(ctx, "SELECT "+titleColumns+" FROM titles t WHERE t.id IN ("+a.list(unique)+")", a...)
	if err != nil {
		return nil, fmt.Errorf("catalog store: batch get: %w", err)
	}
	found, err := collectTitles(rows)
	if err != nil {
		return nil, fmt.Errorf("catalog store: batch get: %w", err)
	}
	if err := s.loadGenres(ctx, found); err != nil {
		return nil, err
	}
	byID := make(map[string]domain.Title, len(found))
	for _, t := range found {
		byID[t.ID] = t
	}
	out := make([]domain.Title, 0, len(ids))
	for _, id := range ids {
		if t, ok := byID[id]; ok {
			out = append(out, t)
		}
	}
	return out, nil
}

func collectTitles(rows *sql.Rows) ([]domain.Title, error) {
	defer rows.Close()
	var out []domain.Title
	for rows.Next() {
		t, err := scanTitle(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// filterSQL returns the conditions (each starting with " AND") that apply
// f to the titles aliased t.
func filterSQL(a *args, f domain.Filter) string {
	var b strings.Builder
	if f.Kind != "" {
		b.WriteString(" AND t.kind = " + a.add(string(f.Kind)))
	}
	if f.Level != domain.LevelAdult {
		allowed := f.Level.AllowedRatings()
		if len(allowed) == 0 {
			b.WriteString(" AND 1 = 0") // an unknown level allows nothing
		} else {
			names := make([]string, len(allowed))
			for i, r := range allowed {
				names[i] = string(r)
			}
			b.WriteString(" AND t.maturity_rating IN (" + a.list(names) + ")")
		}
	}
	if f.Genre != "" {
		b.WriteString(" AND EXISTS (SELECT 1 FROM title_genres g WHERE g.title_id = t.id AND g.genre_id = " + a.add(f.Genre) + ")")
	}
	return b.String()
}

// ListTitles returns one page in browse order: (sort_key, id), keyset
// paged, so that titles inserted or removed between pages cause neither
// duplicates nor gaps among the others.
func (s *Store) ListTitles(ctx context.Context, q domain.ListQuery) (domain.Page, error) {
	var a args
	query := "SELECT " + titleColumns + " FROM titles t WHERE 1 = 1" + filterSQL(&a, q.Filter)
	if q.After != nil {
		query += " AND (t.sort_key, t.id) > (" + a.add(q.After.SortKey) + ", " + a.add(q.After.ID) + ")"
	}
	query += " ORDER BY t.sort_key, t.id LIMIT " + a.add(q.Limit+1)
	rows, err := s.db.Query(ctx, query, a...)
	if err != nil {
		return domain.Page{}, fmt.Errorf("catalog store: list titles: %w", err)
	}
	titles, err := collectTitles(rows)
	if err != nil {
		return domain.Page{}, fmt.Errorf("catalog store: list titles: %w", err)
	}
	var page domain.Page
	if len(titles) > q.Limit {
		titles = titles[:q.Limit]
		page.NextPageToken = q.NextPageToken(titles[len(titles)-1])
	}
	if err := s.loadGenres(ctx, titles); err != nil {
		return domain.Page{}, err
	}
	page.Titles = titles
	return page, nil
}

// Ranking bonuses: a title whose name is exactly the words searched for
// comes first, then titles whose name holds every word, then the others;
// within each group, by text relevance (which stays far below 1000).
const (
	exactNameBonus = 2000
	nameBonus      = 1000
)

// searchHits returns the dialect's query for (title_id, score) of the
// titles matching every term as a prefix, a higher score being more
// relevant: titles whose name has every word get nameBonus, then come by
// BM25 (SQLite) or ts_rank (PostgreSQL) over name, genres and synopsis,
// weighted in that order. The terms hold only letters and digits
// (domain.SearchTerms), so they cannot carry query syntax.
func searchHits(d storage.Dialect, a *args, terms []string) string {
	all := make([]string, len(terms))
	inName := make([]string, len(terms))
	bonus := strconv.Itoa(nameBonus)
	if d == storage.Postgres {
		for i, t := range terms {
			all[i] = t + ":*"
			inName[i] = t + ":*A" // A is the weight of the name
		}
		m, n := a.add(strings.Join(all, " & ")), a.add(strings.Join(inName, " & "))
		return "SELECT id AS title_id, ts_rank(search, to_tsquery('simple', " + m + "))::float8" +
			" + CASE WHEN search @@ to_tsquery('simple', " + n + ") THEN " + bonus + " ELSE 0 END AS score" +
			" FROM titles WHERE search @@ to_tsquery('simple', " + m + ")"
	}
	for i, t := range terms {
		all[i] = `"` + t + `"*`
		inName[i] = `name : "` + t + `"*`
	}
	m, n := a.add(strings.Join(all, " ")), a.add(strings.Join(inName, " AND "))
	// bm25 is lower for better matches; its weights follow the columns
	// (title_id, name, genres, synopsis).
	return "SELECT title_id, -bm25(titles_fts, 0.0, 10.0, 4.0, 1.0)" +
		" + CASE WHEN title_id IN (SELECT title_id FROM titles_fts(" + n + ")) THEN " + bonus + " ELSE 0 END AS score" +
		" FROM titles_fts WHERE titles_fts MATCH " + m
}

// SearchTitles returns one page of matches in relevance order (score
// descending, then id), keyset paged on (score, id).
func (s *Store) SearchTitles(ctx context.Context, q domain.SearchQuery) (domain.Page, error) {
	if len(q.Terms) == 0 {
		return domain.Page{}, domain.Invalid("q", "has no words to search for")
	}
	var a args
	query := "WITH hits AS (" + searchHits(s.db.Dialect(), &a, q.Terms) + ")," +
		" ranked AS (SELECT h.title_id, h.score + CASE WHEN t.name_key = " + a.add(q.NameKey()) +
		" THEN " + strconv.Itoa(exactNameBonus) + " ELSE 0 END AS score FROM hits h JOIN titles t ON t.id = h.title_id)" +
		" SELECT " + titleColumns + ", r.score FROM ranked r JOIN titles t ON t.id = r.title_id" +
		" WHERE 1 = 1" + filterSQL(&a, q.Filter)
	if q.After != nil {
		score, id := a.add(q.After.Score), a.add(q.After.ID)
		query += " AND (r.score < " + score + " OR (r.score = " + score + " AND t.id > " + id + "))"
	}
	query += " ORDER BY r.score DESC, t.id LIMIT " + a.add(q.Limit+1)
	rows, err := s.db.Query(ctx, query, a...)
	if err != nil {
		return domain.Page{}, fmt.Errorf("catalog store: search: %w", err)
	}
	defer rows.Close()
	var (
		titles []domain.Title
		scores []float64
	)
	for rows.Next() {
		var score float64
		t, err := scanTitle(rows, &score)
		if err != nil {
			return domain.Page{}, fmt.Errorf("catalog store: search: %w", err)
		}
		titles = append(titles, t)
		scores = append(scores, score)
	}
	if err := rows.Err(); err != nil {
		return domain.Page{}, fmt.Errorf("catalog store: search: %w", err)
	}
	var page domain.Page
	if len(titles) > q.Limit {
		titles = titles[:q.Limit]
		page.NextPageToken = q.NextPageToken(scores[q.Limit-1], titles[q.Limit-1].ID)
	}
	if err := s.loadGenres(ctx, titles); err != nil {
		return domain.Page{}, err
	}
	page.Titles = titles
	return page, nil
}

// loadGenres fills the Genres of titles, primary genre first.
func (s *Store) loadGenres(ctx context.Context, titles []domain.Title) error {
	if len(titles) == 0 {
		return nil
	}
	index := make(map[string][]int, len(titles))
	ids := make([]string, 0, len(titles))
	for i, t := range titles {
		if _, seen := index[t.ID]; !seen {
			ids = append(ids, t.ID)
		}
		index[t.ID] = append(index[t.ID], i)
	}
	var a args
	rows, err := s.db.Query(ctx, "SELECT title_id, genre_id FROM title_genres WHERE title_id IN ("+a.list(ids)+") ORDER BY title_id, position", a...)
	if err != nil {
		return fmt.Errorf("catalog store: title genres: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var titleID, genreID string
		if err := rows.Scan(&titleID, &genreID); err != nil {
			return fmt.Errorf("catalog store: title genres: %w", err)
		}
		for _, i := range index[titleID] {
			titles[i].Genres = append(titles[i].Genres, genreID)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog store: title genres: %w", err)
	}
	return nil
}

func (s *Store) loadSeasons(ctx context.Context, titleID string) ([]domain.Season, error) {
	rows, err := s.db.Query(ctx, "SELECT number, name FROM seasons WHERE title_id = $1 ORDER BY number", titleID)
	if err != nil {
		return nil, fmt.Errorf("catalog store: seasons: %w", err)
	}
	var seasons []domain.Season
	at := map[int]int{}
	for rows.Next() {
		var se domain.Season
		if err := rows.Scan(&se.Number, &se.Name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("catalog store: seasons: %w", err)
		}
		at[se.Number] = len(seasons)
		seasons = append(seasons, se)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog store: seasons: %w", err)
	}
	rows, err = s.db.Query(ctx, `SELECT id, season_number, number, name, synopsis, duration_seconds, media_asset_id
		FROM episodes WHERE title_id = $1 ORDER BY season_number, number`, titleID)
	if err != nil {
		return nil, fmt.Errorf("catalog store: episodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e        domain.Episode
			season   int
			duration int64
		)
		if err := rows.Scan(&e.ID, &season, &e.Number, &e.Name, &e.Synopsis, &duration, &e.MediaAssetID); err != nil {
			return nil, fmt.Errorf("catalog store: episodes: %w", err)
		}
		e.Duration = time.Duration(duration) * time.Second
		if i, ok := at[season]; ok {
			seasons[i].Episodes = append(seasons[i].Episodes, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog store: episodes: %w", err)
	}
	return seasons, nil
}

// Genres returns every genre with its number of titles, ordered by name
// (case-insensitively), then id.
func (s *Store) Genres(ctx context.Context) ([]domain.Genre, error) {
	rows, err := s.db.Query(ctx, `SELECT g.id, g.name, COUNT(tg.title_id)
		FROM genres g LEFT JOIN title_genres tg ON tg.genre_id = g.id
		GROUP BY g.id, g.name`)
	if err != nil {
		return nil, fmt.Errorf("catalog store: genres: %w", err)
	}
	defer rows.Close()
	var out []domain.Genre
	for rows.Next() {
		var g domain.Genre
		if err := rows.Scan(&g.ID, &g.Name, &g.TitleCount); err != nil {
			return nil, fmt.Errorf("catalog store: genres: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog store: genres: %w", err)
	}
	slices.SortFunc(out, func(a, b domain.Genre) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
