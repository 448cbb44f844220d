package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraScript decides every limit of a request atomically, on Redis's clock
// (so replicas with skewed clocks agree), in microseconds. KEYS are the
// limit keys; ARGV holds, per key, its interval and its burst. It stores
// the new TATs only when every limit allows the request, each expiring when
// its key would be new again. Numbers are written with %.0f: Lua's default
// formatting would round a microsecond timestamp.
//
// It returns {allowed, retry_us, remaining, reset_us, burst}, the last
// three of the tightest limit.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed, retry = 1, 0
local best_rem, best_reset, best_burst = -1, 0, 0
local news = {}
for i = 1, #KEYS do
  local iv = tonumber(ARGV[2*i-1])
  local burst = tonumber(ARGV[2*i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local new = tat + iv
  local allow_at = new - burst * iv
  local rem, reset
  if now < allow_at then
    allowed = 0
    if allow_at - now > retry then retry = allow_at - now end
    rem, reset = 0, tat - now
  else
    rem, reset = math.floor((now - allow_at) / iv), new - now
  end
  news[i] = new
  if best_rem < 0 or rem < best_rem then best_rem, best_reset, best_burst = rem, reset, burst end
end
if allowed == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.0f', news[i]), 'PX', string.format('%.0f', math.ceil((news[i] - now) / 1000) + 1))
  end
end
return {allowed, retry, best_rem, best_reset, best_burst}
`)

// KeyPrefix starts every key the Redis limiter writes.
const KeyPrefix = "marquee:rl:"

// RedisOptions tune a Redis limiter.
type RedisOptions struct {
	// Timeout bounds each decision made in Redis; past it the request is
	// decided locally. Default 100ms.
	Timeout time.Duration
	// RetryEvery is how often, while Redis is unreachable, one request
	// tries it again. Default 1s.
	RetryEvery time.Duration
	// OnState, when set, is told when Redis becomes unreachable (false)
	// and reachable again (true).
	OnState func(up bool)
	// OnFallback, when set, is told of each decision made locally because
	// Redis was unreachable.
	OnFallback func()
}

// Redis is a limiter shared through Redis, falling back to a Local.
type Redis struct {
	client *redis.Client
	local  *Local
	log    *slog.Logger
	opts   RedisOptions

	down      atomic.Bool
	mu        sync.Mutex
	nextProbe time.Time
}

// NewRedis returns a limiter over the Redis at url (redis://host:port/db),
// deciding locally with local while Redis is unreachable. It does not
// connect until the first decision.
func NewRedis(url string, local *Local, log *slog.Logger, opts RedisOptions) (*Redis, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: Redis URL: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = time.Second
	}
	o.MaxRetries = -1 // no retries: fall back instead
	o.DialTimeout = 2 * opts.Timeout
	o.DialerRetries = 1
	o.ReadTimeout = opts.Timeout
	o.WriteTimeout = opts.Timeout
	o.ContextTimeoutEnabled = true
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{client: redis.NewClient(o), local: local, log: log, opts: opts}, nil
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// Degraded reports whether decisions are being made locally because Redis
// is unreachable.
func (r *Redis) Degraded() bool { return r.down.Load() }

// Allow decides reqs in Redis, or locally while Redis is unreachable. It
// never fails.
func (r *Redis) Allow(ctx context.Context, reqs []Request) (Decision, error) {
	if len(reqs) == 0 {
		return Decision{Allowed: true}, nil
	}
	if r.down.Load() && !r.probeDue() {
		return r.fallback(ctx, reqs)
	}
	d, err := r.eval(ctx, reqs)
	if err != nil {
		if ctx.Err() != nil { // the caller went away; not Redis's fault
			return r.local.Allow(ctx, reqs)
		}
		if r.down.CompareAndSwap(false, true) {
			r.log.Warn("rate limiting: Redis unreachable; limiting in process until it is back",
				slog.String("error", err.Error()))
			if r.opts.OnState != nil {
				r.opts.OnState(false)
			}
			r.mu.Lock()
			r.nextProbe = time.Now().Add(r.opts.RetryEvery)
			r.mu.Unlock()
		}
		return r.fallback(ctx, reqs)
	}
	if r.down.CompareAndSwap(true, false) {
		r.log.Info("rate limiting: Redis is back; limits are shared again")
		if r.opts.OnState != nil {
			r.opts.OnState(true)
		}
	}
	return d, nil
}

func (r *Redis) fallback(ctx context.Context, reqs []Request) (Decision, error) {
	if r.opts.OnFallback != nil {
		r.opts.OnFallback()
	}
	return r.local.Allow(ctx, reqs)
}

// probeDue lets one request per RetryEvery try Redis while it is down.
func (r *Redis) probeDue() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Before(r.nextProbe) {
		return false
	}
	r.nextProbe = now.Add(r.opts.RetryEvery)
	return true
}

func (r *Redis) eval(ctx context.Context, reqs []Request) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	keys := make([]string, len(reqs))
	args := make([]any, 0, 2*len(reqs))
	for i, q := range reqs {
		keys[i] = KeyPrefix + q.Key
		args = append(args, strconv.FormatInt(max(q.Limit.Interval.Microseconds(), 1), 10), strconv.Itoa(q.Limit.Burst))
	}
	res, err := gcraScript.Run(ctx, r.client, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 5 {
		return Decision{}, errors.New("ratelimit: unexpected script reply")
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Decision{
		Allowed:    res[0] == 1,
		RetryAfter: us(res[1]),
		Remaining:  int(res[2]),
		Reset:      us(res[3]),
		Limit:      int(res[4]),
	}, nil
}
