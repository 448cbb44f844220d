package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// SaveTitle inserts or replaces t in a transaction of its own (see
// SaveTitleTx).
func (s *Store) SaveTitle(ctx context.Context, t domain.Title) error {
	if err := t.Validate(); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *storage.Tx) error { return s.SaveTitleTx(ctx, tx, t) })
}

// SaveTitleTx is the one write path of titles: it validates t, then inserts
// or replaces the title, its genres, seasons and episodes in tx, then runs
// the OnTitleSaved hook in the same transaction. The event
// marquee.catalog.title_upserted is to be published to the outbox here (by
// the hook), so that it is recorded if and only if the write commits.
//
// Its genres must exist (an unknown one is an invalid argument), and its
// episode ids must not belong to another title.
func (s *Store) SaveTitleTx(ctx context.Context, tx *storage.Tx, t domain.Title) error {
	if err := t.Validate(); err != nil {
		return err
	}
	names, err := genreNames(ctx, tx, t.Genres)
	if err != nil {
		return err
	}
	var until any // NULL when the window has no end
	if !t.AvailableUntil.IsZero() {
		until = t.AvailableUntil.Unix()
	}
	_, err = tx.Exec(ctx, `INSERT INTO titles (id, name, sort_key, kind, synopsis, year, maturity_rating,
			duration_seconds, rentable, media_asset_id, available_from, available_until, name_key, genre_names)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO UPDATE SET
			name = excluded.name, sort_key = excluded.sort_key, kind = excluded.kind,
			synopsis = excluded.synopsis, year = excluded.year, maturity_rating = excluded.maturity_rating,
			duration_seconds = excluded.duration_seconds, rentable = excluded.rentable,
			media_asset_id = excluded.media_asset_id, available_from = excluded.available_from,
			available_until = excluded.available_until, name_key = excluded.name_key,
			genre_names = excluded.genre_names`,
		t.ID, t.Name, domain.SortKey(t.Name), string(t.Kind), t.Synopsis, t.Year, string(t.Rating),
		int64(t.Duration.Seconds()), t.Rentable, t.MediaAssetID, t.AvailableFrom.Unix(), until,
		domain.NameKey(t.Name), strings.Join(names, " "))
	if err != nil {
		return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
	}
	for _, stmt := range []string{
		"DELETE FROM title_genres WHERE title_id = $1",
		"DELETE FROM episodes WHERE title_id = $1",
		"DELETE FROM seasons WHERE title_id = $1",
	} {
		if _, err := tx.Exec(ctx, stmt, t.ID); err != nil {
			return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
		}
	}
	for i, g := range t.Genres {
		if _, err := tx.Exec(ctx, "INSERT INTO title_genres (title_id, genre_id, position) VALUES ($1, $2, $3)", t.ID, g, i); err != nil {
			return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
		}
	}
	for i, se := range t.Seasons {
		if _, err := tx.Exec(ctx, "INSERT INTO seasons (title_id, number, name) VALUES ($1, $2, $3)", t.ID, se.Number, se.Name); err != nil {
			return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
		}
		for j, e := range se.Episodes {
			_, err := tx.Exec(ctx, `INSERT INTO episodes (id, title_id, season_number, number, name, synopsis, duration_seconds, media_asset_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				e.ID, t.ID, se.Number, e.Number, e.Name, e.Synopsis, int64(e.Duration.Seconds()), e.MediaAssetID)
			if storage.IsUniqueViolation(err) {
				return domain.Invalid(fmt.Sprintf("seasons[%d].episodes[%d].id", i, j), "episode id %q belongs to another title", e.ID)
			}
			if err != nil {
				return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
			}
		}
	}
	if s.opts.OnTitleSaved != nil {
		if err := s.opts.OnTitleSaved(ctx, tx, t); err != nil {
			return fmt.Errorf("catalog store: save title %s: %w", t.ID, err)
		}
	}
	return nil
}

// genreNames returns the names of the genre ids, in order, or an invalid
// argument naming the first unknown id.
func genreNames(ctx context.Context, q storage.Queryer, ids []string) ([]string, error) {
	var a args
	rows, err := q.Query(ctx, "SELECT id, name FROM genres WHERE id IN ("+a.list(ids)+")", a...)
	if err != nil {
		return nil, fmt.Errorf("catalog store: genres: %w", err)
	}
	defer rows.Close()
	byID := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("catalog store: genres: %w", err)
		}
		byID[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog store: genres: %w", err)
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		name, ok := byID[id]
		if !ok {
			return nil, domain.Invalid(fmt.Sprintf("genres[%d]", i), "unknown genre %q", id)
		}
		names[i] = name
	}
	return names, nil
}

// SaveGenre inserts a genre or renames it, in a transaction of its own.
func (s *Store) SaveGenre(ctx context.Context, g domain.Genre) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *storage.Tx) error { return s.SaveGenreTx(ctx, tx, g) })
}

// SaveGenreTx inserts a genre or renames it in tx. A rename refreshes the
// search text of the genre's titles.
func (s *Store) SaveGenreTx(ctx context.Context, tx *storage.Tx, g domain.Genre) error {
	if err := g.Validate(); err != nil {
		return err
	}
	var old string
	err := tx.QueryRow(ctx, "SELECT name FROM genres WHERE id = $1", g.ID).Scan(&old)
	switch {
	case err == nil && old == g.Name:
		return nil
	case err == nil:
		if _, err := tx.Exec(ctx, "UPDATE genres SET name = $1 WHERE id = $2", g.Name, g.ID); err != nil {
			return fmt.Errorf("catalog store: rename genre %s: %w", g.ID, err)
		}
		return refreshGenreNames(ctx, tx, g.ID)
	case isNoRows(err):
		// DO NOTHING: another transaction may insert the same genre first.
		if _, err := tx.Exec(ctx, "INSERT INTO genres (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", g.ID, g.Name); err != nil {
			return fmt.Errorf("catalog store: insert genre %s: %w", g.ID, err)
		}
		return nil
	default:
		return fmt.Errorf("catalog store: genre %s: %w", g.ID, err)
	}
}

// refreshGenreNames rewrites titles.genre_names of the titles in genre.
func refreshGenreNames(ctx context.Context, tx *storage.Tx, genre string) error {
	rows, err := tx.Query(ctx, `SELECT tg.title_id, g.name FROM title_genres tg JOIN genres g ON g.id = tg.genre_id
		WHERE tg.title_id IN (SELECT title_id FROM title_genres WHERE genre_id = $1)
		ORDER BY tg.title_id, tg.position`, genre)
	if err != nil {
		return fmt.Errorf("catalog store: refresh genre names: %w", err)
	}
	names := map[string][]string{}
	var order []string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return fmt.Errorf("catalog store: refresh genre names: %w", err)
		}
		if _, ok := names[id]; !ok {
			order = append(order, id)
		}
		names[id] = append(names[id], name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog store: refresh genre names: %w", err)
	}
	for _, id := range order {
		if _, err := tx.Exec(ctx, "UPDATE titles SET genre_names = $1 WHERE id = $2", strings.Join(names[id], " "), id); err != nil {
			return fmt.Errorf("catalog store: refresh genre names: %w", err)
		}
	}
	return nil
}

// Empty reports whether the catalog has no title.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	return empty(ctx, s.db)
}

func empty(ctx context.Context, q storage.Queryer) (bool, error) {
	var n int
	if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM titles LIMIT 1) x").Scan(&n); err != nil {
		return false, fmt.Errorf("catalog store: count titles: %w", err)
	}
	return n == 0, nil
}

// seedLock is the PostgreSQL advisory lock that serialises seeding.
const seedLock = 0x6361746c67 // "catlg"

// SeedIfEmpty saves genres and titles in one transaction when the catalog
// has no title, and reports whether it did. Instances seeding at once are
// serialised (SQLite transactions take the write lock when they begin; on
// PostgreSQL an advisory lock is taken first), so exactly one seeds.
func (s *Store) SeedIfEmpty(ctx context.Context, genres []domain.Genre, titles []domain.Title) (bool, error) {
	seeded := false
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		seeded = false
		if tx.Dialect() == storage.Postgres {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(seedLock)); err != nil {
				return err
			}
		}
		isEmpty, err := empty(ctx, tx)
		if err != nil || !isEmpty {
			return err
		}
		for _, g := range genres {
			if err := s.SaveGenreTx(ctx, tx, g); err != nil {
				return err
			}
		}
		for _, t := range titles {
			if err := s.SaveTitleTx(ctx, tx, t); err != nil {
				return err
			}
		}
		seeded = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("catalog store: seed: %w", err)
	}
	return seeded, nil
}
