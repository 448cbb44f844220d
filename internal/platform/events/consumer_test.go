package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// TestConsumerHandlesSameEventOnce delivers one event twice as two stream
// messages (distinct Nats-Msg-Id, same ce-id) and a message without ce-id:
// the handler runs once for the event, never for the malformed message, and
// nothing is left pending.
func TestConsumerHandlesSameEventOnce(t *testing.T) {
	storagetest.ForEach(t, "eventsidem", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, effectsTable); err != nil {
			t.Fatal(err)
		}
		srv := startNATS(t)
		logged, logger := newLogs(t)
		_, js := connect(t, srv.url(), logger)
		consumer := events.NewConsumer(js, db, "idem", []string{"marquee.idem.>"}, recordEffect, logger)
		goRun(t, "consumer", consumer.Run)

		ev, err := events.NewEvent("marquee.idem.happened", "e1", payload{N: 1})
		if err != nil {
			t.Fatal(err)
		}
		malformed := nats.NewMsg("marquee.idem.happened")
		malformed.Header.Set("ce-type", "marquee.idem.happened")
		malformed.Data = []byte(`{"n":99}`)
		last, err := events.NewEvent("marquee.idem.happened", "e2", payload{N: 2})
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range []struct {
			msg *nats.Msg
			id  string
		}{
			{events.Message(ev), "first"},
			{events.Message(ev), "second"},
			{malformed, "malformed"},
			{events.Message(last), "last"},
		} {
			if _, err := js.PublishMsg(ctx, m.msg, jetstream.WithMsgID(m.id)); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		eventually(t, 10*time.Second, "the last event handled and nothing pending", func() (bool, string) {
			n := count(t, db, "SELECT COUNT(*) FROM effects WHERE n = 2")
			lag, err := consumer.Lag(ctx)
			if err != nil {
				return false, err.Error()
			}
			return n == 1 && lag.Pending == 0 && lag.AckPending == 0, fmt.Sprintf("last handled %d times, lag %+v", n, lag)
		})
		if n := count(t, db, "SELECT COUNT(*) FROM effects WHERE event_id = $1", ev.ID); n != 1 {
			t.Errorf("event delivered twice was handled %d times, want 1", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM effects"); n != 2 {
			t.Errorf("%d effects, want 2 (the malformed message must not be handled)", n)
		}
		if n := logged.matching(slog.LevelWarn, "without ce-id"); n != 1 {
			t.Errorf("malformed message logged %d times, want 1", n)
		}
	})
}

// TestConsumerRedeliversUntilHandled has a handler fail, then panic, then
// succeed: the event is redelivered, the failed attempts leave no trace
// (their transaction rolled back, inbox row included) and the effect
// happens once.
func TestConsumerRedeliversUntilHandled(t *testing.T) {
	storagetest.ForEach(t, "eventsretry", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, effectsTable); err != nil {
			t.Fatal(err)
		}
		srv := startNATS(t)
		_, logger := newLogs(t)
		_, js := connect(t, srv.url(), logger)

		var mu sync.Mutex
		attempts := 0
		handler := func(ctx context.Context, tx *storage.Tx, ev events.Event) error {
			if err := recordEffect(ctx, tx, ev); err != nil {
				return err
			}
			mu.Lock()
			attempts++
			a := attempts
			mu.Unlock()
			switch a {
			case 1:
				return errors.New("downstream unavailable")
			case 2:
				panic("handler bug")
			}
			return nil
		}
		consumer := events.NewConsumer(js, db, "retry", []string{"marquee.retry.>"}, handler, logger)
		consumer.RetryDelay = 20 * time.Millisecond
		goRun(t, "consumer", consumer.Run)

		relay := events.NewRelay(db, js, logger)
		goRun(t, "relay", relay.Run)
		err := db.InTx(ctx, func(tx *storage.Tx) error {
			ev, err := events.NewEvent("marquee.retry.happened", "e1", payload{N: 7})
			if err != nil {
				return err
			}
			return events.Publish(ctx, tx, ev)
		})
		if err != nil {
			t.Fatal(err)
		}
		relay.Notify()

		eventually(t, 10*time.Second, "the event handled", func() (bool, string) {
			n := count(t, db, "SELECT COUNT(*) FROM effects")
			lag, err := consumer.Lag(ctx)
			if err != nil {
				return false, err.Error()
			}
			return n > 0 && lag.AckPending == 0, fmt.Sprintf("%d effects, lag %+v", n, lag)
		})
		mu.Lock()
		defer mu.Unlock()
		if attempts != 3 {
			t.Errorf("handler ran %d times, want 3 (error, panic, success)", attempts)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM effects"); n != 1 {
			t.Errorf("%d effects, want 1", n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM marquee_inbox WHERE consumer = 'retry'"); n != 1 {
			t.Errorf("%d inbox rows, want 1", n)
		}
	})
}

// TestTraceAndCloudEventsHeaders checks the wire format the relay produces
// and that the producer's trace reaches the handler's context.
func TestTraceAndCloudEventsHeaders(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "eventstrace", storage.Migrations{})
	srv := startNATS(t)
	_, logger := newLogs(t)
	nc, js := connect(t, srv.url(), logger)

	sub, err := nc.SubscribeSync("marquee.trace.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make(chan trace.SpanContext, 1)
	consumer := events.NewConsumer(js, db, "trace", []string{"marquee.trace.>"}, func(ctx context.Context, _ *storage.Tx, _ events.Event) error {
		got <- trace.SpanContextFromContext(ctx)
		return nil
	}, logger)
	goRun(t, "consumer", consumer.Run)
	relay := events.NewRelay(db, js, logger)
	goRun(t, "relay", relay.Run)

	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	pctx := trace.ContextWithSpanContext(ctx, span)
	at := time.Date(2030, 1, 2, 3, 4, 5, 600000000, time.UTC)
	ev := events.Event{Subject: "marquee.trace.title_upserted", ID: "3f9d7f0e-0000-4000-8000-000000000001", Time: at, Entity: "tt-1", Data: []byte(`{"x":1}`)}
	if err := db.InTx(ctx, func(tx *storage.Tx) error { return events.Publish(pctx, tx, ev) }); err != nil {
		t.Fatal(err)
	}
	relay.Notify()

	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no message on the wire: %v", err)
	}
	want := map[string]string{
		"Nats-Msg-Id":    ev.ID,
		"ce-specversion": "1.0",
		"ce-id":          ev.ID,
		"ce-source":      "marquee/trace",
		"ce-type":        "marquee.trace.title_upserted",
		"ce-time":        "2030-01-02T03:04:05.6Z",
		"ce-subject":     "tt-1",
		"content-type":   "application/json",
		"traceparent":    "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01",
	}
	for k, v := range want {
		if g := msg.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if string(msg.Data) != `{"x":1}` {
		t.Errorf("body = %s, want {\"x\":1}", msg.Data)
	}
	select {
	case sc := <-got:
		if sc.TraceID() != span.TraceID() || sc.SpanID() != span.SpanID() || !sc.IsRemote() {
			t.Errorf("handler span context = %v/%v remote=%v, want %v/%v remote", sc.TraceID(), sc.SpanID(), sc.IsRemote(), span.TraceID(), span.SpanID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
}
