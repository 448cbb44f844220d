package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Handler applies one event inside tx, the consuming service's local
// transaction that also records the event id in its inbox. Returning an
// error rolls both back and has the event redelivered later.
type Handler func(ctx context.Context, tx *storage.Tx, ev Event) error

// Consumer is an idempotent durable JetStream consumer of the MARQUEE
// stream. For each message it runs, in one transaction of db, the insert of
// (consumer name, ce-id) into marquee_inbox and the handler; a ce-id already
// there is acknowledged without calling the handler. A handler error (or
// panic) rolls back and the message is redelivered after a growing delay; a
// message without ce-id is terminated and logged.
//
// Messages are handled one at a time, in stream order, with the context
// carrying the producer's trace (traceparent). A message redelivered after a
// handler error is handled after the ones behind it unless MaxAckPending is
// 1. Replicas of a service that share the consumer name share its messages.
//
// Set the exported fields before Run.
type Consumer struct {
	// AckWait is how long the server waits for an acknowledgement before
	// redelivering; default 30s.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged messages; default 256. Set it to
	// 1 to keep stream order even across redeliveries, at some throughput.
	MaxAckPending int
	// RetryDelay is the delay before the first redelivery of a message whose
	// handler failed; it doubles with each delivery up to MaxRetryDelay.
	// Default 1s.
	RetryDelay time.Duration
	// MaxRetryDelay caps the redelivery delay; default 1 minute.
	MaxRetryDelay time.Duration
	// InboxRetention is how long handled event ids are remembered; default
	// StreamMaxAge plus a day, so a replay of the stream is still recognised.
	InboxRetention time.Duration

	js       jetstream.JetStream
	db       *storage.DB
	name     string
	subjects []string
	handle   Handler
	log      *slog.Logger
}

// NewConsumer returns a consumer named name (the durable consumer and inbox
// name, for example "recommendations-catalog") of the events on subjects
// (filters under marquee.>), handled by handle in transactions of db. A nil
// logger means slog.Default().
func NewConsumer(js jetstream.JetStream, db *storage.DB, name string, subjects []string, handle Handler, logger *slog.Logger) *Consumer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Consumer{
		AckWait:        30 * time.Second,
		MaxAckPending:  256,
		RetryDelay:     time.Second,
		MaxRetryDelay:  time.Minute,
		InboxRetention: StreamMaxAge + 24*time.Hour,
		js:             js,
		db:             db,
		name:           name,
		subjects:       append([]string(nil), subjects...),
		handle:         handle,
		log:            logger.With("component", "events.consumer", "consumer", name),
	}
}

// Consume runs NewConsumer(js, db, consumer, subjects, handle, nil) until
// ctx is done.
func Consume(ctx context.Context, js jetstream.JetStream, db *storage.DB, consumer string, subjects []string, handle Handler) error {
	return NewConsumer(js, db, consumer, subjects, handle, nil).Run(ctx)
}

// Name is the durable consumer name.
func (c *Consumer) Name() string { return c.name }

func (c *Consumer) validate() error {
	if c.name == "" || strings.ContainsAny(c.name, ".*> \t\r\n/\\") {
		return fmt.Errorf("events: bad consumer name %q", c.name)
	}
	if len(c.subjects) == 0 {
		return fmt.Errorf("events: consumer %s has no subjects", c.name)
	}
	for _, s := range c.subjects {
		if !strings.HasPrefix(s, SubjectPrefix) {
			return fmt.Errorf("events: consumer %s: subject %q is outside %s", c.name, s, StreamSubjects)
		}
	}
	if c.handle == nil {
		return fmt.Errorf("events: consumer %s has no handler", c.name)
	}
	return nil
}

// Run creates or updates the durable consumer and handles messages until
// ctx is done, then returns nil once the message in hand is finished. It
// survives NATS outages and a deleted consumer (recreating it); it returns
// an error for an invalid consumer or a closed connection.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.validate(); err != nil {
		return err
	}
	var (
		out     outage
		backoff time.Duration
	)
	for {
		started, err := c.consume(ctx, &out)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, jetstream.ErrConnectionClosed) {
			return fmt.Errorf("events: consumer %s: %w", c.name, err)
		}
		if started {
			backoff = 0
		}
		out.fail(c.log, "events: consumer stopped; retrying", err)
		backoff = nextBackoff(backoff, 5*time.Second)
		if !sleep(ctx, backoff, nil) {
			return nil
		}
	}
}

