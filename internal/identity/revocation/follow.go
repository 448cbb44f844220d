package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/events"
)

// Follower feeds a List from the session_revoked events of the MARQUEE
// stream.
type Follower struct {
	js     jetstream.JetStream
	list   *List
	log    *slog.Logger
	now    func() time.Time
	synced chan struct{}
	once   sync.Once
}

// NewFollower returns a Follower adding to list; a nil logger means
// slog.Default().
func NewFollower(js jetstream.JetStream, list *List, logger *slog.Logger) *Follower {
	if logger == nil {
		logger = slog.Default()
	}
	return &Follower{js: js, list: list, log: logger.With("component", "revocation.follower"), now: time.Now, synced: make(chan struct{})}
}

// Synced is closed once the events that were in the stream when Run
// started have been added.
func (f *Follower) Synced() <-chan struct{} { return f.synced }

func (f *Follower) markSynced() { f.once.Do(func() { close(f.synced) }) }

// Run follows the events until ctx ends, retrying with backoff while the
// stream cannot be reached, and prunes the list every minute. It returns
// nil when ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	delay := 250 * time.Millisecond
	for {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.log.WarnContext(ctx, "following session revocations failed; retrying", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (f *Follower) follow(ctx context.Context) error {
	start := f.now().Add(-Window)
	stream, err := f.js.Stream(ctx, events.StreamName)
	if err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	var lastSeq uint64
	switch last, err := stream.GetLastMsgForSubject(ctx, Subject); {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("last revocation: %w", err)
	case !last.Time.Before(start):
		lastSeq = last.Sequence
	}
	cons, err := f.js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{Subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		f.handle(m)
		if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= lastSeq {
			f.markSynced()
		}
	})
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()
	if lastSeq == 0 {
		f.markSynced()
	}
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			return errors.New("consumer closed")
		case <-tick.C:
			f.list.Prune(f.now())
		}
	}
}

func (f *Follower) handle(m jetstream.Msg) {
	ev, err := Decode(m.Data())
	if err != nil {
		f.log.Warn("ignoring a malformed session_revoked event", "err", err)
		return
	}
	if f.now().Sub(ev.RevokedAt) >= Window {
		return // every token of the session has expired
	}
	f.list.Add(ev.SessionID, ev.RevokedAt)
}
