// Package ratelimit decides whether a request may pass, with the generic
// cell rate algorithm (GCRA): a limit lets Burst requests through at once
// and then one every Interval; the state of a key is a single timestamp,
// its theoretical arrival time (TAT).
//
// A request may be subject to several limits at once (per address and per
// account for a login): it passes only if every limit allows it, and then
// counts against all of them; a refused request counts against none.
//
// Local keeps the state in process. Redis keeps it in Redis, shared by
// every gateway replica, deciding with one atomic Lua script per request;
// when Redis cannot be reached it decides with its Local instead, says so
// (log and Degraded), and goes back to Redis once it answers again.
package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Limit is Burst requests at once, then one per Interval.
type Limit struct {
	Interval time.Duration
	Burst    int
}

// Request asks one limit for one key.
type Request struct {
	Key   string
	Limit Limit
}

// Decision is the answer for a request.
type Decision struct {
	Allowed bool
	// RetryAfter, when refused, is how long until the request would pass.
	RetryAfter time.Duration
	// Limit, Remaining and Reset describe the tightest limit for the
	// RateLimit-* headers: its burst, the requests left now, and the time
	// until it is back to its full burst.
	Limit     int
	Remaining int
	Reset     time.Duration
}

// Limiter decides requests.
type Limiter interface {
	Allow(ctx context.Context, reqs []Request) (Decision, error)
}

// gcra is the decision for one key at now (nanoseconds on any clock),
// given its TAT (0 for a new key): the new TAT if allowed, whether it is,
// and the figures for the headers.
func gcra(now, tat int64, l Limit) (newTAT int64, allowed bool, retry, remaining, reset int64) {
	iv := int64(l.Interval)
	burst := int64(l.Burst)
	if tat < now {
		tat = now
	}
	newTAT = tat + iv
	allowAt := newTAT - burst*iv
	if now < allowAt {
		// refused: the state stays
		return tat, false, allowAt - now, 0, tat - now
	}
	remaining = (now - allowAt) / iv
	return newTAT, true, 0, remaining, newTAT - now
}

// merge folds one key's figures into d: refusal wins; the tightest limit
// (fewest remaining) gives the headers.
func merge(d *Decision, first bool, l Limit, allowed bool, retry, remaining, reset int64) {
	if first {
		*d = Decision{Allowed: true, Limit: l.Burst, Remaining: math.MaxInt}
	}
	if !allowed {
		d.Allowed = false
		d.RetryAfter = max(d.RetryAfter, time.Duration(retry))
	}
	if int(remaining) < d.Remaining {
		d.Limit, d.Remaining, d.Reset = l.Burst, int(remaining), time.Duration(reset)
	}
}

// Local is an in-process limiter. Keys live in shards, each with its own
// lock; a key whose TAT has passed is equivalent to a new one, so such keys
// are swept when a shard grows past its share of MaxKeys, and if the shard
// is still full the key being added evicts an arbitrary one (its holder
// starts afresh: memory stays bounded under a flood of addresses).
type Local struct {
	start  time.Time
	seed   maphash.Seed
	shards [numShards]shard
	max    int // keys per shard
}

const numShards = 64

type shard struct {
	mu   sync.Mutex
	tats map[string]int64
}

// DefaultMaxKeys bounds the keys a Local remembers.
const DefaultMaxKeys = 1 << 20

// NewLocal returns a Local remembering at most maxKeys keys (0 means
// DefaultMaxKeys).
func NewLocal(maxKeys int) *Local {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &Local{start: time.Now(), seed: maphash.MakeSeed(), max: max(maxKeys/numShards, 1)}
	for i := range l.shards {
		l.shards[i].tats = map[string]int64{}
	}
	return l
}

// Allow decides reqs now. It never fails.
func (l *Local) Allow(_ context.Context, reqs []Request) (Decision, error) {
	return l.AllowAt(time.Since(l.start), reqs), nil
}

// AllowAt decides reqs at now, a time on the limiter's own clock (the time
// since it was made). Several requests are decided together: their shards
// are locked in index order.
func (l *Local) AllowAt(now time.Duration, reqs []Request) Decision {
	var d Decision
	if len(reqs) == 1 {
		s := &l.shards[maphash.String(l.seed, reqs[0].Key)%numShards]
		s.mu.Lock()
		tat := s.tats[reqs[0].Key]
		newTAT, ok, retry, rem, reset := gcra(int64(now), tat, reqs[0].Limit)
		if ok {
			l.store(s, reqs[0].Key, newTAT, int64(now))
		}
		s.mu.Unlock()
		merge(&d, true, reqs[0].Limit, ok, retry, rem, reset)
		return d
	}
	if len(reqs) == 0 {
		return Decision{Allowed: true}
	}
	idx := make([]uint64, len(reqs))
	var locked [numShards]bool
	for i, r := range reqs {
		idx[i] = maphash.String(l.seed, r.Key) % numShards
		locked[idx[i]] = true
	}
	for i := range locked {
		if locked[i] {
			l.shards[i].mu.Lock()
			defer l.shards[i].mu.Unlock()
		}
	}
	newTATs := make([]int64, len(reqs))
	all := true
	for i, r := range reqs {
		tat := l.shards[idx[i]].tats[r.Key]
		var ok bool
		var retry, rem, reset int64
		newTATs[i], ok, retry, rem, reset = gcra(int64(now), tat, r.Limit)
		merge(&d, i == 0, r.Limit, ok, retry, rem, reset)
		all = all && ok
	}
	if all {
		for i, r := range reqs {
			l.store(&l.shards[idx[i]], r.Key, newTATs[i], int64(now))
		}
	}
	return d
}

// Peek reports whether a request for key under lim would be allowed now,
// without counting it.
func (l *Local) Peek(key string, lim Limit) bool {
	now := int64(time.Since(l.start))
	s := &l.shards[maphash.String(l.seed, key)%numShards]
	s.mu.Lock()
	tat := s.tats[key]
	s.mu.Unlock()
	_, ok, _, _, _ := gcra(now, tat, lim)
	return ok
}

// store sets a key's TAT; the shard is locked.
func (l *Local) store(s *shard, key string, tat, now int64) {
	if _, ok := s.tats[key]; !ok && len(s.tats) >= l.max {
		for k, t := range s.tats {
			if t <= now {
				delete(s.tats, k)
			}
		}
		for k := range s.tats {
			if len(s.tats) < l.max {
				break
			}
			delete(s.tats, k)
		}
	}
	s.tats[key] = tat
}

// Len is the number of keys remembered.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].tats)
		l.shards[i].mu.Unlock()
	}
	return n
}
