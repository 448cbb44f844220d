package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// TestRelayReplicasPublishOnceInOrder runs three relays against one
// database while events are written: every event goes on the wire once, in
// commit order (a core NATS subscriber sees every publish, including any
// the stream would drop as duplicates).
func TestRelayReplicasPublishOnceInOrder(t *testing.T) {
	storagetest.ForEach(t, "eventsreplicas", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		const total = 300
		ctx := context.Background()
		srv := startNATS(t)
		_, logger := newLogs(t)
		nc, js := connect(t, srv.url(), logger)
		sub, err := nc.SubscribeSync("marquee.replicas.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		var relays []*events.Relay
		for i := range 3 {
			r := events.NewRelay(db, js, logger)
			r.BatchSize = 16
			r.Interval = 5 * time.Millisecond
			relays = append(relays, r)
			goRun(t, fmt.Sprintf("relay %d", i), r.Run)
		}
		for i := 0; i < total; i += 5 {
			err := db.InTx(ctx, func(tx *storage.Tx) error {
				for n := i; n < i+5; n++ {
					ev, err := events.NewEvent("marquee.replicas.happened", "e", payload{N: n})
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
				t.Fatal(err)
			}
			relays[i%3].Notify()
		}
		for want := 0; want < total; want++ {
			msg, err := sub.NextMsg(10 * time.Second)
			if err != nil {
				t.Fatalf("waiting for event %d: %v", want, err)
			}
			var p payload
			if err := json.Unmarshal(msg.Data, &p); err != nil {
				t.Fatal(err)
			}
			if p.N != want {
				t.Fatalf("event %d on the wire where %d was due (duplicate or out of order)", p.N, want)
			}
		}
		eventually(t, 5*time.Second, "outbox drained", func() (bool, string) {
			n, err := relays[0].Backlog(ctx)
			return err == nil && n == 0, fmt.Sprintf("backlog %d, err %v", n, err)
		})
		if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
			t.Errorf("extra publish after all %d events: %s", total, msg.Data)
		}
	})
}

// TestRelayPrunesPublishedRows keeps unpublished and recently published
// rows and deletes those published longer ago than Retention.
func TestRelayPrunesPublishedRows(t *testing.T) {
	storagetest.ForEach(t, "eventsprune", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		srv := startNATS(t)
		_, logger := newLogs(t)
		_, js := connect(t, srv.url(), logger)
		var ids []string
		err := db.InTx(ctx, func(tx *storage.Tx) error {
			for n := range 3 {
				ev, err := events.NewEvent("marquee.prune.happened", "e", payload{N: n})
				if err != nil {
					return err
				}
				ids = append(ids, ev.ID)
				if err := events.Publish(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if _, err := db.Exec(ctx, "UPDATE marquee_outbox SET published_at = $1 WHERE id = $2", now.Add(-2*time.Hour), ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, "UPDATE marquee_outbox SET published_at = $1 WHERE id = $2", now.Add(-time.Minute), ids[1]); err != nil {
			t.Fatal(err)
		}
		relay := events.NewRelay(db, js, logger)
		relay.Retention = time.Hour
		goRun(t, "relay", relay.Run)
		eventually(t, 5*time.Second, "old row pruned and the new one published", func() (bool, string) {
			old := count(t, db, "SELECT COUNT(*) FROM marquee_outbox WHERE id = $1", ids[0])
			left := count(t, db, "SELECT COUNT(*) FROM marquee_outbox WHERE published_at IS NOT NULL")
			return old == 0 && left == 2, fmt.Sprintf("old row present %d, %d published rows left (want 0 and 2)", old, left)
		})
	})
}
