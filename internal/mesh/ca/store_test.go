package ca

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// reopen opens a second handle on db's database, as a second control plane
// would.
func reopen(t *testing.T, db *storage.DB) *storage.DB {
	t.Helper()
	cfg := storage.Config{Service: "control-plane"}
	if db.Dialect() == storage.Postgres {
		cfg.PostgresURL = storagetest.PostgresURL(t)
		cfg.Database = db.Name()
	} else {
		cfg.DataDir = filepath.Dir(db.Name())
	}
	other, err := storage.Open(context.Background(), cfg, storage.Migrations{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

func TestOpenKeepsOneRoot(t *testing.T) {
	storagetest.ForEach(t, "control-plane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		a, err := Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		root, err := x509.ParseCertificate(a.RootDER())
		if err != nil {
			t.Fatal(err)
		}
		if root.Subject.CommonName != "Marquee mesh root" || !root.IsCA {
			t.Errorf("root = %q (CA %v)", root.Subject.CommonName, root.IsCA)
		}
		b, err := Open(ctx, reopen(t, db))
		if err != nil {
			t.Fatal(err)
		}
		if string(a.RootDER()) != string(b.RootDER()) {
			t.Fatal("second Open made a new root")
		}
		// The key is stored too: what one instance signs, the other's
		// roots accept, and the reverse.
		for _, pair := range [][2]*Authority{{a, b}, {b, a}} {
			c, err := pair[0].Issue("catalog", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pair[1].Roots()}); err != nil {
				t.Errorf("cert from one instance fails the other's roots: %v", err)
			}
		}
	})
}

func TestOpenConcurrentlyMakesOneRoot(t *testing.T) {
	storagetest.ForEach(t, "control-plane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		handles := []*storage.DB{db, reopen(t, db), reopen(t, db)}
		const n = 6
		roots := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				a, err := Open(context.Background(), handles[i%len(handles)])
				errs[i] = err
				if err == nil {
					roots[i] = a.RootDER()
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Open %d: %v", i, errs[i])
			}
			if string(roots[i]) != string(roots[0]) {
				t.Fatalf("Open %d returned another root than Open 0", i)
			}
		}
		var count int
		if err := db.QueryRow(context.Background(), "SELECT COUNT(*) FROM marquee_mesh_ca").Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 1 {
			t.Errorf("stored roots = %d, want 1", count)
		}
	})
}

func TestOpenRefusesDamagedRoot(t *testing.T) {
	storagetest.ForEach(t, "control-plane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, err := Open(ctx, db); err != nil {
			t.Fatal(err)
		}
		var keyDER []byte
		if err := db.QueryRow(ctx, "SELECT key_der FROM marquee_mesh_ca WHERE id = 1").Scan(&keyDER); err != nil {
			t.Fatal(err)
		}

		// A key from another root.
		_, otherKey, err := newRoot()
		if err != nil {
			t.Fatal(err)
		}
		otherDER, err := x509.MarshalPKCS8PrivateKey(otherKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, "UPDATE marquee_mesh_ca SET key_der = $1", otherDER); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, db); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("Open with a mismatched key: %v, want a mismatch error", err)
		}

		garbage := append([]byte("secret-looking"), keyDER[:20]...)
		if _, err := db.Exec(ctx, "UPDATE marquee_mesh_ca SET key_der = $1", garbage); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, db)
		if err == nil || !strings.Contains(err.Error(), "not a valid PKCS#8") {
			t.Errorf("Open with a damaged key: %v, want a PKCS#8 error", err)
		}
		if err != nil && strings.Contains(err.Error(), "secret-looking") {
			t.Errorf("error %q quotes the stored key", err)
		}
	})
}
