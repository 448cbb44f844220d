package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// effects is the consuming service's table: one row per handled event, in
// handling order.
const effectsTable = `CREATE TABLE effects (
	pos      INTEGER NOT NULL,
	event_id TEXT NOT NULL,
	subject  TEXT NOT NULL,
	n        INTEGER NOT NULL
)`

type payload struct {
	N int `json:"n"`
}

// recordEffect is a handler that appends the event to effects.
func recordEffect(ctx context.Context, tx *storage.Tx, ev events.Event) error {
	var p payload
	if err := ev.Decode(&p); err != nil {
		return err
	}
	var pos int
	if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(pos), 0) + 1 FROM effects").Scan(&pos); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "INSERT INTO effects (pos, event_id, subject, n) VALUES ($1, $2, $3, $4)", pos, ev.ID, ev.Subject, p.N)
	return err
}

// outageSubject spreads events over three subjects.
func outageSubject(n int) string { return fmt.Sprintf("marquee.outage.s%d", n%3) }

// TestOutboxDeliversExactlyOnceAcrossNATSOutage is the contract of the
// package: events committed through the outbox while NATS is down all
// reach an idempotent consumer once NATS is back, each exactly once and in
// order per subject, even when rows are published twice (a relay that died
// between publishing and marking) or the same event is stored in the stream
// twice (a republish after the duplicate window).
func TestOutboxDeliversExactlyOnceAcrossNATSOutage(t *testing.T) {
	storagetest.ForEach(t, "eventsprod", storage.Migrations{}, func(t *testing.T, prod *storage.DB) {
		const total = 200
		ctx := context.Background()
		cons := openLike(t, prod, "eventscons")
		if _, err := cons.Exec(ctx, effectsTable); err != nil {
			t.Fatalf("create effects: %v", err)
		}
		srv := startNATS(t)
		logged, logger := newLogs(t)
		nc, js := connect(t, srv.url(), logger)

		relay := events.NewRelay(prod, js, logger)
		goRun(t, "relay", relay.Run)
		consumer := events.NewConsumer(js, cons, "effects", []string{"marquee.outage.>"}, recordEffect, logger)
		goRun(t, "consumer", consumer.Run)

		// publish commits events [from, to), perTx to a transaction.
		publish := func(from, to, perTx int) {
			t.Helper()
			for i := from; i < to; i += perTx {
				err := prod.InTx(ctx, func(tx *storage.Tx) error {
					for n := i; n < min(i+perTx, to); n++ {
						ev, err := events.NewEvent(outageSubject(n), fmt.Sprintf("entity-%d", n%3), payload{N: n})
						if err != nil {
							return err
						}
						if err := events.Publish(ctx, tx, ev); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatalf("publish %d..%d: %v", i, min(i+perTx, to), err)
				}
				relay.Notify()
			}
		}
		handled := func(want int) func() (bool, string) {
			return func() (bool, string) {
				n := count(t, cons, "SELECT COUNT(*) FROM effects")
				return n == want, fmt.Sprintf("%d effects, want %d", n, want)
			}
		}
		settled := func() (bool, string) {
			backlog, err := relay.Backlog(ctx)
			if err != nil {
				return false, err.Error()
			}
			lag, err := consumer.Lag(ctx)
			if err != nil {
				return false, err.Error()
			}
			return backlog == 0 && lag.Pending == 0 && lag.AckPending == 0,
				fmt.Sprintf("outbox backlog %d, consumer lag %+v", backlog, lag)
		}

		// NATS up: the first 50 flow through.
		publish(0, 50, 1)
		eventually(t, 10*time.Second, "first 50 events handled", handled(50))
		// And marked published: a relay still marking them would overwrite
		// the reset below.
		eventually(t, 10*time.Second, "first 50 events settled", settled)

		// A relay that died after publishing rows 1-20 and before marking
		// them: they go out again and the stream's duplicate window drops them.
		if _, err := prod.Exec(ctx, "UPDATE marquee_outbox SET published_at = NULL WHERE seq <= 20"); err != nil {
			t.Fatalf("reset published_at: %v", err)
		}
		relay.Notify()
		// The same event stored twice in the stream, as after a republish
		// beyond the duplicate window: the consumer's inbox drops it.
		for _, ev := range outboxEvents(t, prod, 10) {
			if _, err := js.PublishMsg(ctx, events.Message(ev), jetstream.WithMsgID(ev.ID+"/again")); err != nil {
				t.Fatalf("republish %s: %v", ev.ID, err)
			}
		}
		eventually(t, 10*time.Second, "duplicates drained", settled)
		if n := count(t, cons, "SELECT COUNT(*) FROM effects"); n != 50 {
			t.Fatalf("after duplicates, %d effects, want 50", n)
		}

		// NATS down: 150 more events are committed, and 10 published rows
		// are reset again; all wait in the outbox.
		srv.stop()
		eventually(t, 10*time.Second, "client disconnected", func() (bool, string) {
			return !nc.IsConnected(), nc.Status().String()
		})
		publish(50, 100, 1)
		publish(100, total, 10)
		if _, err := prod.Exec(ctx, "UPDATE marquee_outbox SET published_at = NULL WHERE seq > 40 AND seq <= 50"); err != nil {
			t.Fatalf("reset published_at: %v", err)
		}
		eventually(t, 10*time.Second, "relay to report the outage", func() (bool, string) {
			n := logged.matching(slog.LevelWarn, "relay cannot publish")
			return n > 0, fmt.Sprintf("%d relay warnings", n)
		})
		if n := count(t, prod, "SELECT COUNT(*) FROM marquee_outbox WHERE published_at IS NULL"); n != 160 {
			t.Errorf("with NATS down, %d unpublished rows, want 160", n)
		}
		if n := count(t, cons, "SELECT COUNT(*) FROM effects"); n != 50 {
			t.Errorf("with NATS down, %d effects, want 50", n)
		}

		// NATS back on the same port and store: everything arrives.
		srv.start()
		eventually(t, 20*time.Second, "all events handled", handled(total))
		eventually(t, 10*time.Second, "outbox and consumer settled", settled)

		var rows, distinct int
		if err := cons.QueryRow(ctx, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM effects").Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows != total || distinct != total {
			t.Errorf("effects: %d rows, %d distinct events; want %d and %d", rows, distinct, total, total)
		}
		if n := count(t, cons, "SELECT COUNT(*) FROM marquee_inbox WHERE consumer = 'effects'"); n != total {
			t.Errorf("inbox has %d events, want %d", n, total)
		}
		rs, err := cons.Query(ctx, "SELECT subject, n FROM effects ORDER BY pos")
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		last := map[string]int{}
		seen := make([]bool, total)
		for rs.Next() {
			var subject string
			var n int
			if err := rs.Scan(&subject, &n); err != nil {
				t.Fatal(err)
			}
			if n < 0 || n >= total || seen[n] {
				t.Errorf("event %d handled twice or unknown", n)
				continue
			}
			seen[n] = true
			if subject != outageSubject(n) {
				t.Errorf("event %d arrived on %s, want %s", n, subject, outageSubject(n))
			}
			if prev, ok := last[subject]; ok && n < prev {
				t.Errorf("on %s, event %d handled after %d", subject, n, prev)
			}
			last[subject] = n
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		// The rows reset to unpublished went out again and the stream
		// recognised them (20 before the outage, 10 across the restart).
		if n := logged.matching(slog.LevelDebug, "already in the stream"); n < 30 {
			t.Errorf("stream dropped %d republished rows as duplicates, want at least 30", n)
		}
		// One warning when the outage starts (and one every 30s while it
		// lasts): no spam.
		if n := logged.matching(slog.LevelWarn, "relay cannot publish"); n > 2 {
			t.Errorf("relay logged %d outage warnings in a short outage, want at most 2", n)
		}
		eventually(t, 5*time.Second, "relay to log its recovery", func() (bool, string) {
			n := logged.matching(slog.LevelInfo, "relay publishing again")
			return n == 1, fmt.Sprintf("logged %d times, want 1", n)
		})
	})
}

// outboxEvents reads the first n events of db's outbox.
func outboxEvents(t *testing.T, db *storage.DB, n int) []events.Event {
	t.Helper()
	rs, err := db.Query(context.Background(), `SELECT id, subject, type, source, ce_subject, time, data, trace_parent
FROM marquee_outbox ORDER BY seq LIMIT $1`, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []events.Event
	for rs.Next() {
		var e events.Event
		if err := rs.Scan(&e.ID, &e.Subject, &e.Type, &e.Source, &e.Entity, &e.Time, &e.Data, &e.TraceParent); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("outbox has %d events, want %d", len(out), n)
	}
	return out
}
