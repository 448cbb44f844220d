package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RevokedSubject is the event identity publishes when it revokes a
// session (a refresh-token family).
const RevokedSubject = "marquee.identity.session_revoked"

// FollowRevocations keeps the revocation set up to date from identity's
// session_revoked events until ctx ends. A core NATS subscription takes
// live events (JetStream publishes are ordinary messages on the subject);
// and, when js is not nil, the last RevocationTTL of the events kept by
// the stream is replayed once through an ephemeral ordered consumer, so a
// gateway that starts after a logout still refuses the session's tokens.
// The replay is retried every retry until it succeeds (the stream may not
// exist yet). Malformed events are logged and skipped.
func (a *Authenticator) FollowRevocations(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, stream string, retry time.Duration) error {
	sub, err := nc.Subscribe(RevokedSubject, func(m *nats.Msg) { a.handleRevoked(m.Data) })
	if err != nil {
		return fmt.Errorf("auth: subscribe %s: %w", RevokedSubject, err)
	}
	defer sub.Unsubscribe()
	// The flush makes sure the server has the subscription before the
	// replay starts; nats wants a deadline for it.
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = nc.FlushWithContext(flushCtx)
	cancel()
	if err != nil && ctx.Err() == nil {
		a.log.Warn("revocations: flush subscription", slog.String("error", err.Error()))
	}

	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	replay := time.NewTimer(0)
	defer replay.Stop()
	next := replay.C
	if js == nil {
		next = nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-sweep.C:
			a.revoked.Sweep(now)
		case <-next:
			n, err := a.replay(ctx, js, stream)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.log.Warn("revocations: replay failed; will retry", slog.String("error", err.Error()))
				replay.Reset(retry)
				continue
			}
			a.log.Info("revocations: replayed", slog.Int("events", n))
			next = nil
		}
	}
}

// replay reads the session_revoked events of the last RevocationTTL.
func (a *Authenticator) replay(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	start := time.Now().Add(-a.cfg.RevocationTTL)
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{RevokedSubject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return total, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			at := time.Time{}
			if md, err := m.Metadata(); err == nil {
				at = md.Timestamp
			}
			a.handleRevokedAt(m.Data(), at)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

func (a *Authenticator) handleRevoked(data []byte) { a.handleRevokedAt(data, time.Time{}) }

func (a *Authenticator) handleRevokedAt(data []byte, stored time.Time) {
	ev, err := ParseRevokedEvent(data)
	if err != nil {
		a.log.Warn("revocations: skipping an event", slog.String("error", err.Error()))
		return
	}
	at := ev.At
	if at.IsZero() {
		at = stored
	}
	a.RevokeSession(ev.SessionID, at)
}
