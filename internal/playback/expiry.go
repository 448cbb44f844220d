package playback

import (
	"context"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

// Expiry sweeping.
const (
	// ExpiryInterval is how often RunExpiry looks for sessions whose
	// heartbeats stopped.
	ExpiryInterval = 15 * time.Second
	// expiryBatch bounds the sessions ended per transaction.
	expiryBatch = 100
	// EndedSessionRetention is how long ended sessions are kept.
	EndedSessionRetention = 7 * 24 * time.Hour
)

// ExpireSessions ends every session still marked active whose heartbeats
// stopped more than domain.SessionTimeout ago, as of the service clock,
// publishing each one's final progress event, and reports how many it
// ended. (A stale session stops counting against the stream limit at its
// timeout whether or not it was swept; sweeping publishes its end.)
func (s *Service) ExpireSessions(ctx context.Context) (int, error) {
	total := 0
	for {
		now := s.now()
		n := 0
		err := s.inTx(ctx, func(tx *storage.Tx) error {
			n = 0
			stale, err := s.store.StaleSessions(ctx, tx, now, expiryBatch)
			if err != nil {
				return err
			}
			for _, x := range stale {
				if err := s.endSession(ctx, tx, x, 0, x.ExpiresAt(), domain.EndExpired); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil || n < expiryBatch {
			return total, err
		}
	}
}

// RunExpiry sweeps stale sessions every ExpiryInterval and deletes ended
// sessions older than EndedSessionRetention, until ctx ends. Failures are
// logged and retried at the next round. Several replicas may run it: a
// session is ended once (see store.UpdateSession).
func (s *Service) RunExpiry(ctx context.Context) error {
	t := time.NewTicker(ExpiryInterval)
	defer t.Stop()
	lastPrune := time.Time{}
	for {
		if n, err := s.ExpireSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "session expiry failed", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "sessions expired", "count", n)
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if _, err := s.store.DeleteEndedSessions(ctx, s.db, s.now().Add(-EndedSessionRetention)); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "deleting old sessions failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
