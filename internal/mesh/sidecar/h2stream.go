package sidecar

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// pstream relays one gRPC call: a stream from the caller (down) bound to a
// stream to the callee (up), a new one for each attempt. Its methods run
// on the reading goroutines of both connections, on timers and on dialers,
// always under mu.
//
// The request is forwarded as it arrives. While a retry is possible its
// bytes are also kept (up to maxReplay) to be sent again. Response headers
// are held until the end of the read that brought them: when the trailers
// came in the same read (no message), the two are sent as one trailers-
// only response, which the caller's sidecar can retry on.
type pstream struct {
	mu  sync.Mutex
	p   *Proxy
	dir string

	down *half
	up   *half // the current attempt's stream; nil between attempts
	ctx  context.Context
	ex   exchange
	rid  string // x-request-id

	// The request: headers as forwarded, and body bytes from reqBase on
	// (those not yet sent, and, while replay holds, those sent).
	fields      []hpack.HeaderField
	reqBuf      []byte
	reqBase     int64
	reqTotal    int64
	reqSent     int64 // sent on the current attempt
	reqCredited int64 // given back to the caller
	reqEnded    bool  // the caller ended the request
	reqTrailers []hpack.HeaderField
	reqEndSent  bool // the current attempt's request is complete
	replay      bool // keep sent bytes for a retry

	// The response.
	respSeen     bool // final headers received on the current attempt
	held         []hpack.HeaderField
	respStarted  bool   // headers sent to the caller
	respBuf      []byte // received, not yet sent (nor credited)
	respEnded    bool   // the callee ended the response
	respTrailers []hpack.HeaderField
	grpcStatus   string
	done         bool

	bridge *bridged // a plain HTTP request served by the HTTP path

	// Routing.
	route    streamRoute
	d        *destination // outbound
	eps      []*endpoint
	ep       *endpoint
	pool     *upPool
	retrying bool // the current attempt is a retry (counted in the budget)
	counted  bool // counted in the destination's active requests
	timer    *time.Timer
	tryTimer *time.Timer
	waiting  bool // for a connection or a fault delay
}

// streamRoute is what differs between the directions: where a call goes.
type streamRoute interface {
	// next picks the pool of the next attempt, or answers the call with
	// a mesh error and returns nil.
	next(ps *pstream, b *batch) *upPool
}

// relayFields returns the header fields to forward from fs: hop-by-hop
// fields go, as does the caller header inbound (set again by the caller).
func relayField(f hpack.HeaderField) bool {
	switch f.Name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return false
	case "te":
		return f.Value == "trailers"
	}
	return true
}

// fieldCarrier lets the trace propagator read and write header fields.
type fieldCarrier struct{ fs *[]hpack.HeaderField }

func (c fieldCarrier) Get(key string) string {
	for _, f := range *c.fs {
		if f.Name == key {
			return f.Value
		}
	}
	return ""
}

func (c fieldCarrier) Set(key, value string) {
	for i, f := range *c.fs {
		if f.Name == key {
			(*c.fs)[i].Value = value
			return
		}
	}
	*c.fs = append(*c.fs, hpack.HeaderField{Name: key, Value: value})
}

func (c fieldCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.fs))
	for _, f := range *c.fs {
		keys = append(keys, f.Name)
	}
	return keys
}

