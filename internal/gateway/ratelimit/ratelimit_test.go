package ratelimit

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGCRA(t *testing.T) {
	l := NewLocal(0)
	lim := Limit{Interval: 100 * time.Millisecond, Burst: 3}
	req := []Request{{Key: "k", Limit: lim}}
	steps := []struct {
		at            time.Duration
		wantAllowed   bool
		wantRemaining int
		wantRetry     time.Duration
	}{
		{0, true, 2, 0},
		{0, true, 1, 0},
		{0, true, 0, 0},
		{0, false, 0, 100 * time.Millisecond},
		{50 * time.Millisecond, false, 0, 50 * time.Millisecond},
		{100 * time.Millisecond, true, 0, 0},
		{100 * time.Millisecond, false, 0, 100 * time.Millisecond},
		{time.Second, true, 2, 0}, // back to the full burst
	}
	for i, s := range steps {
		d := l.AllowAt(s.at, req)
		if d.Allowed != s.wantAllowed || d.Remaining != s.wantRemaining || d.RetryAfter != s.wantRetry || d.Limit != 3 {
			t.Errorf("step %d at %v: AllowAt = %+v, want allowed %v remaining %d retry %v limit 3",
				i, s.at, d, s.wantAllowed, s.wantRemaining, s.wantRetry)
		}
	}
}

// TestGCRARate checks the admitted rate over a long stretch of simulated
// time: burst plus one per interval.
func TestGCRARate(t *testing.T) {
	l := NewLocal(0)
	lim := Limit{Interval: 10 * time.Millisecond, Burst: 5}
	admitted := 0
	for at := time.Duration(0); at < 10*time.Second; at += time.Millisecond { // 1000/s offered
		if l.AllowAt(at, []Request{{Key: "k", Limit: lim}}).Allowed {
			admitted++
		}
	}
	if want := 5 + 1000 - 1; admitted < want-1 || admitted > want+1 {
		t.Errorf("admitted over 10 s at 100/s burst 5 = %d, want about %d", admitted, want)
	}
}

// TestAllOrNothing checks that a request refused by one limit counts
// against none.
func TestAllOrNothing(t *testing.T) {
	l := NewLocal(0)
	wide := Limit{Interval: time.Second, Burst: 100}
	narrow := Limit{Interval: time.Hour, Burst: 1}
	both := []Request{{Key: "addr", Limit: wide}, {Key: "account", Limit: narrow}}
	if d := l.AllowAt(0, both); !d.Allowed {
		t.Fatalf("first = %+v, want allowed", d)
	}
	for i := range 5 {
		if d := l.AllowAt(0, both); d.Allowed || d.RetryAfter != time.Hour {
			t.Fatalf("refused %d = %+v, want refused for an hour", i, d)
		}
	}
	// The address limit counted only the first request.
	if d := l.AllowAt(0, []Request{{Key: "addr", Limit: wide}}); d.Remaining != 98 {
		t.Errorf("address limit after 1 admitted and 5 refused: remaining %d, want 98 (this one and the first)", d.Remaining)
	}
}

func TestLocalBounded(t *testing.T) {
	l := NewLocal(numShards * 4)
	lim := Limit{Interval: time.Hour, Burst: 10}
	for i := range 10000 {
		l.AllowAt(0, []Request{{Key: strconv.Itoa(i), Limit: lim}})
	}
	if n := l.Len(); n > numShards*4 {
		t.Errorf("Len after 10000 keys with room for %d = %d", numShards*4, n)
	}
}

func TestLocalConcurrent(t *testing.T) {
	l := NewLocal(0)
	lim := Limit{Interval: time.Hour, Burst: 100}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				d, _ := l.Allow(context.Background(), []Request{{Key: "a", Limit: lim}, {Key: "b", Limit: lim}})
				if d.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 100 {
		t.Errorf("800 concurrent requests against a burst of 100 admitted %d, want 100", admitted.Load())
	}
}

func redisURL(t *testing.T) string {
	u := os.Getenv("MARQUEE_TEST_REDIS")
	if u == "" {
		t.Skip("MARQUEE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0)")
	}
	return u
}

