package sagachaos

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// DBs are the orders, billing and playback databases, opened read-only.
type DBs struct {
	Orders, Billing, Playback *sql.DB
	postgres                  bool
}

// OpenDBs opens the databases of a system's orders, billing and playback
// read-only: the SQLite files in dataDir, or, when postgresURL is set (the
// URL given to `marquee dev --postgres`), the databases marquee_<service>
// on that server.
func OpenDBs(dataDir, postgresURL string) (*DBs, error) {
	d := &DBs{postgres: postgresURL != ""}
	open := func(svc string) (*sql.DB, error) {
		if postgresURL == "" {
			path := filepath.Join(dataDir, svc+".db")
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
			if err != nil {
				return nil, err
			}
			db.SetMaxOpenConns(2)
			return db, nil
		}
		u, err := url.Parse(postgresURL)
		if err != nil {
			return nil, err
		}
		u.Path = "/marquee_" + svc
		q := u.Query()
		q.Set("default_transaction_read_only", "on")
		u.RawQuery = q.Encode()
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(2)
		return db, nil
	}
	var err error
	if d.Orders, err = open("orders"); err != nil {
		return nil, err
	}
	if d.Billing, err = open("billing"); err != nil {
		d.Close()
		return nil, err
	}
	if d.Playback, err = open("playback"); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Close closes the databases.
func (d *DBs) Close() {
	for _, db := range []*sql.DB{d.Orders, d.Billing, d.Playback} {
		if db != nil {
			db.Close()
		}
	}
}

var param = regexp.MustCompile(`\$(\d+)`)

// q adapts a query written with $N parameters to the dialect.
func (d *DBs) q(query string) string {
	if d.postgres {
		return query
	}
	return param.ReplaceAllString(query, "?$1")
}

// Order is a row of orders.orders.
type Order struct {
	ID, AccountID, IdempotencyKey, Kind, PlanID, TitleID string
	Amount                                               int64
	Currency, Status, Reason, SagaID                     string
	ChargeID, EntitlementID                              string
	CreatedAt                                            time.Time
	// CompletedAt is zero while PENDING.
	CompletedAt time.Time
}

// Saga is a row of orders.marquee_saga.
type Saga struct {
	ID, Definition, State, PausedState string
	Step, Attempts                     int
	Reason, LastError                  string
	Data                               []byte
	CreatedAt                          time.Time
	FinishedAt                         time.Time
}

// SagaStep is a row of orders.marquee_saga_step: an action or compensation
// that ended.
type SagaStep struct {
	SagaID      string
	Index       int
	Kind, Name  string
	State       string
	Attempts    int
	Output      []byte
	Error       string
	StartedAt   time.Time
	FinishedAt  time.Time
	HasFinished bool
}

// Charge is a row of billing.charges.
type Charge struct {
	ID, IdempotencyKey, SagaID, OrderID, AccountID string
	Amount                                         int64
	Currency, Status, DeclineCode                  string
	Refunded                                       int64
	ProcessorRef                                   string
}

// Refund is a row of billing.refunds.
type Refund struct {
	ID, IdempotencyKey, SagaID, OrderID, AccountID string
	ChargeIdempotencyKey                           string
	// ChargeID is empty for a nothing_to_refund.
	ChargeID       string
	Amount         int64
	Currency       string
	Status, Reason string
}

// Invoice is a row of billing.invoices.
type Invoice struct {
	ID, ChargeID, AccountID, OrderID string
	Amount                           int64
}

// Entitlement is a row of playback.entitlements.
type Entitlement struct {
	ID, AccountID, Kind, PlanID, TitleID string
	OrderID, SagaID, IdempotencyKey      string
	Status, SupersedesID                 string
	CreatedAt                            time.Time
}

// Barrier is a row of a participant's marquee_barrier.
type Barrier struct {
	SagaID, Step, Op, Outcome string
}

// Snapshot is what the orders, billing and playback databases hold, read
// into memory.
type Snapshot struct {
	Orders          []Order
	Sagas           []Saga
	Steps           []SagaStep
	Charges         []Charge
	Refunds         []Refund
	Invoices        []Invoice
	Entitlements    []Entitlement
	BillingBarrier  []Barrier
	PlaybackBarrier []Barrier
}

// Snapshot reads the tables the invariants are about.
func (d *DBs) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{}
	err := errors.Join(
		each(ctx, d.Orders, d.q(`SELECT id, account_id, idempotency_key, kind, plan_id, title_id, amount_minor, currency,
	status, reason, saga_id, charge_id, entitlement_id, created_at, completed_at FROM orders`), func(r *sql.Rows) error {
			var o Order
			var done sql.NullTime
			err := r.Scan(&o.ID, &o.AccountID, &o.IdempotencyKey, &o.Kind, &o.PlanID, &o.TitleID, &o.Amount, &o.Currency,
				&o.Status, &o.Reason, &o.SagaID, &o.ChargeID, &o.EntitlementID, &o.CreatedAt, &done)
			o.CompletedAt = done.Time
			s.Orders = append(s.Orders, o)
			return err
		}),
		each(ctx, d.Orders, d.q(`SELECT id, definition, state, paused_state, step, attempts, reason, last_error, data, created_at, finished_at
	FROM marquee_saga`), func(r *sql.Rows) error {
			var g Saga
			var done sql.NullTime
			err := r.Scan(&g.ID, &g.Definition, &g.State, &g.PausedState, &g.Step, &g.Attempts, &g.Reason, &g.LastError, &g.Data, &g.CreatedAt, &done)
			g.FinishedAt = done.Time
			s.Sagas = append(s.Sagas, g)
			return err
		}),
		each(ctx, d.Orders, d.q(`SELECT saga_id, step_index, kind, name, state, attempts, output, error, started_at, finished_at
	FROM marquee_saga_step`), func(r *sql.Rows) error {
			var st SagaStep
			var done sql.NullTime
			err := r.Scan(&st.SagaID, &st.Index, &st.Kind, &st.Name, &st.State, &st.Attempts, &st.Output, &st.Error, &st.StartedAt, &done)
			st.FinishedAt, st.HasFinished = done.Time, done.Valid
			s.Steps = append(s.Steps, st)
			return err
		}),
		each(ctx, d.Billing, d.q(`SELECT id, idempotency_key, saga_id, order_id, account_id, amount_minor, currency, status,
	decline_code, refunded_minor, processor_ref FROM charges`), func(r *sql.Rows) error {
			var c Charge
			err := r.Scan(&c.ID, &c.IdempotencyKey, &c.SagaID, &c.OrderID, &c.AccountID, &c.Amount, &c.Currency, &c.Status,
				&c.DeclineCode, &c.Refunded, &c.ProcessorRef)
			s.Charges = append(s.Charges, c)
			return err
		}),
		each(ctx, d.Billing, d.q(`SELECT id, idempotency_key, saga_id, order_id, account_id, charge_idempotency_key, charge_id,
	amount_minor, currency, status, reason FROM refunds`), func(r *sql.Rows) error {
			var f Refund
			var charge sql.NullString
			err := r.Scan(&f.ID, &f.IdempotencyKey, &f.SagaID, &f.OrderID, &f.AccountID, &f.ChargeIdempotencyKey, &charge,
				&f.Amount, &f.Currency, &f.Status, &f.Reason)
			f.ChargeID = charge.String
			s.Refunds = append(s.Refunds, f)
			return err
		}),
		each(ctx, d.Billing, d.q(`SELECT id, charge_id, account_id, order_id, amount_minor FROM invoices`), func(r *sql.Rows) error {
			var i Invoice
			err := r.Scan(&i.ID, &i.ChargeID, &i.AccountID, &i.OrderID, &i.Amount)
			s.Invoices = append(s.Invoices, i)
			return err
		}),
		each(ctx, d.Playback, d.q(`SELECT id, account_id, kind, plan_id, title_id, order_id, saga_id, idempotency_key, status,
	supersedes_id, created_at FROM entitlements`), func(r *sql.Rows) error {
			var e Entitlement
			err := r.Scan(&e.ID, &e.AccountID, &e.Kind, &e.PlanID, &e.TitleID, &e.OrderID, &e.SagaID, &e.IdempotencyKey, &e.Status,
				&e.SupersedesID, &e.CreatedAt)
			s.Entitlements = append(s.Entitlements, e)
			return err
		}),
		each(ctx, d.Billing, d.q(`SELECT saga_id, step, op, outcome FROM marquee_barrier`), func(r *sql.Rows) error {
			var b Barrier
			err := r.Scan(&b.SagaID, &b.Step, &b.Op, &b.Outcome)
			s.BillingBarrier = append(s.BillingBarrier, b)
			return err
		}),
		each(ctx, d.Playback, d.q(`SELECT saga_id, step, op, outcome FROM marquee_barrier`), func(r *sql.Rows) error {
			var b Barrier
			err := r.Scan(&b.SagaID, &b.Step, &b.Op, &b.Outcome)
			s.PlaybackBarrier = append(s.PlaybackBarrier, b)
			return err
		}),
	)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SagaView is what the orders database says of one saga now: its row and
// the steps that ended.
type SagaView struct {
	Saga  Saga
	Steps []SagaStep
}

// Step returns the row of step index's kind ("action" or "compensation"),
// if it ended.
func (v SagaView) Step(index int, kind string) (SagaStep, bool) {
	for _, s := range v.Steps {
		if s.Index == index && s.Kind == kind {
			return s, true
		}
	}
	return SagaStep{}, false
}

// SagaView reads saga id and its ended steps.
func (d *DBs) SagaView(ctx context.Context, id string) (SagaView, error) {
	var v SagaView
	g := &v.Saga
	var done sql.NullTime
	err := d.Orders.QueryRowContext(ctx, d.q(`SELECT id, definition, state, paused_state, step, attempts, reason, last_error, data, created_at, finished_at
	FROM marquee_saga WHERE id = $1`), id).Scan(&g.ID, &g.Definition, &g.State, &g.PausedState, &g.Step, &g.Attempts, &g.Reason, &g.LastError, &g.Data, &g.CreatedAt, &done)
	if err != nil {
		return v, fmt.Errorf("saga %s: %w", id, err)
	}
	g.FinishedAt = done.Time
	err = each(ctx, d.Orders, d.q(`SELECT saga_id, step_index, kind, name, state, attempts, output, error, started_at, finished_at
	FROM marquee_saga_step WHERE saga_id = $1`), func(r *sql.Rows) error {
		var st SagaStep
		var done sql.NullTime
		err := r.Scan(&st.SagaID, &st.Index, &st.Kind, &st.Name, &st.State, &st.Attempts, &st.Output, &st.Error, &st.StartedAt, &done)
		st.FinishedAt, st.HasFinished = done.Time, done.Valid
		v.Steps = append(v.Steps, st)
		return err
	}, id)
	return v, err
}

// SagaOfOrder returns the id of order id's saga.
func (d *DBs) SagaOfOrder(ctx context.Context, id string) (string, error) {
	var sagaID string
	err := d.Orders.QueryRowContext(ctx, d.q(`SELECT saga_id FROM orders WHERE id = $1`), id).Scan(&sagaID)
	if err != nil {
		return "", fmt.Errorf("order %s: %w", id, err)
	}
	return sagaID, nil
}

// SagaStates counts the sagas by state.
func (d *DBs) SagaStates(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := each(ctx, d.Orders, `SELECT state, COUNT(*) FROM marquee_saga GROUP BY state`, func(r *sql.Rows) error {
		var st string
		var n int
		err := r.Scan(&st, &n)
		out[st] = n
		return err
	})
	return out, err
}

// PendingPlanOrders returns the ids of the plan orders still PENDING (a
// query the orders index of one pending plan per account answers without
// reading the table).
func (d *DBs) PendingPlanOrders(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := each(ctx, d.Orders, `SELECT id FROM orders WHERE kind = 'plan' AND status = 'PENDING'`, func(r *sql.Rows) error {
		var id string
		err := r.Scan(&id)
		out[id] = true
		return err
	})
	return out, err
}

func each(ctx context.Context, db *sql.DB, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", firstLine(query), err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("%s: %w", firstLine(query), err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", firstLine(query), err)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
