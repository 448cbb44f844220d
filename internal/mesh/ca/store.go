package ca

import (
	"context"
	"crypto"
	"crypto/x509"
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
// beside those of the database's owner.
const migrationScope = "mesh_ca"

// Open returns the Authority whose root is stored in db, creating the table
// marquee_mesh_ca and the root when they are missing. The root's private
// key is stored in the database (PKCS#8 DER), so the database is as secret
// as the key. Several control planes may open the same empty database at
// once: the first root inserted wins and every one of them loads it.
func Open(ctx context.Context, db *storage.DB) (*Authority, error) {
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	a, err := loadRoot(ctx, db)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		return a, err
	}
	certDER, key, err := newRoot()
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode root key: %w", err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO marquee_mesh_ca (id, cert_der, key_der, created_at)
VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING`, certDER, keyDER, time.Now().UTC()); err != nil {
		return nil, fmt.Errorf("ca: store root: %w", err)
	}
	// Another control plane may have inserted its root first; load whichever
	// is stored.
	a, err = loadRoot(ctx, db)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errors.New("ca: root missing right after it was stored")
	}
	return a, err
}

// loadRoot returns the stored root, or an error wrapping sql.ErrNoRows when
// there is none.
func loadRoot(ctx context.Context, db *storage.DB) (*Authority, error) {
	var certDER, keyDER []byte
	err := db.QueryRow(ctx, "SELECT cert_der, key_der FROM marquee_mesh_ca WHERE id = 1").Scan(&certDER, &keyDER)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("ca: load root: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		// The parse error could quote key bytes; keep them out of logs.
		return nil, errors.New("ca: stored root key is not a valid PKCS#8 key")
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: stored root key is a %T, not a signing key", k)
	}
	a, err := newAuthority(certDER, key)
	if err != nil {
		return nil, fmt.Errorf("ca: stored root: %w", err)
	}
	return a, nil
}

// migrate applies the embedded migrations for db's dialect, each once.
func migrate(ctx context.Context, db *storage.DB) error {
	return db.MigrateScope(ctx, migrationScope, storage.Migrations{FS: migrationFS, Dir: "migrations"})
}