// consume runs one life of the JetStream consumer, ending out when it
// starts receiving; started reports whether it got that far.
func (c *Consumer) consume(ctx context.Context, out *outage) (started bool, err error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.name,
		Description:   "marquee events consumer " + c.name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
	}
	if len(c.subjects) == 1 {
		cfg.FilterSubject = c.subjects[0]
	} else {
		cfg.FilterSubjects = c.subjects
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, StreamName, cfg)
	if err != nil {
		return false, fmt.Errorf("create consumer: %w", err)
	}
	stop := make(chan error, 1)
	check := make(chan struct{}, 1)
	var warned throttle
	cc, err := cons.Consume(
		func(m jetstream.Msg) { c.process(ctx, m) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			switch {
			case errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrConsumerNotFound),
				errors.Is(err, jetstream.ErrBadRequest),
				errors.Is(err, jetstream.ErrConnectionClosed):
				select {
				case stop <- err:
				default:
				}
			case errors.Is(err, jetstream.ErrNoHeartbeat):
				// Heartbeats stop when the server lost the consumer too.
				select {
				case check <- struct{}{}:
				default:
				}
			default:
				if warned.allow(30 * time.Second) {
					c.log.Warn("events: consumer error", "err", err)
				}
			}
		}),
	)
	if err != nil {
		return false, fmt.Errorf("consume: %w", err)
	}
	out.recover(c.log, "events: consumer running again")
	defer func() {
		cc.Stop()
		select {
		case <-cc.Closed():
		case <-time.After(30 * time.Second):
			c.log.Warn("events: consumer did not stop within 30s")
		}
	}()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case err := <-stop:
			return true, err
		case <-check:
			if _, err := cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
				return true, err
			}
		case <-prune.C:
			c.pruneInbox(ctx)
		}
	}
}

// process handles one message; see Consumer.
func (c *Consumer) process(ctx context.Context, m jetstream.Msg) {
	h := m.Headers()
	ev := Event{
		Subject:     m.Subject(),
		ID:          h.Get(HeaderID),
		Source:      h.Get(HeaderSource),
		Type:        h.Get(HeaderType),
		Entity:      h.Get(HeaderSubject),
		Data:        m.Data(),
		TraceParent: h.Get(HeaderTraceParent),
	}
	var streamSeq, delivered uint64
	if md, err := m.Metadata(); err == nil {
		streamSeq, delivered = md.Sequence.Stream, md.NumDelivered
	}
	if ev.ID == "" {
		c.log.Warn("events: dropping a message without ce-id", "subject", ev.Subject, "stream_seq", streamSeq)
		if err := m.TermWithReason("missing ce-id"); err != nil {
			c.log.Warn("events: terminate message", "subject", ev.Subject, "stream_seq", streamSeq, "err", err)
		}
		return
	}
	if t := h.Get(HeaderTime); t != "" {
		if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
			ev.Time = ts
		}
	}
	hctx := withTraceParent(ctx, h)
	err := c.db.InTx(hctx, func(tx *storage.Tx) (err error) {
		res, err := tx.Exec(hctx, `INSERT INTO marquee_inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
ON CONFLICT (consumer, event_id) DO NOTHING`, c.name, ev.ID, time.Now().UTC())
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // n == 0: handled before
		}
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panicked: %v", p)
			}
		}()
		return c.handle(hctx, tx, ev)
	})
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down: hand the message back for another instance now.
			// Should the nak be lost, it comes back after AckWait anyway.
			_ = m.Nak()
			return
		}
		delay := c.retryDelay(delivered)
		c.log.Warn("events: handler failed; will redeliver", "subject", ev.Subject, "id", ev.ID,
			"delivery", delivered, "retry_in", delay.String(), "err", err)
		if err := m.NakWithDelay(delay); err != nil {
			c.log.Warn("events: nak", "id", ev.ID, "err", err)
		}
		return
	}
	if err := m.Ack(); err != nil {
		// The message comes back after AckWait and the inbox recognises it.
		c.log.Warn("events: ack", "id", ev.ID, "err", err)
	}
}

// retryDelay is RetryDelay doubled per earlier delivery, capped.
func (c *Consumer) retryDelay(delivered uint64) time.Duration {
	d := c.RetryDelay
	for i := uint64(1); i < delivered && d < c.MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, c.MaxRetryDelay)
}

// pruneInbox forgets this consumer's event ids older than InboxRetention.
func (c *Consumer) pruneInbox(ctx context.Context) {
	cutoff := time.Now().Add(-c.InboxRetention).UTC()
	if _, err := c.db.Exec(ctx, "DELETE FROM marquee_inbox WHERE consumer = $1 AND processed_at < $2", c.name, cutoff); err != nil && ctx.Err() == nil {
		c.log.Warn("events: prune inbox", "err", err)
	}
}

// Lag is how far a durable consumer is behind the stream.
type Lag struct {
	// Pending counts matching stream messages not yet delivered.
	Pending uint64
	// AckPending counts messages delivered and not yet acknowledged.
	AckPending int
	// Redelivered counts messages delivered more than once and not yet
	// acknowledged.
	Redelivered int
}

// Lag reports how far this consumer is behind the stream.
func (c *Consumer) Lag(ctx context.Context) (Lag, error) {
	return ConsumerLag(ctx, c.js, c.name)
}

// ConsumerLag reports how far the durable consumer name of the MARQUEE
// stream is behind; it needs no running Consumer, so a metrics exporter can
// call it.
func ConsumerLag(ctx context.Context, js jetstream.JetStream, name string) (Lag, error) {
	cons, err := js.Consumer(ctx, StreamName, name)
	if err != nil {
		return Lag{}, fmt.Errorf("events: consumer %s: %w", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("events: consumer %s: %w", name, err)
	}
	return Lag{Pending: info.NumPending, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered}, nil
}

// throttle lets an action happen at most once per interval.
type throttle struct {
	mu   sync.Mutex
	last time.Time
}

func (t *throttle) allow(every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); t.last.IsZero() || now.Sub(t.last) >= every {
		t.last = now
		return true
	}
	return false
}
