package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// ErrDuplicateEvent reports a Publish of an event id already in the outbox.
var ErrDuplicateEvent = errors.New("events: event id already in the outbox")

// errNATSDown is what a relay round reports while the connection is away.
var errNATSDown = errors.New("events: NATS is not connected")

// Publish writes ev to the outbox in tx, so the event exists if and only if
// tx commits. It fills the defaults described on Event (id, source, type,
// time) and the traceparent of the span in ctx, and refuses an invalid event
// with an error wrapping ErrInvalidEvent.
//
// The service's Relay publishes the row within its poll interval; call
// Relay.Notify after the commit to have it sent at once.
func Publish(ctx context.Context, tx *storage.Tx, ev Event) error {
	if err := ev.normalize(time.Now()); err != nil {
		return err
	}
	if ev.TraceParent == "" {
		ev.TraceParent = traceParentOf(ctx)
	}
	_, err := tx.Exec(ctx, `INSERT INTO marquee_outbox (id, subject, type, source, ce_subject, time, data, trace_parent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ev.ID, ev.Subject, ev.Type, ev.Source, ev.Entity, ev.Time, ev.Data, ev.TraceParent)
	if storage.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrDuplicateEvent, ev.ID)
	}
	if err != nil {
		return fmt.Errorf("events: write outbox: %w", err)
	}
	return nil
}

// CloudEvents binary-mode header names, as the NATS protocol binding of
// CloudEvents 1.0 spells them.
const (
	HeaderSpecVersion = "ce-specversion"  // always "1.0"
	HeaderID          = "ce-id"           // Event.ID; also the Nats-Msg-Id
	HeaderSource      = "ce-source"       // Event.Source
	HeaderType        = "ce-type"         // Event.Type
	HeaderTime        = "ce-time"         // Event.Time, RFC 3339
	HeaderSubject     = "ce-subject"      // Event.Entity, when set
	HeaderContentType = "content-type"    // always "application/json"
	HeaderTraceParent = traceParentHeader // W3C traceparent, when known
)

// Message returns ev as a CloudEvents 1.0 binary-mode NATS message: the
// attributes in ce-* headers, the JSON data as the body. Publish it with
// jetstream.WithMsgID(ev.ID) so the stream drops a repeat.
func Message(ev Event) *nats.Msg {
	m := nats.NewMsg(ev.Subject)
	m.Data = ev.Data
	m.Header.Set(HeaderSpecVersion, "1.0")
	m.Header.Set(HeaderID, ev.ID)
	m.Header.Set(HeaderSource, ev.Source)
	m.Header.Set(HeaderType, ev.Type)
	m.Header.Set(HeaderTime, ev.Time.UTC().Format(time.RFC3339Nano))
	if ev.Entity != "" {
		m.Header.Set(HeaderSubject, ev.Entity)
	}
	m.Header.Set(HeaderContentType, "application/json")
	if ev.TraceParent != "" {
		m.Header.Set(HeaderTraceParent, ev.TraceParent)
	}
	return m
}

// relayLockKey is the PostgreSQL advisory lock that makes one relay replica
// at a time publish a database's outbox ("mqob"); advisory locks are scoped
// to the database, and each service has its own.
const relayLockKey int64 = 0x6d716f62

// localLocks serialises relays of one process on the same SQLite file,
// keyed by its path. SQLite databases belong to a single process.
var localLocks sync.Map

// Relay moves committed outbox rows to JetStream in seq order: each row is
// published with its event id as Nats-Msg-Id, then marked published.
//
// On PostgreSQL, several replicas may run a relay against the same database:
// each round runs in a transaction holding a transaction-scoped advisory
// lock, so one replica publishes at a time and order is kept; the others
// find the lock taken and wait for the next round. A replica that dies after
// publishing and before its commit leaves rows that the next round publishes
// again, which the stream's duplicate window drops.
//
// When NATS is unreachable the relay keeps every row, retries with capped
// exponential backoff, resumes at once on reconnection, and logs the outage
// when it starts, every 30 seconds while it lasts, and when it ends.
//
// Published rows older than Retention are deleted. Set the exported fields
// before Run.
type Relay struct {
	// BatchSize is the most rows published per round; default 256.
	BatchSize int
	// Interval is how often the outbox is polled when idle; default 200ms.
	Interval time.Duration
	// PublishTimeout bounds the wait for one publish acknowledgement;
	// default 5s.
	PublishTimeout time.Duration
	// MaxBackoff caps the wait between failed rounds; default 5s.
	MaxBackoff time.Duration
	// Retention is how long published rows are kept; default 15 minutes
	// (longer than DedupWindow, after which a row has no use).
	Retention time.Duration

	db      *storage.DB
	js      jetstream.JetStream
	log     *slog.Logger
	kick    chan struct{}
	running atomic.Bool
}

// NewRelay returns a relay of db's outbox to js. A nil logger means
// slog.Default().
func NewRelay(db *storage.DB, js jetstream.JetStream, logger *slog.Logger) *Relay {
	if logger == nil {
		logger = slog.Default()
	}
	return &Relay{
		BatchSize:      256,
		Interval:       200 * time.Millisecond,
		PublishTimeout: 5 * time.Second,
		MaxBackoff:     5 * time.Second,
		Retention:      15 * time.Minute,
		db:             db,
		js:             js,
		log:            logger.With("component", "events.relay", "db", db.Name()),
		kick:           make(chan struct{}, 1),
	}
}

// Notify wakes the relay to publish now rather than at its next poll. Call
// it after committing a transaction that called Publish. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Backlog counts the outbox rows not yet published.
func (r *Relay) Backlog(ctx context.Context) (int64, error) {
	var n int64
	if err := r.db.QueryRow(ctx, "SELECT COUNT(*) FROM marquee_outbox WHERE published_at IS NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("events: outbox backlog: %w", err)
	}
	return n, nil
}

// Run relays until ctx is done, then returns nil. It returns an error if
// the relay is already running or when the NATS connection is closed for
// good (stop the relay before closing the connection).
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("events: relay already running")
	}
	defer r.running.Store(false)

	nc := r.js.Conn()
	var reconnected chan nats.Status
	if nc != nil {
		reconnected = nc.StatusChanged(nats.CONNECTED)
		defer nc.RemoveStatusListener(reconnected)
	}
	const pruneEvery = time.Minute
	var (
		out       outage
		backoff   time.Duration
		lastPrune time.Time
	)
	for {
		if time.Since(lastPrune) >= pruneEvery {
			r.prune(ctx)
			lastPrune = time.Now()
		}
		full, err := r.round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if nc != nil && nc.IsClosed() {
				return fmt.Errorf("events: relay: %w", nats.ErrConnectionClosed)
			}
			out.fail(r.log, "events: relay cannot publish; rows stay in the outbox and will be retried", err)
			backoff = nextBackoff(backoff, r.MaxBackoff)
			if !sleep(ctx, backoff, reconnected) {
				return nil
			}
			continue
		}
		backoff = 0
		out.recover(r.log, "events: relay publishing again")
		if full {
			continue
		}
		t := time.NewTimer(r.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.kick:
		case <-reconnected:
		case <-t.C:
		}
		t.Stop()
	}
}

// round publishes one batch; full reports that the batch was full, so more
// rows may be waiting.
func (r *Relay) round(ctx context.Context) (full bool, err error) {
	if nc := r.js.Conn(); nc != nil && !nc.IsConnected() {
		return false, errNATSDown
	}
	if r.db.Dialect() != storage.Postgres {
		v, _ := localLocks.LoadOrStore(r.db.Name(), new(sync.Mutex))
		mu := v.(*sync.Mutex)
		if !mu.TryLock() {
			return false, nil // another relay of this process is at work
		}
		defer mu.Unlock()
		return r.batch(ctx, r.db)
	}
	var pubErr error
	err = r.db.InTx(ctx, func(tx *storage.Tx) error {
		full, pubErr = false, nil
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", relayLockKey).Scan(&locked); err != nil {
			return fmt.Errorf("events: relay lock: %w", err)
		}
		if !locked {
			return nil // another replica is relaying
		}
		var markErr error
		full, markErr = r.batch(ctx, tx)
		if errors.Is(markErr, errPublish) {
			pubErr = markErr // keep the marks of what was published
			return nil
		}
		return markErr
	})
	if err != nil {
		return false, err
	}
	return full, pubErr
}

// errPublish marks a batch error that happened while publishing, after which
// the rows published so far can still be marked.
var errPublish = errors.New("publish")

type outboxRow struct {
	seq int64
	ev  Event
}

// batch publishes up to BatchSize unpublished rows in seq order, stopping at
// the first failure so that no row overtakes another, and marks the
// published ones.
func (r *Relay) batch(ctx context.Context, q storage.Queryer) (full bool, err error) {
	rows, err := r.pending(ctx, q)
	if err != nil {
		return false, err
	}
	done := make([]any, 0, len(rows)+1)
	done = append(done, time.Now().UTC())
	var pubErr error
	for _, row := range rows {
		if err := r.publish(ctx, row.ev); err != nil {
			pubErr = fmt.Errorf("%w: %s %s: %w", errPublish, row.ev.Subject, row.ev.ID, err)
			break
		}
		done = append(done, row.seq)
	}
	if len(done) > 1 {
		ph := make([]string, len(done)-1)
		for i := range ph {
			ph[i] = "$" + strconv.Itoa(i+2)
		}
		if _, err := q.Exec(ctx, "UPDATE marquee_outbox SET published_at = $1 WHERE seq IN ("+strings.Join(ph, ", ")+")", done...); err != nil {
			return false, fmt.Errorf("events: mark published: %w", err)
		}
	}
	if pubErr != nil {
		return false, pubErr
	}
	return len(rows) == r.BatchSize, nil
}

func (r *Relay) pending(ctx context.Context, q storage.Queryer) ([]outboxRow, error) {
	rs, err := q.Query(ctx, `SELECT seq, id, subject, type, source, ce_subject, time, data, trace_parent
FROM marquee_outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1`, r.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("events: read outbox: %w", err)
	}
	defer rs.Close()
	var out []outboxRow
	for rs.Next() {
		var row outboxRow
		e := &row.ev
		if err := rs.Scan(&row.seq, &e.ID, &e.Subject, &e.Type, &e.Source, &e.Entity, &e.Time, &e.Data, &e.TraceParent); err != nil {
			return nil, fmt.Errorf("events: read outbox: %w", err)
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("events: read outbox: %w", err)
	}
	return out, nil
}

func (r *Relay) publish(ctx context.Context, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, r.PublishTimeout)
	defer cancel()
	ack, err := r.js.PublishMsg(ctx, Message(ev), jetstream.WithMsgID(ev.ID))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		r.log.Debug("events: event already in the stream", "subject", ev.Subject, "id", ev.ID)
	}
	return nil
}

// prune deletes published rows older than Retention.
func (r *Relay) prune(ctx context.Context) {
	cutoff := time.Now().Add(-r.Retention).UTC()
	if _, err := r.db.Exec(ctx, "DELETE FROM marquee_outbox WHERE published_at IS NOT NULL AND published_at < $1", cutoff); err != nil && ctx.Err() == nil {
		r.log.Warn("events: prune outbox", "err", err)
	}
}

// outage logs a run of failures: when it starts, every 30 seconds while it
// lasts, and when it ends.
type outage struct {
	attempts int
	since    time.Time
	logged   time.Time
}

func (o *outage) fail(log *slog.Logger, msg string, err error) {
	now := time.Now()
	o.attempts++
	switch {
	case o.attempts == 1:
		o.since, o.logged = now, now
		log.Warn(msg, "err", err)
	case now.Sub(o.logged) >= 30*time.Second:
		o.logged = now
		log.Warn(msg, "err", err, "attempts", o.attempts, "failing_for", now.Sub(o.since).Round(time.Second).String())
	}
}

func (o *outage) recover(log *slog.Logger, msg string) {
	if o.attempts == 0 {
		return
	}
	log.Info(msg, "attempts", o.attempts, "failed_for", time.Since(o.since).Round(time.Millisecond).String())
	*o = outage{}
}

// nextBackoff doubles d from 100ms up to limit.
func nextBackoff(d, limit time.Duration) time.Duration {
	d *= 2
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return min(d, limit)
}

// sleep waits about d (with jitter) or until wake fires; it reports false
// when ctx ended first.
func sleep(ctx context.Context, d time.Duration, wake <-chan nats.Status) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
