package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/token"
)

// firstLoadInterval spaces the fetches before the first success.
const firstLoadInterval = 250 * time.Millisecond

// KeySource fetches the current JWKS (from identity's ListSigningKeys,
// converted with token.KeysetFromProto).
type KeySource interface {
	SigningKeys(ctx context.Context) (*token.Keyset, error)
}

// KeyCache holds the verification keys fetched from a KeySource. Reads are
// lock-free (an atomic pointer to an immutable Keyset). A token whose kid
// is unknown triggers a refetch, at most one per MinInterval (one per
// firstLoadInterval before the first keys arrive): a request
// that finds the last fetch too recent waits for the next allowed one
// (bounded by its context), so a token signed by a key published a moment
// ago is never refused, and a flood of made-up kids costs identity one call
// per MinInterval. Concurrent waiters share one fetch.
type KeyCache struct {
	src         KeySource
	minInterval time.Duration
	log         *slog.Logger
	// onFetch, when set, is told of every fetch's outcome (metrics).
	onFetch func(err error)

	keys atomic.Pointer[token.Keyset] // nil until the first fetch

	mu        sync.Mutex
	started   uint64        // fetches started
	completed uint64        // fetches completed (one runs at a time)
	lastStart time.Time     // when the last fetch started
	inflight  chan struct{} // closed when the running or scheduled fetch ends
	lastErr   error
}

// NewKeyCache returns an empty cache over src.
func NewKeyCache(src KeySource, minInterval time.Duration, log *slog.Logger, onFetch func(error)) *KeyCache {
	return &KeyCache{src: src, minInterval: minInterval, log: log, onFetch: onFetch}
}

// Keys returns the current keyset, nil before the first fetch. A refetch
// that finds the same keys keeps the same *Keyset, so a pointer comparison
// tells whether anything changed.
func (c *KeyCache) Keys() *token.Keyset { return c.keys.Load() }

// Loaded reports whether a fetch has succeeded.
func (c *KeyCache) Loaded() bool { return c.keys.Load() != nil }

// Refresh waits for a fetch that starts after it is called: one scheduled
// and not started yet is joined, one already running is waited out and
// followed by another. Fetches start at least MinInterval apart. It returns
// the error of the fetch it waited for, or the context's.
func (c *KeyCache) Refresh(ctx context.Context) error { return c.wait(ctx, true) }

// Load waits for the keys to be fetched once: it joins a fetch in progress,
// or starts one. It returns the error of the fetch it waited for, or the
// context's.
func (c *KeyCache) Load(ctx context.Context) error {
	if c.Loaded() {
		return nil
	}
	return c.wait(ctx, false)
}

func (c *KeyCache) wait(ctx context.Context, fresh bool) error {
	c.mu.Lock()
	want := c.started + 1
	if !fresh && c.inflight != nil {
		want = c.completed + 1
	}
	for c.completed < want {
		if c.inflight == nil {
			c.inflight = make(chan struct{})
			interval := c.minInterval
			if c.keys.Load() == nil {
				// Nothing can be verified until the first keys arrive
				// (identity may still be starting): try again soon.
				interval = min(interval, firstLoadInterval)
			}
			go c.fetch(c.inflight, max(time.Until(c.lastStart.Add(interval)), 0))
		}
		done := c.inflight
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		c.mu.Lock()
	}
	err := c.lastErr
	c.mu.Unlock()
	return err
}

// fetch runs one fetch after delay and closes done. Its context is not a
// request's: a fetch that requests wait for finishes even if they go.
func (c *KeyCache) fetch(done chan struct{}, delay time.Duration) {
	if delay > 0 {
		time.Sleep(delay)
	}
	c.mu.Lock()
	c.started++
	c.lastStart = time.Now()
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	ks, err := c.src.SigningKeys(ctx)
	cancel()
	if err == nil && ks.Len() == 0 {
		err = errors.New("the JWKS has no key")
	}
	if err == nil {
		old := c.keys.Load()
		if !sameKeys(old, ks) {
			c.keys.Store(ks)
			c.log.Info("signing keys loaded", slog.Any("kids", kids(ks)))
		}
	}
	if err != nil {
		err = fmt.Errorf("auth: fetch signing keys: %w", err)
		c.log.Warn("signing keys not refreshed", slog.String("error", err.Error()))
	}
	if c.onFetch != nil {
		c.onFetch(err)
	}
	c.mu.Lock()
	c.completed++
	c.lastErr = err
	c.inflight = nil
	c.mu.Unlock()
	close(done)
}

// Run refreshes the keys every interval until ctx ends, so that retired
// keys disappear and the next key is known before it signs.
func (c *KeyCache) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Refresh(ctx) // logged by fetch
		}
	}
}

// sameKeys reports whether two keysets have the same keys.
func sameKeys(a, b *token.Keyset) bool {
	if a.Len() != b.Len() {
		return false
	}
	ak, bk := a.Keys(), b.Keys()
	slices.SortFunc(ak, func(x, y token.JWK) int { return strings.Compare(x.Kid, y.Kid) })
	slices.SortFunc(bk, func(x, y token.JWK) int { return strings.Compare(x.Kid, y.Kid) })
	return slices.Equal(ak, bk)
}

func kids(ks *token.Keyset) []string {
	var ids []string
	for _, k := range ks.Keys() {
		ids = append(ids, k.Kid)
	}
	slices.Sort(ids)
	return ids
}