// onData handles a DATA frame of either side.
func (ps *pstream) onData(h *half, data []byte, end bool, b *batch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.bridgeEvent(h, data, end, false) {
		return
	}
	n := int32(len(data))
	switch {
	case ps.done || (h != ps.down && h != ps.up):
		h.c.credit(h, n, b)
	case h == ps.down:
		ps.reqTotal += int64(len(data))
		if ps.replay && ps.reqTotal > maxReplay {
			// Too long to keep: no retry from here on.
			ps.replay = false
		}
		if len(ps.reqBuf) == 0 && ps.up != nil && !ps.waiting && !ps.replay && ps.reqSent == ps.reqTotal-int64(len(data)) {
			// The common case: straight through, nothing kept.
			sent, _ := ps.up.c.writeData(ps.up, data, end && ps.reqTrailers == nil, b)
			ps.reqSent += int64(sent)
			ps.reqBase = ps.reqSent
			ps.creditRequestLocked(b)
			if sent < len(data) {
				ps.reqBuf = append(ps.reqBuf, data[sent:]...)
			} else if end {
				ps.reqEndSent = true
			}
			ps.reqEnded = ps.reqEnded || end
			return
		}
		ps.reqBuf = append(ps.reqBuf, data...)
		ps.reqEnded = ps.reqEnded || end
		ps.pushRequestLocked(b)
	default: // the callee's response
		if !ps.respSeen {
			// DATA before the headers is a protocol error of the callee.
			ps.upFailedLocked(failReset, "response data before headers", b)
			return
		}
		ps.releaseHeldLocked(b)
		if len(ps.respBuf) == 0 {
			sent, _ := ps.down.c.writeData(ps.down, data, false, b)
			ps.up.c.credit(ps.up, int32(sent), b)
			if sent < len(data) {
				ps.respBuf = append(ps.respBuf, data[sent:]...)
			}
		} else {
			ps.respBuf = append(ps.respBuf, data...)
		}
		if end {
			ps.respEnded = true
			ps.observeLocked(false)
		}
		ps.pushResponseLocked(b)
	}
}

// pushRequestLocked sends what the current attempt has not been sent of
// the request, as far as flow control allows.
func (ps *pstream) pushRequestLocked(b *batch) {
	up := ps.up
	if up == nil || ps.waiting || ps.reqEndSent {
		return
	}
	unsent := ps.reqBuf[ps.reqSent-ps.reqBase:]
	if len(unsent) > 0 || (ps.reqEnded && ps.reqTrailers == nil) {
		sent, err := up.c.writeData(up, unsent, ps.reqEnded && ps.reqTrailers == nil, b)
		ps.reqSent += int64(sent)
		if err != nil || sent < len(unsent) {
			ps.creditRequestLocked(b)
			return
		}
	}
	if ps.reqEnded {
		if ps.reqTrailers != nil {
			up.c.writeHeaders(up, ps.reqTrailers, true, b)
		}
		ps.reqEndSent = true
	}
	ps.creditRequestLocked(b)
}

// stopReplayLocked drops the kept request once the response has begun
// (unless a retry was started on it): no retry can need it any more.
func (ps *pstream) stopReplayLocked(b *batch) {
	if ps.respSeen && ps.replay && !ps.done {
		ps.replay = false
		ps.creditRequestLocked(b)
	}
}

// creditRequestLocked gives the caller back the request bytes sent, and
// drops them when no retry can need them.
func (ps *pstream) creditRequestLocked(b *batch) {
	if ps.reqSent > ps.reqCredited {
		ps.down.c.credit(ps.down, int32(ps.reqSent-ps.reqCredited), b)
		ps.reqCredited = ps.reqSent
	}
	if !ps.replay && ps.reqSent > ps.reqBase {
		drop := ps.reqSent - ps.reqBase
		ps.reqBuf = ps.reqBuf[drop:]
		ps.reqBase = ps.reqSent
		if len(ps.reqBuf) == 0 {
			ps.reqBuf = nil
		}
	}
}

