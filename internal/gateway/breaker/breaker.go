// Package breaker is a circuit breaker per upstream. Closed, it lets every
// request through and counts outcomes; it opens after Failures consecutive
// failures, or when at least MinRequests requests in the last Window failed
// at ErrorRate or more. Open, it refuses requests at once for OpenFor; then
// it is half-open and lets one probe request through at a time: a success
// closes it, a failure opens it again.
//
// What counts as a failure is the caller's decision (an upstream that is
// unavailable or times out, not a client error); requests the caller
// reports as Ignored (the client went away) count for nothing.
package breaker

import (
	"fmt"
	"sync"
	"time"
)

// Defaults for zero Settings fields.
const (
	DefaultFailures    = 5
	DefaultErrorRate   = 0.5
	DefaultMinRequests = 20
	DefaultWindow      = 10 * time.Second
	DefaultOpenFor     = 2 * time.Second
)

// Settings tune a breaker. Zero fields take the defaults.
type Settings struct {
	Failures    int
	ErrorRate   float64
	MinRequests int
	Window      time.Duration
	OpenFor     time.Duration
}

func (s Settings) withDefaults() Settings {
	if s.Failures <= 0 {
		s.Failures = DefaultFailures
	}
	if s.ErrorRate <= 0 {
		s.ErrorRate = DefaultErrorRate
	}
	if s.MinRequests <= 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.Window <= 0 {
		s.Window = DefaultWindow
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	return s
}

// State of a breaker.
type State int

// States.
const (
	Closed State = iota
	Open
	HalfOpen
)

// String names the state.
func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "closed"
}

// Outcome of a request, as the caller judges it.
type Outcome int

// Outcomes.
const (
	Success Outcome = iota
	Failure
	Ignored
)

// OpenError is the refusal of an open breaker.
type OpenError struct {
	Upstream   string
	RetryAfter time.Duration
}

// Error names the upstream and when to retry.
func (e *OpenError) Error() string {
	return fmt.Sprintf("the circuit to %s is open after repeated failures; retry in %v", e.Upstream, e.RetryAfter.Round(time.Second))
}

const buckets = 10

// Breaker is one upstream's breaker. It is safe for concurrent use.
type Breaker struct {
	name     string
	onChange func(name string, from, to State)

	mu        sync.Mutex
	s         Settings
	state     State
	openUntil time.Time
	probing   bool // half-open: a probe is in flight
	consec    int
	// the rolling window: buckets of Window/buckets each
	bucketAt [buckets]int64 // bucket start, in bucket units since the epoch
	total    [buckets]int
	failed   [buckets]int
}

// New returns a closed breaker for upstream name; onChange, when not nil,
// is called (with the breaker locked: it must not call back) on every state
// change.
func New(name string, s Settings, onChange func(name string, from, to State)) *Breaker {
	return &Breaker{name: name, s: s.withDefaults(), onChange: onChange}
}

// SetSettings changes the settings, keeping the state.
func (b *Breaker) SetSettings(s Settings) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s = s.withDefaults()
}

// State returns the current state (an open breaker past OpenFor reports
// half-open).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && !time.Now().Before(b.openUntil) {
		return HalfOpen
	}
	return b.state
}

// Allow asks to send a request. It returns an *OpenError when the breaker
// refuses, and otherwise done, to be called exactly once with the outcome.
func (b *Breaker) Allow() (done func(Outcome), err error) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if now.Before(b.openUntil) {
			return nil, &OpenError{Upstream: b.name, RetryAfter: b.openUntil.Sub(now)}
		}
		b.set(HalfOpen)
		fallthrough
	case HalfOpen:
		if b.probing {
			return nil, &OpenError{Upstream: b.name, RetryAfter: time.Second}
		}
		b.probing = true
		return b.probeDone, nil
	}
	return b.closedDone, nil
}

func (b *Breaker) probeDone(o Outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if b.state != HalfOpen {
		return
	}
	switch o {
	case Success:
		b.consec = 0
		clear(b.total[:])
		clear(b.failed[:])
		b.set(Closed)
	case Failure:
		b.trip(time.Now())
	}
}

func (b *Breaker) closedDone(o Outcome) {
	if o == Ignored {
		return
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Closed {
		return // an old request finishing after the breaker opened
	}
	i := b.bucket(now)
	b.total[i]++
	if o == Success {
		b.consec = 0
		return
	}
	b.failed[i]++
	b.consec++
	if b.consec >= b.s.Failures {
		b.trip(now)
		return
	}
	total, failed := 0, 0
	for j := range buckets {
		total += b.total[j]
		failed += b.failed[j]
	}
	if total >= b.s.MinRequests && float64(failed) >= b.s.ErrorRate*float64(total) {
		b.trip(now)
	}
}

// bucket returns the index of now's bucket, clearing stale buckets.
func (b *Breaker) bucket(now time.Time) int {
	width := max(int64(b.s.Window/buckets), 1)
	at := now.UnixNano() / width
	i := int(at % buckets)
	if b.bucketAt[i] != at {
		b.bucketAt[i], b.total[i], b.failed[i] = at, 0, 0
	}
	// buckets older than the window are cleared as they are reused; skip
	// the ones that belong to an earlier lap
	for j := range buckets {
		if at-b.bucketAt[j] >= buckets {
			b.total[j], b.failed[j] = 0, 0
		}
	}
	return i
}

func (b *Breaker) trip(now time.Time) {
	b.openUntil = now.Add(b.s.OpenFor)
	b.consec = 0
	clear(b.total[:])
	clear(b.failed[:])
	b.set(Open)
}

func (b *Breaker) set(s State) {
	if b.state == s {
		return
	}
	from := b.state
	b.state = s
	if b.onChange != nil {
		b.onChange(b.name, from, s)
	}
}
