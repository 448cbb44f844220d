// Package store keeps billing's data in the service's own database, SQLite
// or PostgreSQL: customers, payment methods, charges, refunds, invoices and
// in-flight charge attempts.
//
// Every method takes the storage.Queryer to run on, a *storage.DB or a
// *storage.Tx, so that the service can group writes into one local
// transaction with the saga barrier row and the outbox event (see package
// billing). Methods never hold card numbers: the model they store is
// domain.PaymentMethod (brand, last four digits, expiry, token).
//
// The schema enforces what must never happen even if the code were wrong:
// one succeeded charge per order, one charge per idempotency key, refunded
// totals within 0..charged, and one invoice per charge.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is billing's schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// ErrDuplicate reports an insert whose unique key (id, idempotency key, or
// one succeeded charge per order) is taken.
var ErrDuplicate = errors.New("billing store: duplicate")

// Store reads and writes billing's tables.
type Store struct{}

// New returns a Store.
func New() *Store { return &Store{} }

// CheckSchema reports an error unless billing's tables exist in q.
func (s *Store) CheckSchema(ctx context.Context, q storage.Queryer) error {
	var n int
	if err := q.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM charges LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("billing store: schema missing (open the database with the billing migrations): %w", err)
	}
	return nil
}

// ts is how times are stored: UTC, microseconds, no monotonic reading.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func wrapInsert(what string, err error) error {
	if storage.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s: %w", ErrDuplicate, what, err)
	}
	if err != nil {
		return fmt.Errorf("billing store: insert %s: %w", what, err)
	}
	return nil
}

// args collects query arguments and names their $N placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

type scanner interface{ Scan(dest ...any) error }

// ---- customers ----

// EnsureCustomer creates the customer of accountID unless it exists, and
// returns its id.
func (s *Store) EnsureCustomer(ctx context.Context, q storage.Queryer, accountID, newID string, now time.Time) (string, error) {
	if _, err := q.Exec(ctx, `INSERT INTO customers (account_id, id, created_at) VALUES ($1, $2, $3)
ON CONFLICT (account_id) DO NOTHING`, accountID, newID, ts(now)); err != nil {
		return "", fmt.Errorf("billing store: ensure customer: %w", err)
	}
	var id string
	if err := q.QueryRow(ctx, `SELECT id FROM customers WHERE account_id = $1`, accountID).Scan(&id); err != nil {
		return "", fmt.Errorf("billing store: read customer: %w", err)
	}
	return id, nil
}

// ---- payment methods ----

const pmColumns = `id, account_id, COALESCE(idempotency_key, ''), brand, last4, exp_month, exp_year, token, token_class, created_at`

func scanPM(sc scanner) (domain.PaymentMethod, error) {
	var pm domain.PaymentMethod
	var brand string
	err := sc.Scan(&pm.ID, &pm.AccountID, &pm.IdempotencyKey, &brand, &pm.Last4, &pm.ExpMonth, &pm.ExpYear, &pm.Token, &pm.TokenClass, &pm.CreatedAt)
	pm.Brand = domain.Brand(brand)
	pm.CreatedAt = pm.CreatedAt.UTC()
	return pm, err
}

// InsertPaymentMethod stores pm; its customer must exist. A taken id,
// token or (account, idempotency key) is ErrDuplicate.
func (s *Store) InsertPaymentMethod(ctx context.Context, q storage.Queryer, pm domain.PaymentMethod) error {
	_, err := q.Exec(ctx, `INSERT INTO payment_methods (id, account_id, idempotency_key, brand, last4, exp_month, exp_year, token, token_class, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		pm.ID, pm.AccountID, nullString(pm.IdempotencyKey), string(pm.Brand), pm.Last4, pm.ExpMonth, pm.ExpYear, pm.Token, pm.TokenClass, ts(pm.CreatedAt))
	return wrapInsert("payment method", err)
}

// PaymentMethod returns the payment method id, or ErrNotFound.
func (s *Store) PaymentMethod(ctx context.Context, q storage.Queryer, id string) (domain.PaymentMethod, error) {
	pm, err := scanPM(q.QueryRow(ctx, `SELECT `+pmColumns+` FROM payment_methods WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return pm, fmt.Errorf("payment method %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return pm, fmt.Errorf("billing store: read payment method: %w", err)
	}
	return pm, nil
}

// PaymentMethodByKey returns the payment method the account made with
// idempotency key, or ErrNotFound.
func (s *Store) PaymentMethodByKey(ctx context.Context, q storage.Queryer, accountID, key string) (domain.PaymentMethod, error) {
	pm, err := scanPM(q.QueryRow(ctx, `SELECT `+pmColumns+` FROM payment_methods WHERE account_id = $1 AND idempotency_key = $2`, accountID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return pm, fmt.Errorf("payment method with key %q: %w", key, domain.ErrNotFound)
	}
	if err != nil {
		return pm, fmt.Errorf("billing store: read payment method: %w", err)
	}
	return pm, nil
}

// PaymentMethods returns the payment methods with the given ids (unknown
// ids left out), by id.
func (s *Store) PaymentMethods(ctx context.Context, q storage.Queryer, ids []string) (map[string]domain.PaymentMethod, error) {
	out := map[string]domain.PaymentMethod{}
	if len(ids) == 0 {
		return out, nil
	}
	var a args
	ph := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			ph = append(ph, a.add(id))
		}
	}
	if len(ph) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT `+pmColumns+` FROM payment_methods WHERE id IN (`+strings.Join(ph, ", ")+`)`, a...)
	if err != nil {
		return nil, fmt.Errorf("billing store: read payment methods: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		pm, err := scanPM(rows)
		if err != nil {
			return nil, fmt.Errorf("billing store: read payment methods: %w", err)
		}
		out[pm.ID] = pm
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing store: read payment methods: %w", err)
	}
	return out, nil
}