// pushResponseLocked sends buffered response bytes and the end of the
// response as flow control allows.
func (ps *pstream) pushResponseLocked(b *batch) {
	if len(ps.respBuf) > 0 {
		sent, err := ps.down.c.writeData(ps.down, ps.respBuf, false, b)
		if ps.up != nil {
			ps.up.c.credit(ps.up, int32(sent), b)
		}
		ps.respBuf = ps.respBuf[sent:]
		if err != nil || len(ps.respBuf) > 0 {
			return
		}
		ps.respBuf = nil
	}
	if !ps.respEnded {
		return
	}
	if ps.respTrailers != nil {
		ps.down.c.writeHeaders(ps.down, ps.respTrailers, true, b)
		ps.grpcStatus = fieldValue(ps.respTrailers, "grpc-status")
		if v := fieldValue(ps.respTrailers, "x-marquee-mesh-error"); v != "" {
			ps.ex.meshErr = v
		}
	} else {
		ps.down.c.writeData(ps.down, nil, true, b)
	}
	ps.completeLocked(b)
}

// resume continues after h's flow-control window opened.
func (ps *pstream) resume(h *half, b *batch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done || ps.bridgeEvent(h, nil, false, false) {
		return
	}
	switch h {
	case ps.up:
		ps.pushRequestLocked(b)
	case ps.down:
		ps.pushResponseLocked(b)
	}
}

// onHeaders handles a header block of either side: the caller's request
// trailers, or the callee's response headers or trailers.
func (ps *pstream) onHeaders(h *half, f *http2.MetaHeadersFrame, b *batch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done || ps.bridgeEvent(h, nil, true, false) {
		return
	}
	if h == ps.down {
		if !f.StreamEnded() {
			ps.resetAllLocked(http2.ErrCodeProtocol, b)
			return
		}
		ps.reqTrailers = f.RegularFields()
		ps.reqEnded = true
		ps.pushRequestLocked(b)
		return
	}
	if h != ps.up {
		return
	}
	fields := f.Fields
	if !ps.respSeen {
		status := f.PseudoValue("status")
		if len(status) == 3 && status[0] == '1' {
			// Informational: passed on, the final headers follow.
			ps.down.c.writeHeaders(ps.down, fields, false, b)
			return
		}
		ps.respSeen = true
		ps.stopTryTimer()
		defer ps.stopReplayLocked(b)
		if f.StreamEnded() {
			ps.onTrailersOnlyLocked(fields, status, b)
			return
		}
		if fl := httpFailure(status); fl != failNone && ps.mayRetryLocked(fl) {
			ps.retryLocked(fl, b)
			return
		}
		ps.held = fields
		if b != nil {
			b.held = append(b.held, ps)
		} else {
			ps.releaseHeldLocked(nil)
		}
		return
	}
	// Trailers.
	if !f.StreamEnded() {
		ps.upFailedLocked(failReset, "headers after the response headers", b)
		return
	}
	if ps.held != nil {
		// Headers and trailers and no message: one trailers-only answer.
		merged := append(ps.held, f.RegularFields()...)
		ps.held = nil
		ps.onTrailersOnlyLocked(merged, fieldValue(merged, ":status"), b)
		return
	}
	ps.respTrailers = f.RegularFields()
	ps.respEnded = true
	ps.observeLocked(ps.respTrailers != nil && fieldValue(ps.respTrailers, "grpc-status") == "14")
	ps.pushResponseLocked(b)
}

// onTrailersOnlyLocked handles a complete response without a body: retried
// when its status says so and the policy allows, passed on otherwise.
func (ps *pstream) onTrailersOnlyLocked(fields []hpack.HeaderField, status string, b *batch) {
	fl := httpFailure(status)
	if fl == failNone {
		fl = grpcFailure(fieldValue(fields, "grpc-status"))
	}
	ps.observeLocked(fl.gateway())
	if fl != failNone && ps.mayRetryLocked(fl) {
		ps.retryLocked(fl, b)
		return
	}
	ps.grpcStatus = fieldValue(fields, "grpc-status")
	if v := fieldValue(fields, "x-marquee-mesh-error"); v != "" {
		ps.ex.meshErr = v
	}
	ps.respStarted = true
	ps.down.c.writeHeaders(ps.down, fields, true, b)
	ps.completeLocked(b)
}

