package sidecar

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"google.golang.org/grpc/codes"
)

// failure classifies a failed attempt; each class but none and timeout
// matches one retry_on name.
type failure uint8

const (
	failNone        failure = iota
	failReset               // no response: connection refused, reset, broken
	failUnavailable         // gRPC UNAVAILABLE in a trailers-only response
	fail5xx                 // HTTP 502, 503 or 504
	failDeadline            // gRPC DEADLINE_EXCEEDED, or the per-try timeout
	failExhausted           // gRPC RESOURCE_EXHAUSTED
	failTimeout             // the destination timeout: never retried
	failCanceled            // the client went away: never retried
	failRefused             // refused unprocessed (GOAWAY, REFUSED_STREAM)
	failConnect             // no connection: the request was not sent
)

var retryOnNames = map[string]failure{
	"reset":              failReset,
	"unavailable":        failUnavailable,
	"5xx":                fail5xx,
	"deadline-exceeded":  failDeadline,
	"resource-exhausted": failExhausted,
}

// gateway reports whether f is a gateway error, which outlier detection
// counts against the endpoint.
func (f failure) gateway() bool {
	return f == failReset || f == failUnavailable || f == fail5xx || f == failConnect
}

// policyClass is the retry_on class f falls under.
func (f failure) policyClass() failure {
	if f == failRefused || f == failConnect {
		return failReset
	}
	return f
}

// maxTransparent bounds the attempts of a call retried because its
// request was never processed, whatever the policy: sent again elsewhere,
// it cannot be processed twice.
const maxTransparent = 3

// classifyError classifies a RoundTrip error. ctx is the request's context
// with the destination timeout, tctx the attempt's, client the client
// request's own.
func classifyError(client, ctx, tctx context.Context) failure {
	switch {
	case client.Err() != nil:
		return failCanceled
	case ctx.Err() != nil:
		return failTimeout
	case tctx.Err() != nil:
		return failDeadline
	}
	return failReset
}

// classifyResponse classifies a response by what can be seen before its
// body: the HTTP status, and for gRPC the status of a trailers-only
// response. A status in trailers comes too late to retry.
func classifyResponse(resp *http.Response, grpc bool) failure {
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fail5xx
	}
	if !grpc {
		return failNone
	}
	if v := resp.Header["Grpc-Status"]; len(v) > 0 {
		return grpcFailure(v[0])
	}
	return failNone
}

func grpcFailure(status string) failure {
	c, _ := grpcStatus(status)
	switch c {
	case codes.Unavailable:
		return failUnavailable
	case codes.DeadlineExceeded:
		return failDeadline
	case codes.ResourceExhausted:
		return failExhausted
	}
	return failNone
}

// maxReplay is the largest request body kept for a retry. Beyond it the
// request is not retried: the body has been sent and is gone.
const maxReplay = 64 << 10

var errReplayLost = errors.New("sidecar: request body beyond what was kept for a retry")
var errReplayClosed = errors.New("sidecar: attempt abandoned")

// replayBody keeps what is read of a request body, up to maxReplay, so that
// a retry can send it again. Each attempt reads through its own
// replayReader: from the kept bytes first, then from the client. One
// reader at a time reads the client; an attempt given up on may still be
// in that read (a transport closes bodies asynchronously), and what it gets
// is kept for the others. The client read happens without the lock, so
// that a stalled client stream never blocks the replay of kept bytes.
type replayBody struct {
	mu       sync.Mutex
	cond     sync.Cond
	src      io.ReadCloser
	buf      []byte
	total    int // bytes read from src
	reading  bool
	overflow bool // more than maxReplay read: buf is incomplete
	eof      bool
	err      error
}

func newReplayBody(src io.ReadCloser) *replayBody {
	b := &replayBody{src: src}
	b.cond.L = &b.mu
	return b
}

// replayable reports whether a new attempt can send the whole body.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow && b.err == nil
}

func (b *replayBody) reader() *replayReader { return &replayReader{b: b} }

type replayReader struct {
	b      *replayBody
	off    int
	closed bool
}

func (r *replayReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	for {
		switch {
		case r.closed:
			b.mu.Unlock()
			return 0, errReplayClosed
		case r.off < len(b.buf):
			n := copy(p, b.buf[r.off:])
			r.off += n
			b.mu.Unlock()
			return n, nil
		case r.off < b.total:
			b.mu.Unlock()
			return 0, errReplayLost
		case b.eof:
			b.mu.Unlock()
			return 0, io.EOF
		case b.err != nil:
			b.mu.Unlock()
			return 0, b.err
		}
		if !b.reading {
			break
		}
		b.cond.Wait()
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.src.Read(p)

	b.mu.Lock()
	b.reading = false
	if n > 0 {
		if !b.overflow && len(b.buf)+n <= maxReplay {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.overflow = true
		}
		b.total += n
		r.off += n
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
	return n, err
}

// Close ends this attempt's reading; the client's body stays open for the
// next attempt (the server closes it when the request ends).
func (r *replayReader) Close() error {
	r.b.mu.Lock()
	r.closed = true
	r.b.cond.Broadcast()
	r.b.mu.Unlock()
	return nil
}
