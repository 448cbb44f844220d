package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/billing/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// ---- charges ----

const chargeColumns = `id, idempotency_key, saga_id, order_id, account_id, amount_minor, currency, description,
	status, decline_code, COALESCE(payment_method_id, ''), processor_ref, refunded_minor, created_at`

func scanCharge(sc scanner) (domain.Charge, error) {
	var (
		c                         domain.Charge
		currency, status, decline string
		refunded                  int64
	)
	err := sc.Scan(&c.ID, &c.IdempotencyKey, &c.SagaID, &c.OrderID, &c.AccountID, &c.Amount.Minor, &currency, &c.Description,
		&status, &decline, &c.PaymentMethodID, &c.ProcessorRef, &refunded, &c.CreatedAt)
	c.Amount.Currency = domain.Currency(currency)
	c.Refunded = domain.NewMoney(refunded, c.Amount.Currency)
	c.Status = domain.ChargeStatus(status)
	c.DeclineCode = domain.DeclineCode(decline)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

// InsertCharge stores c (its Refunded must be zero). A taken id or
// idempotency key, or a second succeeded charge of the order, is
// ErrDuplicate.
func (s *Store) InsertCharge(ctx context.Context, q storage.Queryer, c domain.Charge) error {
	if !c.Refunded.IsZero() {
		return fmt.Errorf("billing store: insert charge %s: a new charge has nothing refunded", c.ID)
	}
	_, err := q.Exec(ctx, `INSERT INTO charges (id, idempotency_key, saga_id, order_id, account_id, amount_minor, currency,
	description, status, decline_code, payment_method_id, processor_ref, refunded_minor, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13)`,
		c.ID, c.IdempotencyKey, c.SagaID, c.OrderID, c.AccountID, c.Amount.Minor, string(c.Amount.Currency),
		c.Description, string(c.Status), string(c.DeclineCode), nullString(c.PaymentMethodID), c.ProcessorRef, ts(c.CreatedAt))
	return wrapInsert("charge", err)
}

func (s *Store) oneCharge(ctx context.Context, q storage.Queryer, what, where string, arg any) (domain.Charge, error) {
	c, err := scanCharge(q.QueryRow(ctx, `SELECT `+chargeColumns+` FROM charges WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("charge %s: %w", what, domain.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("billing store: read charge: %w", err)
	}
	return c, nil
}

// Charge returns the charge id, or ErrNotFound.
func (s *Store) Charge(ctx context.Context, q storage.Queryer, id string) (domain.Charge, error) {
	return s.oneCharge(ctx, q, fmt.Sprintf("%q", id), "id = $1", id)
}

// ChargeByKey returns the charge made with idempotency key, or ErrNotFound.
func (s *Store) ChargeByKey(ctx context.Context, q storage.Queryer, key string) (domain.Charge, error) {
	return s.oneCharge(ctx, q, fmt.Sprintf("with key %q", key), "idempotency_key = $1", key)
}

// SucceededChargeOfOrder returns the order's succeeded charge, or
// ErrNotFound.
func (s *Store) SucceededChargeOfOrder(ctx context.Context, q storage.Queryer, orderID string) (domain.Charge, error) {
	return s.oneCharge(ctx, q, fmt.Sprintf("of order %q", orderID), "order_id = $1 AND status = 'succeeded'", orderID)
}

// AddRefunded adds amount to the charge's refunded total, refusing with
// ErrRefundExceedsCharge when that would exceed the charge or the charge
// did not succeed, and returns the new total.
func (s *Store) AddRefunded(ctx context.Context, q storage.Queryer, chargeID string, amount domain.Money) (domain.Money, error) {
	if !amount.IsPositive() {
		return domain.Money{}, fmt.Errorf("billing store: refund of %s: amount %s must be positive", chargeID, amount)
	}
	res, err := q.Exec(ctx, `UPDATE charges SET refunded_minor = refunded_minor + $1
WHERE id = $2 AND currency = $3 AND status = 'succeeded' AND refunded_minor + $1 <= amount_minor`,
		amount.Minor, chargeID, string(amount.Currency))
	if err != nil {
		return domain.Money{}, fmt.Errorf("billing store: refund of %s: %w", chargeID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return domain.Money{}, fmt.Errorf("billing store: refund of %s: %w", chargeID, err)
	} else if n != 1 {
		return domain.Money{}, fmt.Errorf("charge %s: %w (%s asked)", chargeID, domain.ErrRefundExceedsCharge, amount)
	}
	c, err := s.Charge(ctx, q, chargeID)
	if err != nil {
		return domain.Money{}, err
	}
	return c.Refunded, nil
}

// NoteVoid records, on the cancelled charge with idempotency key, the
// processor approval that must be voided, unless one is noted already.
func (s *Store) NoteVoid(ctx context.Context, q storage.Queryer, key, processorRef string) error {
	if _, err := q.Exec(ctx, `UPDATE charges SET processor_ref = $1
WHERE idempotency_key = $2 AND status = 'cancelled' AND processor_ref = ''`, processorRef, key); err != nil {
		return fmt.Errorf("billing store: note void: %w", err)
	}
	return nil
}

// ChargeFilter selects charges: by order, by account, or all when both
// are empty.
type ChargeFilter struct {
	OrderID   string
	AccountID string
}

// scope names the list for page tokens.
func (f ChargeFilter) scope() []string { return []string{"charges", f.OrderID, f.AccountID} }

// ListCharges returns a page of charges, newest first, continuing after
// pageToken, and the token of the next page ("" at the end).
func (s *Store) ListCharges(ctx context.Context, q storage.Queryer, f ChargeFilter, pageSize int, pageToken string) ([]domain.Charge, string, error) {
	var a args
	var where []string
	if f.OrderID != "" {
		where = append(where, "order_id = "+a.add(f.OrderID))
	}
	if f.AccountID != "" {
		where = append(where, "account_id = "+a.add(f.AccountID))
	}
	if pageToken != "" {
		c, err := domain.DecodePageToken(pageToken, f.scope()...)
		if err != nil {
			return nil, "", err
		}
		t, id := a.add(ts(c.Time)), a.add(c.ID)
		where = append(where, "(created_at < "+t+" OR (created_at = "+t+" AND id < "+id+"))")
	}
	query := `SELECT ` + chargeColumns + ` FROM charges`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ` + a.add(pageSize+1)
	rows, err := q.Query(ctx, query, a...)
	if err != nil {
		return nil, "", fmt.Errorf("billing store: list charges: %w", err)
	}
	defer rows.Close()
	var out []domain.Charge
	for rows.Next() {
		c, err := scanCharge(rows)
		if err != nil {
			return nil, "", fmt.Errorf("billing store: list charges: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("billing store: list charges: %w", err)
	}
	next := ""
	if len(out) > pageSize {
		out = out[:pageSize]
		last := out[len(out)-1]
		next = domain.EncodePageToken(domain.Cursor{Time: last.CreatedAt, ID: last.ID}, f.scope()...)
	}
	return out, next, nil
}

// ---- refunds ----

const refundColumns = `id, idempotency_key, saga_id, order_id, account_id, charge_idempotency_key,
	COALESCE(charge_id, ''), amount_minor, currency, status, reason, processor_ref, created_at`

func scanRefund(sc scanner) (domain.Refund, error) {
	var (
		r                domain.Refund
		currency, status string
	)
	err := sc.Scan(&r.ID, &r.IdempotencyKey, &r.SagaID, &r.OrderID, &r.AccountID, &r.ChargeIdempotencyKey,
		&r.ChargeID, &r.Amount.Minor, &currency, &status, &r.Reason, &r.ProcessorRef, &r.CreatedAt)
	r.Amount.Currency = domain.Currency(currency)
	r.Status = domain.RefundStatus(status)
	r.CreatedAt = r.CreatedAt.UTC()
	return r, err
}

// InsertRefund stores r. A taken id or idempotency key is ErrDuplicate.
// It does not change the charge; see AddRefunded.
func (s *Store) InsertRefund(ctx context.Context, q storage.Queryer, r domain.Refund) error {
	_, err := q.Exec(ctx, `INSERT INTO refunds (id, idempotency_key, saga_id, order_id, account_id, charge_idempotency_key,
	charge_id, amount_minor, currency, status, reason, processor_ref, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		r.ID, r.IdempotencyKey, r.SagaID, r.OrderID, r.AccountID, r.ChargeIdempotencyKey,
		nullString(r.ChargeID), r.Amount.Minor, string(r.Amount.Currency), string(r.Status), r.Reason, r.ProcessorRef, ts(r.CreatedAt))
	return wrapInsert("refund", err)
}

// Refund returns the refund id, or ErrNotFound.
func (s *Store) Refund(ctx context.Context, q storage.Queryer, id string) (domain.Refund, error) {
	r, err := scanRefund(q.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("refund %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("billing store: read refund: %w", err)
	}
	return r, nil
}

// RefundByKey returns the refund made with idempotency key, or
// ErrNotFound.
func (s *Store) RefundByKey(ctx context.Context, q storage.Queryer, key string) (domain.Refund, error) {
	r, err := scanRefund(q.QueryRow(ctx, `SELECT `+refundColumns+` FROM refunds WHERE idempotency_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("refund with key %q: %w", key, domain.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("billing store: read refund: %w", err)
	}
	return r, nil
}

func (s *Store) refunds(ctx context.Context, q storage.Queryer, where string, arg any) ([]domain.Refund, error) {
	rows, err := q.Query(ctx, `SELECT `+refundColumns+` FROM refunds WHERE `+where+` ORDER BY created_at, id`, arg)
	if err != nil {
		return nil, fmt.Errorf("billing store: list refunds: %w", err)
	}
	defer rows.Close()
	var out []domain.Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, fmt.Errorf("billing store: list refunds: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing store: list refunds: %w", err)
	}
	return out, nil
}

// RefundsOfChargeKey returns the refunds that undid (or found nothing to
// undo of) the charge with idempotency key chargeKey, oldest first.
func (s *Store) RefundsOfChargeKey(ctx context.Context, q storage.Queryer, chargeKey string) ([]domain.Refund, error) {
	return s.refunds(ctx, q, "charge_idempotency_key = $1", chargeKey)
}

// RefundsOfCharge returns the refunds of a charge, oldest first.
func (s *Store) RefundsOfCharge(ctx context.Context, q storage.Queryer, chargeID string) ([]domain.Refund, error) {
	return s.refunds(ctx, q, "charge_id = $1", chargeID)
}

// ---- invoices ----

const invoiceColumns = `i.id, i.account_id, i.order_id, i.charge_id, i.description, i.amount_minor, i.currency,
	c.refunded_minor, i.payment_method_id, i.issued_at`

func scanInvoice(sc scanner) (domain.Invoice, error) {
	var (
		inv      domain.Invoice
		currency string
		refunded int64
	)
	err := sc.Scan(&inv.ID, &inv.AccountID, &inv.OrderID, &inv.ChargeID, &inv.Description, &inv.Amount.Minor, &currency,
		&refunded, &inv.PaymentMethodID, &inv.IssuedAt)
	inv.Amount.Currency = domain.Currency(currency)
	inv.Refunded = domain.NewMoney(refunded, inv.Amount.Currency)
	inv.IssuedAt = inv.IssuedAt.UTC()
	return inv, err
}

// InsertInvoice stores inv (its Refunded is read from the charge, never
// stored). One invoice per charge; a second is ErrDuplicate.
func (s *Store) InsertInvoice(ctx context.Context, q storage.Queryer, inv domain.Invoice) error {
	_, err := q.Exec(ctx, `INSERT INTO invoices (id, charge_id, account_id, order_id, description, amount_minor, currency,
	payment_method_id, issued_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		inv.ID, inv.ChargeID, inv.AccountID, inv.OrderID, inv.Description, inv.Amount.Minor, string(inv.Amount.Currency),
		inv.PaymentMethodID, ts(inv.IssuedAt))
	return wrapInsert("invoice", err)
}

// ListInvoices returns a page of the account's invoices, newest first,
// and the token of the next page ("" at the end).
func (s *Store) ListInvoices(ctx context.Context, q storage.Queryer, accountID string, pageSize int, pageToken string) ([]domain.Invoice, string, error) {
	scope := []string{"invoices", accountID}
	var a args
	where := "i.account_id = " + a.add(accountID)
	if pageToken != "" {
		c, err := domain.DecodePageToken(pageToken, scope...)
		if err != nil {
			return nil, "", err
		}
		t, id := a.add(ts(c.Time)), a.add(c.ID)
		where += " AND (i.issued_at < " + t + " OR (i.issued_at = " + t + " AND i.id < " + id + "))"
	}
	rows, err := q.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices i JOIN charges c ON c.id = i.charge_id
WHERE `+where+` ORDER BY i.issued_at DESC, i.id DESC LIMIT `+a.add(pageSize+1), a...)
	if err != nil {
		return nil, "", fmt.Errorf("billing store: list invoices: %w", err)
	}
	defer rows.Close()
	var out []domain.Invoice
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			return nil, "", fmt.Errorf("billing store: list invoices: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("billing store: list invoices: %w", err)
	}
	next := ""
	if len(out) > pageSize {
		out = out[:pageSize]
		last := out[len(out)-1]
		next = domain.EncodePageToken(domain.Cursor{Time: last.IssuedAt, ID: last.ID}, scope...)
	}
	return out, next, nil
}

// ---- charge attempts ----

// BeginAttempt marks the charge with idempotency key as under way until
// expires, under attemptID. It fails with ErrInProgress while another
// unexpired attempt holds the key, and takes over an expired one. Run it
// in the transaction that checked the key is not recorded yet.
func (s *Store) BeginAttempt(ctx context.Context, q storage.Queryer, key, sagaID, attemptID string, now, expires time.Time) error {
	res, err := q.Exec(ctx, `INSERT INTO charge_attempts (idempotency_key, saga_id, attempt_id, expires_at)
VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING`, key, sagaID, attemptID, ts(expires))
	if err != nil {
		return fmt.Errorf("billing store: begin charge attempt: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("billing store: begin charge attempt: %w", err)
	} else if n == 1 {
		return nil
	}
	res, err = q.Exec(ctx, `UPDATE charge_attempts SET saga_id = $1, attempt_id = $2, expires_at = $3
WHERE idempotency_key = $4 AND expires_at <= $5`, sagaID, attemptID, ts(expires), key, ts(now))
	if err != nil {
		return fmt.Errorf("billing store: take over charge attempt: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("billing store: take over charge attempt: %w", err)
	} else if n == 0 {
		return fmt.Errorf("charge with key %q: %w", key, domain.ErrInProgress)
	}
	return nil
}

// EndAttempt removes the attempt attemptID of key, if it still holds it.
func (s *Store) EndAttempt(ctx context.Context, q storage.Queryer, key, attemptID string) error {
	if _, err := q.Exec(ctx, `DELETE FROM charge_attempts WHERE idempotency_key = $1 AND attempt_id = $2`, key, attemptID); err != nil {
		return fmt.Errorf("billing store: end charge attempt: %w", err)
	}
	return nil
}

// AttemptUnderWay reports whether an unexpired attempt holds key at now.
func (s *Store) AttemptUnderWay(ctx context.Context, q storage.Queryer, key string, now time.Time) (bool, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM charge_attempts WHERE idempotency_key = $1 AND expires_at > $2`, key, ts(now)).Scan(&n); err != nil {
		return false, fmt.Errorf("billing store: read charge attempt: %w", err)
	}
	return n > 0, nil
}
