package storage

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migrations holds a service's schema versions: files named
// NNNN_description.sql under a directory per dialect ("sqlite" and
// "postgres"). A file present in only one directory is an error, so both
// engines always carry the same versions.
type Migrations struct {
	FS fs.FS
	// Dir is the directory inside FS that holds "sqlite" and "postgres".
	Dir string
}

type migration struct {
	version int
	name    string
	sql     string
}

func (m Migrations) load(d Dialect) ([]migration, error) {
	if m.FS == nil {
		return nil, nil
	}
	dir := path.Join(m.Dir, string(d))
	entries, err := fs.ReadDir(m.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("storage: migration %s: want NNNN_description.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("storage: migrations %s and %s share version %d", prev, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(m.FS, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("storage: migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// platformMigrations are the tables every service has: the transactional
// outbox and the consumer inbox (see package events), and the barrier of
// saga participants (see package saga/barrier).
var platformMigrations = []migration{
	{version: 1, name: "outbox", sql: `
CREATE TABLE IF NOT EXISTS marquee_outbox (
	seq          INTEGER PRIMARY KEY %AUTO%,
	id           TEXT NOT NULL UNIQUE,
	subject      TEXT NOT NULL,
	type         TEXT NOT NULL,
	source       TEXT NOT NULL,
	ce_subject   TEXT NOT NULL,
	time         TIMESTAMP NOT NULL,
	data         BYTEA NOT NULL,
	trace_parent TEXT NOT NULL DEFAULT '',
	published_at TIMESTAMP
);
CREATE INDEX IF NOT EXISTS marquee_outbox_unpublished ON marquee_outbox (seq) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS marquee_inbox (
	consumer     TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	processed_at TIMESTAMP NOT NULL,
	PRIMARY KEY (consumer, event_id)
);`},
	{version: 2, name: "saga barrier", sql: `
CREATE TABLE IF NOT EXISTS marquee_barrier (
	saga_id    TEXT NOT NULL,
	step       TEXT NOT NULL,
	op         TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	result     BYTEA,
	created_at TIMESTAMP NOT NULL,
	PRIMARY KEY (saga_id, step, op)
);`},
}

func (db *DB) migrate(ctx context.Context, m Migrations) error {
	own, err := m.load(db.dialect)
	if err != nil {
		return err
	}
	if m.FS != nil {
		other := SQLite
		if db.dialect == SQLite {
			other = Postgres
		}
		theirs, err := m.load(other)
		if err != nil {
			return err
		}
		if len(theirs) != len(own) {
			return fmt.Errorf("storage: %s has %d migrations, %s has %d", db.dialect, len(own), other, len(theirs))
		}
	}
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS marquee_schema (
	scope   TEXT NOT NULL,
	version INTEGER NOT NULL,
	name    TEXT NOT NULL,
	PRIMARY KEY (scope, version))`); err != nil {
		return fmt.Errorf("storage: migrations table: %w", err)
	}
	auto := ""
	if db.dialect == Postgres {
		auto = "GENERATED ALWAYS AS IDENTITY"
	}
	platform := make([]migration, len(platformMigrations))
	for i, p := range platformMigrations {
		p.sql = strings.ReplaceAll(p.sql, "%AUTO%", auto)
		if db.dialect == SQLite {
			p.sql = strings.ReplaceAll(p.sql, "BYTEA", "BLOB")
		}
		platform[i] = p
	}
	if err := db.apply(ctx, "platform", platform); err != nil {
		return err
	}
	return db.apply(ctx, "service", own)
}

// MigrateScope applies m to db under scope, each version once: the schema
// of a component that lives in its owner's database beside the owner's
// own (the saga engine in a service's, the certificate authority in the
// control plane's), so that it evolves on its own. Concurrent starts of
// several replicas are serialised on PostgreSQL.
func (db *DB) MigrateScope(ctx context.Context, scope string, m Migrations) error {
	if scope == "" || scope == "platform" || scope == "service" {
		return fmt.Errorf("storage: migration scope %q is reserved", scope)
	}
	ms, err := m.load(db.dialect)
	if err != nil {
		return err
	}
	return db.apply(ctx, scope, ms)
}

func (db *DB) apply(ctx context.Context, scope string, ms []migration) error {
	for _, m := range ms {
		err := db.InTx(ctx, func(tx *Tx) error {
			if db.dialect == Postgres {
				// Serialise concurrent starts of several replicas.
				if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(4242)"); err != nil {
					return err
				}
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM marquee_schema WHERE scope = $1 AND version = $2", scope, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO marquee_schema (scope, version, name) VALUES ($1, $2, $3)", scope, m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("storage: migration %s %s: %w", scope, m.name, err)
		}
	}
	return nil
}
