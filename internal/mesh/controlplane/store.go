package controlplane

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationFS embed.FS

// migrationScope records this package's schema versions in marquee_schema,
// beside those of the database's owner and of package ca.
const migrationScope = "mesh_controlplane"

// PolicyVersion is one stored version of the mesh policy, as the history
// lists it.
type PolicyVersion struct {
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	Author    string    `json:"author"`
}

// store keeps the policy versions in marquee_mesh_policy.
type store struct{ db *storage.DB }

// errVersionTaken is a failed insert of a version that exists: another
// control plane on the same database wrote it first.
var errVersionTaken = errors.New("controlplane: policy version already stored")

// latest returns the highest stored version and its document, or
// sql.ErrNoRows when the store is empty.
func (st store) latest(ctx context.Context) (uint64, []byte, error) {
	var v int64
	var doc string
	err := st.db.QueryRow(ctx, "SELECT version, document FROM marquee_mesh_policy ORDER BY version DESC LIMIT 1").Scan(&v, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, err
	}
	if err != nil {
		return 0, nil, fmt.Errorf("controlplane: load policy: %w", err)
	}
	return uint64(v), []byte(doc), nil
}

// insert stores doc as version v.
func (st store) insert(ctx context.Context, v uint64, doc []byte, author string, at time.Time) error {
	_, err := st.db.Exec(ctx, "INSERT INTO marquee_mesh_policy (version, document, author, created_at) VALUES ($1, $2, $3, $4)",
		int64(v), string(doc), author, at.UTC())
	if storage.IsUniqueViolation(err) {
		return errVersionTaken
	}
	if err != nil {
		return fmt.Errorf("controlplane: store policy version %d: %w", v, err)
	}
	return nil
}

// history returns up to limit versions, latest first.
func (st store) history(ctx context.Context, limit int) ([]PolicyVersion, error) {
	rows, err := st.db.Query(ctx, "SELECT version, created_at, author FROM marquee_mesh_policy ORDER BY version DESC LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("controlplane: policy history: %w", err)
	}
	defer rows.Close()
	out := []PolicyVersion{}
	for rows.Next() {
		var pv PolicyVersion
		var v int64
		if err := rows.Scan(&v, &pv.CreatedAt, &pv.Author); err != nil {
			return nil, fmt.Errorf("controlplane: policy history: %w", err)
		}
		pv.Version, pv.CreatedAt = uint64(v), pv.CreatedAt.UTC()
		out = append(out, pv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("controlplane: policy history: %w", err)
	}
	return out, nil
}

// migrate applies the embedded migrations for db's dialect, each once.
func migrate(ctx context.Context, db *storage.DB) error {
	return db.MigrateScope(ctx, migrationScope, storage.Migrations{FS: migrationFS, Dir: "migrations"})
}
