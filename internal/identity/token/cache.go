package token

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Source fetches the current JWKS, for example by calling
// IdentityService.ListSigningKeys and converting with KeysetFromProto.
type Source func(ctx context.Context) (*Keyset, error)

// CacheOptions tune a Cache. Zero values take the defaults.
type CacheOptions struct {
	// MaxAge is how long a fetched keyset is used before the next Verify
	// refetches it; default 5 minutes. Keys are published before they sign
	// (state "next"), so a refetch at this pace normally knows a key before
	// its first token arrives.
	MaxAge time.Duration
	// MinRefetch is the least time between two fetches caused by unknown
	// kids, so forged kids cannot make the cache hammer the source; default
	// 5 seconds.
	MinRefetch time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache verifies tokens against a keyset fetched from a Source: fetched at
// first use, again after MaxAge, and again (at most once per MinRefetch)
// when a token names a kid the keyset lacks. When a refetch fails, the last
// keyset stays in use. It is safe for concurrent use; the hot path takes no
// lock.
type Cache struct {
	src  Source
	opts CacheOptions

	current atomic.Pointer[cached]
	mu      sync.Mutex // serialises fetches
	lastTry atomic.Int64
}

type cached struct {
	ks      *Keyset
	fetched time.Time
}

// NewCache returns a Cache over src.
func NewCache(src Source, opts CacheOptions) *Cache {
	if opts.MaxAge <= 0 {
		opts.MaxAge = 5 * time.Minute
	}
	if opts.MinRefetch <= 0 {
		opts.MinRefetch = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cache{src: src, opts: opts}
}

// Keyset returns the cached keyset, fetching it when there is none or it
// is older than MaxAge (a failed refetch of an old one keeps the old one).
func (c *Cache) Keyset(ctx context.Context) (*Keyset, error) {
	now := c.opts.Now()
	cur := c.current.Load()
	if cur != nil && now.Sub(cur.fetched) < c.opts.MaxAge {
		return cur.ks, nil
	}
	ks, err := c.fetch(ctx, cur)
	if err != nil && cur != nil {
		return cur.ks, nil
	}
	return ks, err
}

// Refresh fetches the keyset now, unless another fetch happened within
// MinRefetch; it reports whether the keyset may have changed.
func (c *Cache) Refresh(ctx context.Context) (bool, error) {
	now := c.opts.Now()
	if last := c.lastTry.Load(); last != 0 && now.Sub(time.Unix(0, last)) < c.opts.MinRefetch {
		return false, nil
	}
	_, err := c.fetch(ctx, c.current.Load())
	return err == nil, err
}

// fetch fetches unless another goroutine replaced seen while this one
// waited for the lock.
func (c *Cache) fetch(ctx context.Context, seen *cached) (*Keyset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.current.Load(); cur != seen && cur != nil {
		return cur.ks, nil
	}
	now := c.opts.Now()
	c.lastTry.Store(now.UnixNano())
	ks, err := c.src(ctx)
	if err != nil {
		return nil, err
	}
	if ks == nil {
		return nil, errors.New("token: source returned no keyset")
	}
	c.current.Store(&cached{ks: ks, fetched: now})
	return ks, nil
}

// Verify verifies tokenString at now with the cached keyset; on
// ErrUnknownKey it refreshes the keyset (rate-limited by MinRefetch) and
// tries once more. An error fetching a keyset that is not there at all is
// returned as is (not wrapping ErrInvalid): the verifier is unavailable,
// not the token bad.
func (c *Cache) Verify(ctx context.Context, tokenString string, now time.Time) (Claims, error) {
	ks, err := c.Keyset(ctx)
	if err != nil {
		return Claims{}, err
	}
	claims, err := Verify(tokenString, ks, now)
	if !errors.Is(err, ErrUnknownKey) {
		return claims, err
	}
	if changed, _ := c.Refresh(ctx); !changed {
		return Claims{}, err
	}
	return Verify(tokenString, c.current.Load().ks, now)
}
