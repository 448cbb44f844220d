package saga

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationFS embed.FS

// Migrate creates or upgrades the saga tables (marquee_saga,
// marquee_saga_step, marquee_saga_log) in the owning service's database.
// The owning service calls it once after opening its database, before New:
//
//	db, err := env.OpenDB(ctx, myMigrations)
//	err = saga.Migrate(ctx, db)
//
// Versions are recorded in the platform table marquee_schema under the
// scope "saga", beside the service's own migrations, so the saga schema
// evolves on its own and any service can embed the engine. Concurrent
// starts of several replicas are serialised on PostgreSQL.
func Migrate(ctx context.Context, db *storage.DB) error {
	dir := path.Join("migrations", string(db.Dialect()))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return fmt.Errorf("saga: migrations: %w", err)
	}
	type migration struct {
		version int
		name    string
		sql     string
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("saga: migration %s: want NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("saga: migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for _, m := range ms {
		err := db.InTx(ctx, func(tx *storage.Tx) error {
			if db.Dialect() == storage.Postgres {
				if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(4242)"); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM marquee_schema WHERE scope = 'saga' AND version = $1", m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO marquee_schema (scope, version, name) VALUES ('saga', $1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("saga: migration %s: %w", m.name, err)
		}
	}
	return nil
}
