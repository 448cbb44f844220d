package saga

import (
	"context"
	"embed"

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
	return db.MigrateScope(ctx, "saga", storage.Migrations{FS: migrationFS, Dir: "migrations"})
}
