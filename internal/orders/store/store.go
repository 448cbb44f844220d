// Package store keeps orders in the orders service's database (SQLite or
// PostgreSQL), beside the saga tables of package saga. Every function
// takes the Queryer to run on, so callers compose them in their own
// transactions (an order and its saga are created in one).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/orders/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

//go:embed migrations
var migrationFS embed.FS

// Migrations is the orders schema.
var Migrations = storage.Migrations{FS: migrationFS, Dir: "migrations"}

// ErrConflict is returned by Insert when the account already has an order
// with that idempotency key, or a pending plan order.
var ErrConflict = errors.New("store: conflicting order")

const columns = `id, account_id, idempotency_key, fingerprint, kind, plan_id, title_id, amount_minor, currency, description,
	status, reason, saga_id, payment_method_id, charge_id, entitlement_id, created_at, updated_at, completed_at`

func scan(sc interface{ Scan(...any) error }) (domain.Order, error) {
	var o domain.Order
	var completed sql.NullTime
	err := sc.Scan(&o.ID, &o.AccountID, &o.IdempotencyKey, &o.Fingerprint, &o.Kind, &o.PlanID, &o.TitleID, &o.AmountMinor,
		&o.Currency, &o.Description, &o.Status, &o.Reason, &o.SagaID, &o.PaymentMethodID, &o.ChargeID, &o.EntitlementID,
		&o.CreatedAt, &o.UpdatedAt, &completed)
	if err != nil {
		return o, err
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	if completed.Valid {
		o.CompletedAt = completed.Time.UTC()
	}
	return o, nil
}

func one(q storage.Queryer, ctx context.Context, where string, args ...any) (domain.Order, error) {
	o, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM orders WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.ErrNotFound
	}
	if err != nil {
		return o, fmt.Errorf("store: read order: %w", err)
	}
	return o, nil
}

// ts is how times are stored: UTC at microsecond precision.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Insert records a new order. A unique conflict (same account and key, or
// a second pending plan order) is ErrConflict; inside a PostgreSQL
// transaction it aborts the transaction, so callers roll back and look.
func Insert(ctx context.Context, tx *storage.Tx, o domain.Order) error {
	var completed any
	if !o.CompletedAt.IsZero() {
		completed = ts(o.CompletedAt)
	}
	_, err := tx.Exec(ctx, `INSERT INTO orders (`+columns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		o.ID, o.AccountID, o.IdempotencyKey, o.Fingerprint, o.Kind, o.PlanID, o.TitleID, o.AmountMinor, o.Currency, o.Description,
		o.Status, o.Reason, o.SagaID, o.PaymentMethodID, o.ChargeID, o.EntitlementID, ts(o.CreatedAt), ts(o.UpdatedAt), completed)
	if storage.IsUniqueViolation(err) {
		return ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: insert order: %w", err)
	}
	return nil
}

// Get returns order id, domain.ErrNotFound if none.
func Get(ctx context.Context, q storage.Queryer, id string) (domain.Order, error) {
	return one(q, ctx, `id = $1`, id)
}

// ByKey returns the account's order made with idempotency key.
func ByKey(ctx context.Context, q storage.Queryer, accountID, key string) (domain.Order, error) {
	return one(q, ctx, `account_id = $1 AND idempotency_key = $2`, accountID, key)
}

// BySaga returns the order whose saga is sagaID.
func BySaga(ctx context.Context, q storage.Queryer, sagaID string) (domain.Order, error) {
	return one(q, ctx, `saga_id = $1`, sagaID)
}

// HasPendingPlan reports whether the account has a PENDING plan order.
func HasPendingPlan(ctx context.Context, q storage.Queryer, accountID string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM orders WHERE account_id = $1 AND kind = 'plan' AND status = 'PENDING'`, accountID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: pending plan orders: %w", err)
	}
	return n > 0, nil
}

// Finish records the outcome of order id's saga. Only a PENDING order
// changes; it reports whether this call changed it.
func Finish(ctx context.Context, tx *storage.Tx, id, status, reason, chargeID, entitlementID string, at time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE orders SET status = $1, reason = $2, charge_id = $3, entitlement_id = $4,
	updated_at = $5, completed_at = $5 WHERE id = $6 AND status = 'PENDING'`, status, reason, chargeID, entitlementID, ts(at), id)
	if err != nil {
		return false, fmt.Errorf("store: finish order %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: finish order %s: %w", id, err)
	}
	return n == 1, nil
}

// List returns the account's orders newest first, optionally in one
// status, after the page token, and the next token ("" on the last page).
func List(ctx context.Context, q storage.Queryer, accountID, status string, limit int, after *domain.PageToken) ([]domain.Order, string, error) {
	where := []string{"account_id = $1"}
	args := []any{accountID}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if status != "" {
		where = append(where, "status = "+arg(status))
	}
	if after != nil {
		t, i := arg(ts(after.CreatedAt)), arg(after.ID)
		where = append(where, "(created_at < "+t+" OR (created_at = "+t+" AND id < "+i+"))")
	}
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM orders WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list orders: %w", err)
	}
	defer rows.Close()
	var out []domain.Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("store: list orders: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("store: list orders: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = domain.PageToken{CreatedAt: last.CreatedAt, ID: last.ID}.Encode()
	}
	return out, next, nil
}
