package events_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// TestExternalNATSRoundTrip runs outbox → relay → consumer against the
// NATS server named by MARQUEE_TEST_NATS, on subjects of its own in the
// MARQUEE stream, and removes its consumer and messages afterwards.
func TestExternalNATSRoundTrip(t *testing.T) {
	url := os.Getenv("MARQUEE_TEST_NATS")
	if url == "" {
		t.Skip("external NATS test skipped: set MARQUEE_TEST_NATS=nats://127.0.0.1:4222 (a server with JetStream enabled) to run it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, logger := newLogs(t)
	nc, js, err := events.Connect(ctx, url, "events-external-test", logger)
	if err != nil {
		t.Fatalf("MARQUEE_TEST_NATS=%s is set but unusable: %v", url, err)
	}
	t.Cleanup(nc.Close)
	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatalf("MARQUEE_TEST_NATS=%s: EnsureStream (is JetStream enabled?): %v", url, err)
	}

	token := "t" + uuid.NewString()[:8]
	subjects := "marquee." + token + ".>"
	name := "events-test-" + token
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteConsumer(ctx, events.StreamName, name); err != nil {
			t.Errorf("delete consumer %s: %v", name, err)
		}
		s, err := js.Stream(ctx, events.StreamName)
		if err == nil {
			err = s.Purge(ctx, jetstream.WithPurgeSubject(subjects))
		}
		if err != nil {
			t.Errorf("purge %s: %v", subjects, err)
		}
	})

	db := storagetest.OpenSQLite(t, "eventsexternal", storage.Migrations{})
	if _, err := db.Exec(ctx, effectsTable); err != nil {
		t.Fatal(err)
	}
	consumer := events.NewConsumer(js, db, name, []string{subjects}, recordEffect, logger)
	relay := events.NewRelay(db, js, logger)
	// Cleanups run last-in first-out: these stop before the consumer is deleted.
	goRun(t, "consumer", consumer.Run)
	goRun(t, "relay", relay.Run)

	const total = 5
	for n := range total {
		err := db.InTx(ctx, func(tx *storage.Tx) error {
			ev, err := events.NewEvent("marquee."+token+".ping", "p", payload{N: n})
			if err != nil {
				return err
			}
			return events.Publish(ctx, tx, ev)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	relay.Notify()
	eventually(t, 10*time.Second, "round trip through "+url, func() (bool, string) {
		n := count(t, db, "SELECT COUNT(*) FROM effects")
		return n == total, fmt.Sprintf("%d of %d events handled", n, total)
	})
	if n := count(t, db, "SELECT COUNT(DISTINCT n) FROM effects"); n != total {
		t.Errorf("%d distinct events handled, want %d", n, total)
	}
}
