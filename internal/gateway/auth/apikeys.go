package auth

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// APIKeyPrefix starts every Marquee API key.
const APIKeyPrefix = "mq_"

// ErrInvalidAPIKey is what an APIKeyVerifier returns for a key that is
// unknown, revoked or expired.
var ErrInvalidAPIKey = errors.New("invalid API key")

// APIKeyOwner is whom an API key belongs to.
type APIKeyOwner struct {
	AccountID string
	KeyID     string
	Roles     []string
}

// APIKeyVerifier asks identity whom an API key belongs to. It returns
// ErrInvalidAPIKey (possibly wrapped) for a key that does not work, and any
// other error when it could not tell.
type APIKeyVerifier interface {
	VerifyAPIKey(ctx context.Context, key string) (APIKeyOwner, error)
}

// apiKeyCache remembers answers of an APIKeyVerifier, keyed by the SHA-256
// of the key (the secret itself is not kept): good answers for ttl, refusals
// for negTTL. It is an LRU of at most size entries.
type apiKeyCache struct {
	ttl, negTTL time.Duration
	size        int

	mu  sync.Mutex
	ll  *list.List // front: most recently used
	idx map[[32]byte]*list.Element
}

type apiKeyEntry struct {
	hash    [32]byte
	owner   APIKeyOwner
	invalid bool
	until   time.Time
}

func newAPIKeyCache(ttl, negTTL time.Duration, size int) *apiKeyCache {
	return &apiKeyCache{ttl: ttl, negTTL: negTTL, size: size, ll: list.New(), idx: map[[32]byte]*list.Element{}}
}

func (c *apiKeyCache) get(h [32]byte, now time.Time) (apiKeyEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.idx[h]
	if !ok {
		return apiKeyEntry{}, false
	}
	e := el.Value.(*apiKeyEntry)
	if !now.Before(e.until) {
		c.ll.Remove(el)
		delete(c.idx, h)
		return apiKeyEntry{}, false
	}
	c.ll.MoveToFront(el)
	return *e, true
}

func (c *apiKeyCache) put(e apiKeyEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.idx[e.hash]; ok {
		*el.Value.(*apiKeyEntry) = e
		c.ll.MoveToFront(el)
		return
	}
	c.idx[e.hash] = c.ll.PushFront(&e)
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.idx, last.Value.(*apiKeyEntry).hash)
	}
}

// len is the number of entries.
func (c *apiKeyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// lookup answers from the cache or asks v, caching the answer.
func (c *apiKeyCache) lookup(ctx context.Context, v APIKeyVerifier, key string, now time.Time) (APIKeyOwner, error) {
	h := sha256.Sum256([]byte(key))
	if e, ok := c.get(h, now); ok {
		if e.invalid {
			return APIKeyOwner{}, ErrInvalidAPIKey
		}
		return e.owner, nil
	}
	owner, err := v.VerifyAPIKey(ctx, key)
	switch {
	case errors.Is(err, ErrInvalidAPIKey):
		c.put(apiKeyEntry{hash: h, invalid: true, until: now.Add(c.negTTL)})
		return APIKeyOwner{}, ErrInvalidAPIKey
	case err != nil:
		return APIKeyOwner{}, err
	case owner.AccountID == "":
		return APIKeyOwner{}, ErrInvalidAPIKey
	}
	c.put(apiKeyEntry{hash: h, owner: owner, until: now.Add(c.ttl)})
	return owner, nil
}