func httpFailure(status string) failure {
	switch status {
	case "502", "503", "504":
		return fail5xx
	}
	return failNone
}

// releaseHeld sends held response headers (at the end of a batch).
func (ps *pstream) releaseHeld(b *batch) {
	ps.mu.Lock()
	ps.releaseHeldLocked(b)
	ps.mu.Unlock()
}

func (ps *pstream) releaseHeldLocked(b *batch) {
	if ps.held == nil || ps.done {
		return
	}
	ps.down.c.writeHeaders(ps.down, ps.held, false, b)
	ps.respStarted = true
	if v := fieldValue(ps.held, "x-marquee-mesh-error"); v != "" {
		ps.ex.meshErr = v
	}
	ps.held = nil
}

// onReset handles RST_STREAM from either side.
func (ps *pstream) onReset(h *half, code http2.ErrCode, b *batch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done || ps.bridgeEvent(h, nil, false, true) {
		return
	}
	switch h {
	case ps.down:
		ps.canceledLocked(b)
	case ps.up:
		fl := failReset
		if code == http2.ErrCodeRefusedStream {
			fl = failRefused
		}
		ps.upFailedLocked(fl, "stream reset ("+code.String()+")", b)
	}
}

// onRefused handles a stream the callee never processed (GOAWAY).
func (ps *pstream) onRefused(h *half, b *batch) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.done && h == ps.up {
		ps.upFailedLocked(failRefused, "connection going away", b)
	}
}

// onConnLost handles the loss of either side's connection.
func (ps *pstream) onConnLost(h *half, err error) {
	b := new(batch)
	defer b.flush()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done || ps.bridgeEvent(h, nil, false, true) {
		return
	}
	switch h {
	case ps.down:
		ps.canceledLocked(b)
	case ps.up:
		ps.upFailedLocked(failReset, "connection lost", b)
	}
}

// onPool is called by a pool with the connection a waiting attempt asked
// for, or the dial error.
func (ps *pstream) onPool(c *h2conn, err error) {
	b := new(batch)
	defer b.flush()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done || !ps.waiting {
		return
	}
	ps.waiting = false
	if err != nil {
		ps.observeLocked(true)
		ps.attemptFailedLocked(failConnect, err.Error(), b)
		return
	}
	ps.openLocked(c, b)
}

// attemptLocked starts an attempt: picks where, then opens the stream on
// a pooled connection, or waits for one to be dialed.
func (ps *pstream) attemptLocked(b *batch) {
	ps.ex.attempts++
	pool := ps.route.next(ps, b)
	if pool == nil {
		return
	}
	ps.pool = pool
	if c := pool.conn(); c != nil {
		ps.openLocked(c, b)
		return
	}
	ps.waiting = true
	pool.wait(ps)
}

// openLocked opens the attempt's stream on c and sends what the request
// has so far.
func (ps *pstream) openLocked(c *h2conn, b *batch) {
	ps.reqSent, ps.reqEndSent = ps.reqBase, false
	end := ps.reqEnded && ps.reqTotal == 0 && ps.reqTrailers == nil
	h, err := c.openStream(ps, ps.fields, end, b)
	if err != nil {
		// The connection filled up or went away since the pool handed it
		// out: wait for another.
		if c2 := ps.pool.conn(); c2 != nil && c2 != c {
			ps.openLocked(c2, b)
			return
		}
		ps.waiting = true
		ps.pool.wait(ps)
		return
	}
	ps.up = h
	if end {
		ps.reqEndSent = true
	}
	if ps.ep != nil {
		ps.ep.inflight.Add(1)
	}
	if ps.d != nil && ps.d.perTry > 0 {
		ps.armTryTimer()
	}
	ps.pushRequestLocked(b)
}

