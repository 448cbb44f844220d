// Package storage opens a service's own database: SQLite (modernc.org/sqlite,
// WAL) by default, PostgreSQL (pgx) when given a server URL, in which case the
// service gets its own database marquee_<service>, created if missing.
// Versioned migrations embedded in the binary are applied at open.
//
// Queries are written once in portable SQL with PostgreSQL-style positional
// parameters ($1, $2, ...); on SQLite they are rewritten to ?1, ?2, ...
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says where a service's database lives.
type Config struct {
	// Service names the owning service; it names the database file or the
	// PostgreSQL database (marquee_<service>).
	Service string
	// DataDir holds the SQLite file when PostgresURL is empty.
	DataDir string
	// PostgresURL, when set, is a server URL (its database part is replaced).
	PostgresURL string
	// Database overrides the PostgreSQL database name (tests use it).
	Database string
}

// DB is a service's database handle.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	name    string
}

// Queryer is what both DB and Tx offer, so repository code can run inside
// or outside a transaction.
type Queryer interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
	Dialect() Dialect
}

var (
	_ Queryer = (*DB)(nil)
	_ Queryer = (*Tx)(nil)
)

// Open opens (creating if needed) the service's database and applies the
// migrations in m.
func Open(ctx context.Context, cfg Config, m Migrations) (*DB, error) {
	if cfg.Service == "" {
		return nil, errors.New("storage: service name is required")
	}
	var db *DB
	var err error
	if cfg.PostgresURL != "" {
		db, err = openPostgres(ctx, cfg)
	} else {
		db, err = openSQLite(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx, m); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("storage: data directory is required for SQLite")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	path := filepath.Join(cfg.DataDir, cfg.Service+".db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a small pool serves readers.
	sdb.SetMaxOpenConns(4)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	return &DB{sql: sdb, dialect: SQLite, name: path}, nil
}

func openPostgres(ctx context.Context, cfg Config) (*DB, error) {
	name := cfg.Database
	if name == "" {
		name = "marquee_" + strings.ReplaceAll(cfg.Service, "-", "_")
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(name) {
		return nil, fmt.Errorf("storage: bad database name %q", name)
	}
	u, err := url.Parse(cfg.PostgresURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("storage: bad PostgreSQL URL (want postgres://...)")
	}
	if err := createDatabase(ctx, *u, name); err != nil {
		return nil, err
	}
	u.Path = "/" + name
	sdb, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", name, err)
	}
	sdb.SetMaxOpenConns(16)
	sdb.SetMaxIdleConns(16)
	sdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("storage: connect %s: %w", name, err)
	}
	return &DB{sql: sdb, dialect: Postgres, name: name}, nil
}

// createDatabase creates database name on the server of u if it is missing.
func createDatabase(ctx context.Context, u url.URL, name string) error {
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("storage: connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("storage: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil // created concurrently by another instance
	}
	if err != nil {
		return fmt.Errorf("storage: create database %s: %w", name, err)
	}
	return nil
}

// Dialect reports the SQL engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// Name is the SQLite file path or the PostgreSQL database name.
func (db *DB) Name() string { return db.name }

// SQL exposes the underlying pool (for health checks and tests).
func (db *DB) SQL() *sql.DB { return db.sql }

// Close closes the pool.
func (db *DB) Close() error { return db.sql.Close() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Exec runs a statement written with $N parameters.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, rebind(db.dialect, q), args...)
}

// Query runs a query written with $N parameters.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, rebind(db.dialect, q), args...)
}

// QueryRow runs a single-row query written with $N parameters.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, rebind(db.dialect, q), args...)
}

// Tx is a transaction on a DB.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
}

// Dialect reports the SQL engine.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// Exec runs a statement written with $N parameters.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, rebind(tx.dialect, q), args...)
}

// Query runs a query written with $N parameters.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, rebind(tx.dialect, q), args...)
}

// QueryRow runs a single-row query written with $N parameters.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, rebind(tx.dialect, q), args...)
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise. On PostgreSQL a serialization failure or deadlock is
// retried a few times.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.inTx(ctx, fn)
		if err == nil || attempt == 4 || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
}

func (db *DB) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	if err := fn(&Tx{tx: stx, dialect: db.dialect}); err != nil {
		if rbErr := stx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, rbErr)
		}
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// IsUniqueViolation reports whether err is a unique or primary key conflict.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// rebind rewrites $N parameters to ?N for SQLite.
func rebind(d Dialect, q string) string {
	if d != SQLite || !strings.Contains(q, "$") {
		return q
	}
	return placeholder.ReplaceAllString(q, "?$1")
}
