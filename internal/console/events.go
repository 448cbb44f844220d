package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
)

// ConsumerLag is how far one durable consumer of the MARQUEE stream is
// behind.
type ConsumerLag struct {
	Name string `json:"name"`
	// Pending counts stream messages not yet delivered to the consumer.
	Pending uint64 `json:"pending"`
	// AckPending counts messages delivered and not yet acknowledged.
	AckPending int `json:"ack_pending"`
	// Redelivered counts unacknowledged messages delivered more than once.
	Redelivered int        `json:"redelivered"`
	Subjects    []string   `json:"subjects"`
	LastActive  *time.Time `json:"last_active,omitempty"`
}

// EventLag is the answer of GET /api/v1/console/events.
type EventLag struct {
	Stream    string        `json:"stream"`
	Messages  uint64        `json:"messages"`
	LastSeq   uint64        `json:"last_seq"`
	Consumers []ConsumerLag `json:"consumers"`
	Note      string        `json:"note,omitempty"`
}

// eventWatch holds the console's connection to the event bus.
type eventWatch struct {
	url string
	log *slog.Logger

	mu sync.Mutex
	js jetstream.JetStream
}

func (e *eventWatch) run(ctx context.Context) error {
	nc, js, err := events.Connect(ctx, e.url, "console", e.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	e.mu.Lock()
	e.js = js
	e.mu.Unlock()
	<-ctx.Done()
	e.mu.Lock()
	e.js = nil
	e.mu.Unlock()
	nc.Close()
	return nil
}

func (e *eventWatch) lag(ctx context.Context) (EventLag, error) {
	out := EventLag{Stream: events.StreamName, Consumers: []ConsumerLag{}}
	if e.url == "" {
		out.Note = "the console has no event bus configured"
		return out, nil
	}
	e.mu.Lock()
	js := e.js
	e.mu.Unlock()
	if js == nil {
		out.Note = "connecting to the event bus"
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		out.Note = "stream " + events.StreamName + " does not exist yet"
		return out, nil
	}
	if err != nil {
		return out, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return out, err
	}
	out.Messages, out.LastSeq = info.State.Msgs, info.State.LastSeq
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		c := ConsumerLag{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
			Redelivered: ci.NumRedelivered, Subjects: []string{}}
		if ci.Config.FilterSubject != "" {
			c.Subjects = append(c.Subjects, ci.Config.FilterSubject)
		}
		c.Subjects = append(c.Subjects, ci.Config.FilterSubjects...)
		if ci.Delivered.Last != nil {
			t := ci.Delivered.Last.UTC()
			c.LastActive = &t
		}
		out.Consumers = append(out.Consumers, c)
	}
	if err := lister.Err(); err != nil {
		return out, err
	}
	slices.SortFunc(out.Consumers, func(a, b ConsumerLag) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (c *Console) getEvents(w http.ResponseWriter, r *http.Request) {
	lag, err := c.events.lag(r.Context())
	if err != nil {
		c.cfg.Log.Warn("console: event-stream lag", "err", err)
		writeError(w, http.StatusBadGateway, "event_bus_unavailable", "the event bus does not answer: "+err.Error())
		return
	}
	writeJSON(w, lag)
}
