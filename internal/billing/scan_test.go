package billing_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// sqliteFiles returns the bytes of the SQLite database and its WAL, or ""
// on PostgreSQL (whose rows the table dump covers).
func sqliteFiles(t *testing.T, db *storage.DB) string {
	t.Helper()
	if db.Dialect() != storage.SQLite {
		return ""
	}
	var b strings.Builder
	matches, err := filepath.Glob(db.Name() + "*")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no database files at %s: %v", db.Name(), err)
	}
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatalf("read %s: %v", m, err)
		}
		b.Write(data)
	}
	return b.String()
}