// upFailedLocked handles the failure of the current attempt's stream.
func (ps *pstream) upFailedLocked(fl failure, why string, b *batch) {
	if ps.respStarted {
		// Too late to retry or to answer: end the caller's call with the
		// reason in its trailers.
		ps.observeLocked(fl.gateway())
		ps.failLocked(meshError{reasonReset, codes.Unavailable, 502,
			"mesh: upstream reset calling " + ps.ex.dst + " during the response: " + why}, b)
		return
	}
	ps.held = nil
	ps.observeLocked(fl.gateway())
	ps.attemptFailedLocked(fl, why, b)
}

// attemptFailedLocked retries a failed attempt when the policy and budget
// allow, and answers the mesh error otherwise.
func (ps *pstream) attemptFailedLocked(fl failure, why string, b *batch) {
	if ps.mayRetryLocked(fl) {
		ps.retryLocked(fl, b)
		return
	}
	switch {
	case fl == failDeadline:
		ps.failLocked(ps.d.errTimeout(ps.d.perTry), b)
	case ps.dir == dirInbound:
		ps.failLocked(meshError{reasonReset, codes.Unavailable, 502,
			"mesh: " + ps.ex.dst + " application unreachable: " + truncate(why, 200)}, b)
	default:
		ps.failLocked(meshError{reasonReset, codes.Unavailable, 503,
			"mesh: upstream reset calling " + ps.ex.dst + ": " + truncate(why, 200)}, b)
	}
}

// mayRetryLocked reports whether failure fl of the current attempt is
// retried.
func (ps *pstream) mayRetryLocked(fl failure) bool {
	if ps.reqTotal > 0 && !ps.replay {
		return false
	}
	switch {
	case fl == failRefused && ps.ex.attempts < maxTransparent:
		return true
	case fl == failConnect && ps.ex.attempts < maxTransparent && len(ps.eps) > 1:
		return true
	}
	d := ps.d
	if d == nil || d.attempts == 0 || ps.ex.attempts > d.attempts || d.retryOn&(1<<fl.policyClass()) == 0 {
		return false
	}
	return d.retryAllowed()
}

// retryLocked abandons the current attempt and starts the next.
func (ps *pstream) retryLocked(fl failure, b *batch) {
	ps.endAttemptLocked(b)
	ps.respSeen, ps.held = false, nil
	if ps.d != nil {
		ps.retrying = true
		ps.d.up.retrying.Add(1)
		ps.d.up.retriesMetric.Inc()
	}
	ps.attemptLocked(b)
}

// endAttemptLocked lets go of the current attempt's stream.
func (ps *pstream) endAttemptLocked(b *batch) {
	ps.stopTryTimer()
	if ps.up != nil {
		ps.up.c.reset(ps.up, http2.ErrCodeCancel, b)
		ps.up = nil
		if ps.ep != nil {
			ps.ep.inflight.Add(-1)
		}
	}
	if ps.retrying {
		ps.retrying = false
		ps.d.up.retrying.Add(-1)
	}
}

// observeLocked feeds the current attempt's outcome to outlier detection.
func (ps *pstream) observeLocked(gatewayError bool) {
	if ps.ep != nil && ps.d != nil {
		ps.d.observe(ps.ep, gatewayError, time.Now().UnixNano())
	}
}

// failLocked answers the call with a mesh error: trailers-only before the
// response started, trailers after.
func (ps *pstream) failLocked(e meshError, b *batch) {
	if ps.done {
		return
	}
	ps.ex.meshErr = e.reason
	ps.grpcStatus = strconv.Itoa(int(e.code))
	msg := encodeGRPCMessage(e.msg)
	if ps.respStarted {
		ps.dropResponseLocked(b)
		ps.down.c.writeHeaders(ps.down, []hpack.HeaderField{
			{Name: "grpc-status", Value: ps.grpcStatus},
			{Name: "grpc-message", Value: msg},
			{Name: "grpc-status-details-bin", Value: e.details()},
			{Name: "x-marquee-mesh-error", Value: e.reason},
		}, true, b)
	} else {
		ps.respStarted = true
		ps.down.c.writeHeaders(ps.down, []hpack.HeaderField{
			{Name: ":status", Value: "200"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: ps.grpcStatus},
			{Name: "grpc-message", Value: msg},
			{Name: "grpc-status-details-bin", Value: e.details()},
			{Name: "x-marquee-mesh-error", Value: e.reason},
		}, true, b)
	}
	ps.completeLocked(b)
}

