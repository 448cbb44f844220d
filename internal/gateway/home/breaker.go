package home

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errCircuitOpen is what a call to a dependency whose breaker is open fails
// with, at once.
var errCircuitOpen = errors.New("home: circuit open")

// breaker is a per-dependency circuit breaker. Closed, it lets calls
// through and counts consecutive failures; at threshold it opens for
// cooldown, failing calls at once; then it lets one probe through
// (half-open): a success closes it, a failure opens it again.
//
// Failures are what says the dependency is unwell: Unavailable,
// DeadlineExceeded, Internal, Unknown, ResourceExhausted, Unimplemented,
// or a local deadline. Answers about the request (NotFound,
// InvalidArgument, ...) are successes; a call cancelled by the client
// counts as neither.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, cooldown time.Duration, now func() time.Time) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, now: now}
}

// allow reports whether a call may go out now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return true
	}
	if b.now().Before(b.openUntil) || b.probing {
		return false
	}
	b.probing = true
	return true
}

// open reports whether the breaker is failing calls at once.
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold
}

// record notes the outcome of a call that allow let through.
func (b *breaker) record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch outcome(err) {
	case success:
		b.failures = 0
	case failure:
		b.failures++
		if b.failures >= b.threshold {
			b.openUntil = b.now().Add(b.cooldown)
		}
	}
}

type result int

const (
	success result = iota
	failure
	neutral
)

func outcome(err error) result {
	if err == nil {
		return success
	}
	if errors.Is(err, context.Canceled) {
		return neutral
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure
	}
	st, ok := status.FromError(err)
	if !ok {
		return failure // dialing failed, or some local error
	}
	switch st.Code() {
	case codes.Canceled:
		return neutral
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown,
		codes.ResourceExhausted, codes.Unimplemented, codes.DataLoss:
		return failure
	}
	return success
}
