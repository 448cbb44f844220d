// Package storagetest runs a test against every storage backend: a fresh
// SQLite file always, and a fresh PostgreSQL database when
// MARQUEE_TEST_POSTGRES names a server.
package storagetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// PostgresURL returns MARQUEE_TEST_POSTGRES, or skips t with a message
// saying how to run it when the variable is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("MARQUEE_TEST_POSTGRES")
	if u == "" {
		t.Skip("PostgreSQL tests skipped: set MARQUEE_TEST_POSTGRES=postgres://user@127.0.0.1:5432/postgres to run them")
	}
	return u
}

var counter atomic.Int64

// ForEach runs fn once per backend, each with a freshly migrated database
// that is dropped when the test ends.
func ForEach(t *testing.T, service string, m storage.Migrations, fn func(t *testing.T, db *storage.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, OpenSQLite(t, service, m))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, OpenPostgres(t, service, m))
	})
}

// OpenSQLite opens a migrated SQLite database in a temporary directory.
func OpenSQLite(t testing.TB, service string, m storage.Migrations) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), storage.Config{Service: service, DataDir: t.TempDir()}, m)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres creates, migrates and returns a uniquely named PostgreSQL
// database on the MARQUEE_TEST_POSTGRES server, dropped at cleanup. It
// fails the test when the server is unreachable.
func OpenPostgres(t testing.TB, service string, m storage.Migrations) *storage.DB {
	t.Helper()
	url := PostgresURL(t)
	ctx := context.Background()
	name := fmt.Sprintf("marqueetest_%s_%d_%d", strings.ReplaceAll(service, "-", "_"), time.Now().UnixNano()%1e9, counter.Add(1))
	db, err := storage.Open(ctx, storage.Config{Service: service, PostgresURL: url, Database: name}, m)
	if err != nil {
		t.Fatalf("open postgres (MARQUEE_TEST_POSTGRES=%s): %v", url, err)
	}
	t.Cleanup(func() {
		db.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return db
}
