package console

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
)

func TestEventLag(t *testing.T) {
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := events.Connect(ctx, srv.ClientURL(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	h := newHarness(t, Config{NATSURL: srv.ClientURL()}, true)
	var lag EventLag
	// The console connects in the background; before the stream exists it
	// says so.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h.getJSON("/api/v1/console/events", &lag)
		if lag.Note == "stream MARQUEE does not exist yet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events before the stream exists: %+v, want a note saying so", lag)
		}
	}

	if err := events.EnsureStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"search-titles", "billing-orders"} {
		_, err := js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{
			Durable: name, FilterSubject: "marquee.catalog.>", AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "marquee.catalog.title.updated", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// search-titles takes two messages and acknowledges one.
	cons, err := js.Consumer(ctx, events.StreamName, "search-titles")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for m := range batch.Messages() {
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("fetched %d messages, want 2", len(got))
	}
	if err := got[0].DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}

	lag = EventLag{}
	h.getJSON("/api/v1/console/events", &lag)
	if lag.Note != "" || lag.Stream != "MARQUEE" || lag.Messages != 5 || lag.LastSeq != 5 {
		t.Errorf("stream = %+v, want MARQUEE with 5 messages and no note", lag)
	}
	want := []ConsumerLag{
		{Name: "billing-orders", Pending: 5, AckPending: 0},
		{Name: "search-titles", Pending: 3, AckPending: 1},
	}
	if len(lag.Consumers) != len(want) {
		t.Fatalf("consumers = %+v, want %d", lag.Consumers, len(want))
	}
	for i, w := range want {
		c := lag.Consumers[i]
		if c.Name != w.Name || c.Pending != w.Pending || c.AckPending != w.AckPending || c.Redelivered != 0 ||
			fmt.Sprint(c.Subjects) != "[marquee.catalog.>]" {
			t.Errorf("consumer %d = %+v, want %+v on marquee.catalog.>", i, c, w)
		}
	}
}

func TestEventLagWithoutBus(t *testing.T) {
	h := newHarness(t, Config{}, true)
	var lag EventLag
	h.getJSON("/api/v1/console/events", &lag)
	if lag.Note == "" || lag.Consumers == nil || len(lag.Consumers) != 0 {
		t.Errorf("without a bus: %+v, want an empty list and a note", lag)
	}
}