// TestRedis decides in Redis: burst, refusal, the all-or-nothing rule, and
// two limiters (two gateway replicas) sharing one budget.
func TestRedis(t *testing.T) {
	url := redisURL(t)
	a, err := NewRedis(url, NewLocal(0), nil, RedisOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewRedis(url, NewLocal(0), nil, RedisOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	prefix := fmt.Sprintf("test-%d-", time.Now().UnixNano())
	lim := Limit{Interval: time.Hour, Burst: 4}
	admitted := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d, err := l.Allow(ctx, []Request{{Key: prefix + "k", Limit: lim}})
		if err != nil {
			t.Fatal(err)
		}
		if a.Degraded() {
			t.Fatal("Redis limiter degraded with Redis up")
		}
		if d.Allowed {
			admitted++
			if d.Remaining != 4-admitted {
				t.Errorf("request %d: remaining %d, want %d", i, d.Remaining, 4-admitted)
			}
		} else if d.RetryAfter <= 59*time.Minute || d.RetryAfter > time.Hour {
			t.Errorf("request %d refused with retry %v, want about an hour", i, d.RetryAfter)
		}
	}
	if admitted != 4 {
		t.Errorf("two replicas admitted %d of 10 against a shared burst of 4, want 4", admitted)
	}
	narrow := []Request{{Key: prefix + "wide", Limit: Limit{Interval: time.Second, Burst: 100}}, {Key: prefix + "narrow", Limit: Limit{Interval: time.Hour, Burst: 1}}}
	for i := range 3 {
		d, _ := a.Allow(ctx, narrow)
		if d.Allowed != (i == 0) {
			t.Errorf("all-or-nothing request %d: allowed %v", i, d.Allowed)
		}
	}
	d, _ := a.Allow(ctx, narrow[:1])
	if d.Remaining != 98 {
		t.Errorf("wide limit after 1 admitted and 2 refused: remaining %d, want 98", d.Remaining)
	}
}

// TestRedisFallback cuts the way to Redis (a proxy in between): decisions
// go on in process and the limiter says so; once Redis answers again, they
// are shared again.
func TestRedisFallback(t *testing.T) {
	url := redisURL(t)
	target, err := redisAddr(url)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, target)
	var states []bool
	var mu sync.Mutex
	l, err := NewRedis("redis://"+p.addr+"/0", NewLocal(0), nil, RedisOptions{
		Timeout: 200 * time.Millisecond, RetryEvery: 50 * time.Millisecond,
		OnState: func(up bool) { mu.Lock(); states = append(states, up); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	lim := Limit{Interval: time.Hour, Burst: 2}
	key := fmt.Sprintf("fallback-%d", time.Now().UnixNano())
	if d, _ := l.Allow(ctx, []Request{{Key: key, Limit: lim}}); !d.Allowed || l.Degraded() {
		t.Fatalf("with Redis up: %+v, degraded %v", d, l.Degraded())
	}
	p.setDown(true)
	d, _ := l.Allow(ctx, []Request{{Key: key, Limit: lim}})
	if !l.Degraded() {
		t.Fatal("Redis unreachable: not degraded")
	}
	if !d.Allowed {
		t.Errorf("first decision in process = %+v, want allowed (a fresh local budget)", d)
	}
	// The local budget is enforced too.
	l.Allow(ctx, []Request{{Key: key, Limit: lim}})
	if d, _ := l.Allow(ctx, []Request{{Key: key, Limit: lim}}); d.Allowed {
		t.Errorf("local budget of 2 exceeded: %+v", d)
	}
	p.setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for l.Degraded() {
		if time.Now().After(deadline) {
			t.Fatal("Redis back: still degraded after 5 s")
		}
		l.Allow(ctx, []Request{{Key: key + "-probe", Limit: lim}})
		time.Sleep(20 * time.Millisecond)
	}
	// Shared again: Redis remembers the one request it admitted.
	if d, _ := l.Allow(ctx, []Request{{Key: key, Limit: lim}}); !d.Allowed || d.Remaining != 0 {
		t.Errorf("after recovery = %+v, want allowed with 0 remaining (Redis's state)", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 2 || states[0] || !states[1] {
		t.Errorf("state changes = %v, want [false true]", states)
	}
}

func redisAddr(url string) (string, error) {
	var host string
	_, err := fmt.Sscanf(url, "redis://%s", &host)
	if err != nil {
		return "", err
	}
	for i := range len(host) {
		if host[i] == '/' {
			return host[:i], nil
		}
	}
	return host, nil
}

// proxy forwards TCP to a target; down closes every connection and refuses
// new ones.
type proxy struct {
	addr   string
	target string
	lis    net.Listener
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: lis.Addr().String(), target: target, lis: lis}
	t.Cleanup(func() { lis.Close(); p.setDown(true) })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}
