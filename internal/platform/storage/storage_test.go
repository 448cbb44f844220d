package storage_test

import (
	"context"
	"os"
	"testing"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

var testMigrations = storage.Migrations{FS: os.DirFS("testdata"), Dir: "migrations"}

func TestOpenMigrateAndQuery(t *testing.T) {
	storagetest.ForEach(t, "storage", testMigrations, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		err := db.InTx(ctx, func(tx *storage.Tx) error {
			_, err := tx.Exec(ctx, "INSERT INTO things (id, n) VALUES ($1, $2), ($3, $4)", "a", 1, "b", 2)
			return err
		})
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		var sum int
		if err := db.QueryRow(ctx, "SELECT SUM(n) FROM things WHERE id IN ($1, $2)", "a", "b").Scan(&sum); err != nil {
			t.Fatalf("select: %v", err)
		}
		if sum != 3 {
			t.Errorf("sum = %d, want 3", sum)
		}
		_, err = db.Exec(ctx, "INSERT INTO things (id, n) VALUES ($1, $2)", "a", 5)
		if !storage.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(%v) = false, want true", err)
		}
	})
}

func TestReopenIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		db, err := storage.Open(ctx, storage.Config{Service: "again", DataDir: dir}, testMigrations)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
}

func TestMismatchedMigrationsRefused(t *testing.T) {
	m := storage.Migrations{FS: os.DirFS("testdata"), Dir: "mismatched"}
	_, err := storage.Open(context.Background(), storage.Config{Service: "bad", DataDir: t.TempDir()}, m)
	if err == nil {
		t.Fatal("Open with sqlite and postgres migrations of different versions succeeded, want error")
	}
}