// dropResponseLocked drops buffered response bytes (the connection window
// was given back on receipt).
func (ps *pstream) dropResponseLocked(b *batch) {
	ps.respBuf = nil
}

// canceledLocked ends a call its caller gave up.
func (ps *pstream) canceledLocked(b *batch) {
	ps.ex.code = "CANCELLED"
	ps.completeLocked(b)
}

// resetAllLocked ends the call with RST_STREAM on both sides.
func (ps *pstream) resetAllLocked(code http2.ErrCode, b *batch) {
	ps.down.c.reset(ps.down, code, b)
	ps.ex.code = "INTERNAL"
	ps.completeLocked(b)
}

// completeLocked ends the call once the caller has its answer (or is
// gone): what is still open on either side is reset, and the call is
// recorded.
func (ps *pstream) completeLocked(b *batch) {
	if ps.done {
		return
	}
	ps.done = true
	if ps.timer != nil {
		ps.timer.Stop()
	}
	ps.stopTryTimer()
	ps.dropResponseLocked(b)
	if ps.up != nil {
		// (reset does nothing to a stream already ended.)
		ps.up.c.reset(ps.up, http2.ErrCodeCancel, b)
		if ps.ep != nil {
			ps.ep.inflight.Add(-1)
		}
		ps.up = nil
	}
	if ps.retrying {
		ps.retrying = false
		ps.d.up.retrying.Add(-1)
	}
	// If the caller is still sending, the answer is complete and the
	// request not needed: RST_STREAM(NO_ERROR) says so.
	ps.down.c.reset(ps.down, http2.ErrCodeNo, b)
	ps.reqBuf = nil
	ps.dropResponseLocked(b)
	if ps.counted {
		ps.d.up.active.Add(-1)
	}
	if ps.bridge == nil {
		if ps.ex.code == "" {
			ps.ex.code = grpcCodeLabel(ps.grpcStatus)
		}
		ps.p.finishExchange(ps.ctx, &ps.ex, ps.rid)
	}
	ps.p.live.Add(-1)
}

// Timers.

func (ps *pstream) armTimer(d time.Duration) {
	ps.timer = time.AfterFunc(d, ps.onTimeout)
}

// Writes made on timers are flushed after the call is recorded (the
// deferred flush runs once the lock is released), as those of a reading
// goroutine are: a caller that has its answer finds its metrics.

func (ps *pstream) onTimeout() {
	b := new(batch)
	defer b.flush()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.done {
		return
	}
	ps.failLocked(ps.d.errTimeout(ps.d.timeout), b)
}

func (ps *pstream) armTryTimer() {
	up := ps.up
	ps.tryTimer = time.AfterFunc(ps.d.perTry, func() {
		b := new(batch)
		defer b.flush()
		ps.mu.Lock()
		defer ps.mu.Unlock()
		if ps.done || ps.up != up || ps.respSeen {
			return
		}
		ps.observeLocked(false)
		ps.endAttemptLocked(b)
		ps.attemptFailedLocked(failDeadline, "per-try timeout", b)
	})
}

func (ps *pstream) stopTryTimer() {
	if ps.tryTimer != nil {
		ps.tryTimer.Stop()
		ps.tryTimer = nil
	}
}

func fieldValue(fs []hpack.HeaderField, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// isGRPCContentType reports whether a content-type is gRPC's.
func isGRPCContentType(ct string) bool {
	return strings.HasPrefix(ct, "application/grpc")
}
