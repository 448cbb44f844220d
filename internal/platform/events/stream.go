package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The stream every Marquee event goes through.
const (
	// StreamName names the JetStream stream.
	StreamName = "MARQUEE"
	// StreamSubjects is the subject filter the stream captures.
	StreamSubjects = "marquee.>"
	// DedupWindow is how long the stream remembers a Nats-Msg-Id (the event
	// id): a relay that republishes a row within it adds nothing. Beyond it,
	// the consumers' inbox still makes handling idempotent.
	DedupWindow = 10 * time.Minute
	// StreamMaxAge is how long the stream keeps events, and so how far back
	// a new durable consumer starts.
	StreamMaxAge = 7 * 24 * time.Hour
)

// EnsureStream creates the MARQUEE stream, or updates it to the current
// configuration: subjects marquee.>, file storage, limits retention with
// StreamMaxAge, and a DedupWindow duplicate window. The replica count of an
// existing stream is kept, so an operator may raise it on a cluster.
func EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Marquee domain events (CloudEvents 1.0, binary mode)",
		Subjects:    []string{StreamSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      StreamMaxAge,
		Duplicates:  DedupWindow,
	}
	s, err := js.Stream(ctx, StreamName)
	switch {
	case err == nil:
		cfg.Replicas = s.CachedInfo().Config.Replicas
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("events: look up stream %s: %w", StreamName, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("events: ensure stream %s: %w", StreamName, err)
	}
	return nil
}

// Connect dials NATS at url as client name and returns the connection and
// its JetStream context. It waits for the first connection until ctx is
// done (give it a deadline to fail fast); after that the connection
// reconnects forever, and disconnections, reconnections and asynchronous
// errors are logged once each. Close the connection (or Drain it) when done.
func Connect(ctx context.Context, url, name string, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("nats", name)
	connected := make(chan struct{}, 1)
	var asyncErrs throttle
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(5*time.Second),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DrainTimeout(10*time.Second),
		nats.ConnectHandler(func(*nats.Conn) {
			select {
			case connected <- struct{}{}:
			default:
			}
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("events: NATS disconnected; reconnecting", "err", err)
			} else {
				logger.Info("events: NATS disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("events: NATS reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if !asyncErrs.allow(10 * time.Second) {
				return // a slow consumer reports every dropped batch
			}
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			logger.Warn("events: NATS error", "subject", subject, "err", err)
		}),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("events: connect to NATS %s: %w", url, err)
	}
	if !nc.IsConnected() {
		select {
		case <-connected:
		case <-ctx.Done():
			nc.Close()
			return nil, nil, fmt.Errorf("events: connect to NATS %s: %w", url, context.Cause(ctx))
		}
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("events: JetStream: %w", err)
	}
	return nc, js, nil
}
