package sidecar

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file is the HTTP/2 connection of the gRPC path: a frame reader and
// writer shared by the connections the proxy accepts (from the
// application, from peer sidecars) and those it makes (to peers, to the
// application). Streams are not served, they are relayed: each stream on
// one connection is bound to a stream on another (a pstream), and frames
// are passed across as they are read, on the reading goroutine. There is
// one goroutine per connection and none per stream.
//
// Writes are batched: frames written while handling what one read brought
// in are flushed when the reader has nothing left buffered, so a request
// or response whose frames arrived together leaves in one write.
//
// Locking: a connection's mu guards everything written and the stream
// table; a pstream's mu guards the pstream. Order: pstream.mu, then one
// conn.mu at a time; never a pstream's lock under a conn's.

const (
	h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

	// Windows this proxy grants its peers. The connection window is given
	// back as data arrives, a stream's once its data has been passed on:
	// a stream whose other side does not read holds at most its own
	// window, and never stalls the other streams of its connection.
	ourStreamWindow = 256 << 10
	ourConnWindow   = 1 << 20
	ourMaxStreams   = 1000
	ourMaxHeaders   = 1 << 20
	h2DefaultWindow = 65535
	h2MaxWindow     = 1<<31 - 1
	h2DefaultFrame  = 16384

	h2ReadBuf  = 32 << 10
	h2WriteBuf = 32 << 10
	// maxBatch bounds how many frames are read before a flush, so that a
	// peer that keeps the read buffer full does not hold writes back.
	maxBatch = 64
)

var errConnClosed = errors.New("sidecar: connection closed")

// h2conn is one HTTP/2 connection.
type h2conn struct {
	p      *Proxy
	nc     net.Conn
	server bool // accepted (the peer opens streams) or dialed (we do)
	br     *bufio.Reader
	rfr    *http2.Framer // the reading goroutine's only
	// onStream starts a pstream for a new stream of a server connection.
	onStream func(c *h2conn, f *http2.MetaHeadersFrame, b *batch)
	pool     *upPool // the pool of a dialed connection
	// An accepted inbound connection's verified caller.
	caller   string
	tlsState *tls.ConnectionState
	info     *connInfo

	mu       sync.Mutex
	bw       *bufio.Writer
	wfr      *http2.Framer
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	streams  map[uint32]*half
	nextID   uint32 // dialed: the next stream id
	maxSeen  uint32 // accepted: the highest stream id the peer opened
	blocked  []*half
	closed   bool
	goAway   bool   // no new streams: the peer said GOAWAY, or we did
	goAwayID uint32 // the peer's last processed stream, when it said GOAWAY
	retiring bool   // dialed: close once idle (certificate renewed)
	idleFrom time.Time
	lazy     *time.Timer // flushes frames that may wait (PING answers)

	peerMaxFrame   uint32
	peerInitWindow int32
	peerMaxStreams uint32
	sendWindow     int32 // what the peer lets us send on the connection
	recvWindow     int32 // what we let the peer send on the connection
	recvUnacked    int32 // received and passed on, not yet credited
}

// half is one side of a relayed stream: the stream on one connection.
type half struct {
	c           *h2conn
	id          uint32
	ps          *pstream
	sendWindow  int32 // guarded by c.mu, like the rest
	recvWindow  int32
	recvUnacked int32
	endSent     bool // we sent END_STREAM or RST_STREAM
	endRecv     bool // the peer did
	inBlocked   bool
	removed     bool
}

func newH2Conn(p *Proxy, nc net.Conn, br *bufio.Reader, server bool) *h2conn {
	c := &h2conn{
		p:              p,
		nc:             nc,
		server:         server,
		br:             br,
		bw:             bufio.NewWriterSize(nc, h2WriteBuf),
		streams:        map[uint32]*half{},
		nextID:         1,
		peerMaxFrame:   h2DefaultFrame,
		peerInitWindow: h2DefaultWindow,
		peerMaxStreams: ourMaxStreams,
		sendWindow:     h2DefaultWindow,
		recvWindow:     ourConnWindow,
		idleFrom:       time.Now(),
	}
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, h2ReadBuf)
	}
	c.rfr = http2.NewFramer(nil, c.br)
	c.rfr.SetReuseFrames()
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.MaxHeaderListSize = ourMaxHeaders
	c.wfr = http2.NewFramer(c.bw, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// start sends the connection preface: the client's magic string for a
// dialed connection, then our settings and the connection window.
func (c *h2conn) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.server {
		if _, err := c.bw.WriteString(h2Preface); err != nil {
			return err
		}
	}
	settings := []http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: ourStreamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: ourMaxHeaders},
	}
	if c.server {
		settings = append(settings, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: ourMaxStreams})
	} else {
		settings = append(settings, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	if err := c.wfr.WriteSettings(settings...); err != nil {
		return err
	}
	if err := c.wfr.WriteWindowUpdate(0, ourConnWindow-h2DefaultWindow); err != nil {
		return err
	}
	return c.bw.Flush()
}

// readPreface reads the client's magic string on an accepted connection.
func readPreface(br *bufio.Reader) error {
	var buf [len(h2Preface)]byte
	if _, err := io.ReadFull(br, buf[:]); err != nil {
		return err
	}
	if string(buf[:]) != h2Preface {
		return errors.New("sidecar: bad HTTP/2 preface")
	}
	return nil
}

// batch collects the connections written to while handling what one read
// brought in, to flush them together.
type batch struct {
	conns []*h2conn
	held  []*pstream // response headers held until the batch ends
	n     int
}

func (b *batch) add(c *h2conn) {
	for _, o := range b.conns {
		if o == c {
			return
		}
	}
	b.conns = append(b.conns, c)
}

func (b *batch) flush() {
	for i, ps := range b.held {
		ps.releaseHeld(b)
		b.held[i] = nil
	}
	b.held = b.held[:0]
	for i, c := range b.conns {
		c.flush()
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
	b.n = 0
}

// wrote records a write to c: flushed at the end of the batch, or now
// without one (writes from timers and dialers).
func (c *h2conn) wrote(b *batch) {
	if b != nil {
		b.add(c)
		return
	}
	c.flush()
}

func (c *h2conn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.bw.Buffered() == 0 {
		return
	}
	if err := c.bw.Flush(); err != nil {
		c.failLocked()
	}
}

// failLocked marks c broken after a write error: the reading goroutine
// then sees the connection closed and resets its streams.
func (c *h2conn) failLocked() {
	if !c.closed {
		c.closed = true
		c.nc.Close()
		if c.lazy != nil {
			c.lazy.Stop()
		}
	}
}

// readLoop reads and relays frames until the connection ends, then resets
// every stream still on it.
func (c *h2conn) readLoop() {
	var b batch
	err := c.read(&b)
	b.flush()
	c.teardown(err)
}

func (c *h2conn) read(b *batch) error {
	for {
		f, err := c.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetID(se.StreamID, se.Code, b)
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.goAwayNow(http2.ErrCode(ce), b)
			}
			return err
		}
		if err := c.handle(f, b); err != nil {
			return err
		}
		b.n++
		if c.br.Buffered() == 0 || b.n >= maxBatch {
			b.flush()
		}
	}
}

func (c *h2conn) handle(f http2.Frame, b *batch) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f, b)
	case *http2.MetaHeadersFrame:
		c.onHeaders(f, b)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f, b)
	case *http2.RSTStreamFrame:
		c.mu.Lock()
		h := c.streams[f.StreamID]
		if h != nil {
			h.endRecv, h.endSent = true, true
			c.removeLocked(h)
		}
		c.mu.Unlock()
		if h != nil {
			h.ps.onReset(h, f.ErrCode, b)
		}
	case *http2.SettingsFrame:
		return c.onSettings(f, b)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.pingAck(f.Data)
		}
	case *http2.GoAwayFrame:
		c.onGoAway(f, b)
	case *http2.PushPromiseFrame:
		c.goAwayNow(http2.ErrCodeProtocol, b)
		return errors.New("sidecar: peer pushed a stream")
	}
	return nil
}

func (c *h2conn) onData(f *http2.DataFrame, b *batch) error {
	n := int32(f.Length)
	c.mu.Lock()
	c.recvWindow -= n
	if c.recvWindow < 0 {
		c.mu.Unlock()
		c.goAwayNow(http2.ErrCodeFlowControl, b)
		return errors.New("sidecar: peer overran the connection window")
	}
	c.creditConnLocked(n)
	h := c.streams[f.StreamID]
	if h == nil || h.endRecv {
		// A stream already reset or ended: its data is dropped.
		c.mu.Unlock()
		c.wrote(b)
		return nil
	}
	h.recvWindow -= n
	if h.recvWindow < 0 {
		c.mu.Unlock()
		c.resetID(f.StreamID, http2.ErrCodeFlowControl, b)
		return nil
	}
	if pad := n - int32(len(f.Data())); pad > 0 {
		c.creditLocked(h, pad)
	}
	if f.StreamEnded() {
		h.endRecv = true
		c.maybeRemoveLocked(h)
	}
	c.mu.Unlock()
	h.ps.onData(h, f.Data(), f.StreamEnded(), b)
	return nil
}

func (c *h2conn) onHeaders(f *http2.MetaHeadersFrame, b *batch) {
	id := f.StreamID
	c.mu.Lock()
	h := c.streams[id]
	if h == nil {
		if !c.server || id <= c.maxSeen || id%2 == 0 {
			// A stream we reset, or one that never was: nothing to do.
			c.mu.Unlock()
			return
		}
		c.maxSeen = id
		refuse := c.goAway || len(c.streams) >= ourMaxStreams || f.Truncated
		c.mu.Unlock()
		if refuse {
			c.resetID(id, http2.ErrCodeRefusedStream, b)
			return
		}
		c.onStream(c, f, b)
		return
	}
	if f.Truncated {
		c.mu.Unlock()
		c.resetID(id, http2.ErrCodeProtocol, b)
		return
	}
	if f.StreamEnded() {
		h.endRecv = true
		c.maybeRemoveLocked(h)
	}
	c.mu.Unlock()
	h.ps.onHeaders(h, f, b)
}

func (c *h2conn) onSettings(f *http2.SettingsFrame, b *batch) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	var grown bool
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			if s.Val > h2MaxWindow {
				return errors.New("sidecar: peer's initial window is over 2^31-1")
			}
			delta := int32(s.Val) - c.peerInitWindow
			c.peerInitWindow = int32(s.Val)
			for _, h := range c.streams {
				h.sendWindow += delta
			}
			grown = grown || delta > 0
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStreams = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		c.mu.Unlock()
		c.goAwayNow(http2.ErrCodeFlowControl, b)
		return err
	}
	c.wfr.WriteSettingsAck()
	var resume []*half
	if grown {
		resume = c.takeBlockedLocked()
	}
	c.mu.Unlock()
	c.wrote(b)
	for _, h := range resume {
		h.ps.resume(h, b)
	}
	return nil
}

func (c *h2conn) onWindowUpdate(f *http2.WindowUpdateFrame, b *batch) error {
	inc := int32(f.Increment)
	c.mu.Lock()
	var resume []*half
	if f.StreamID == 0 {
		if c.sendWindow > h2MaxWindow-inc {
			c.mu.Unlock()
			c.goAwayNow(http2.ErrCodeFlowControl, b)
			return errors.New("sidecar: peer's connection window over 2^31-1")
		}
		c.sendWindow += inc
		resume = c.takeBlockedLocked()
	} else if h := c.streams[f.StreamID]; h != nil {
		if h.sendWindow > h2MaxWindow-inc {
			c.mu.Unlock()
			c.resetID(f.StreamID, http2.ErrCodeFlowControl, b)
			return nil
		}
		h.sendWindow += inc
		if h.inBlocked {
			resume = []*half{h}
		}
	}
	c.mu.Unlock()
	for _, h := range resume {
		h.ps.resume(h, b)
	}
	return nil
}

func (c *h2conn) takeBlockedLocked() []*half {
	bl := c.blocked
	c.blocked = nil
	for _, h := range bl {
		h.inBlocked = false
	}
	return bl
}

func (c *h2conn) onGoAway(f *http2.GoAwayFrame, b *batch) {
	c.mu.Lock()
	c.goAway = true
	c.goAwayID = f.LastStreamID
	var refused []*half
	if !c.server {
		for id, h := range c.streams {
			if id > f.LastStreamID {
				refused = append(refused, h)
				h.endSent, h.endRecv = true, true
				c.removeLocked(h)
			}
		}
	}
	c.mu.Unlock()
	if c.pool != nil {
		c.pool.forget(c)
	}
	for _, h := range refused {
		h.ps.onRefused(h, b)
	}
}

// pingAckDelay bounds how long a PING's answer waits for other frames to
// go out with. gRPC clients ping on receiving data (to estimate bandwidth),
// so with a call every millisecond or so nearly every response draws a
// ping: answered at once, each would cost a write of its own, a third of
// the proxy's writes. A few milliseconds late, the answer rides with the
// next response. Pings for keepalive allow seconds.
const pingAckDelay = 5 * time.Millisecond

// pingAck answers a PING, with the next flush or within pingAckDelay.
func (c *h2conn) pingAck(data [8]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wfr.WritePing(true, data)
	if c.lazy == nil {
		c.lazy = time.AfterFunc(pingAckDelay, c.flush)
	} else {
		c.lazy.Reset(pingAckDelay)
	}
}

// goAwayNow tells the peer the connection is over (a protocol error).
func (c *h2conn) goAwayNow(code http2.ErrCode, b *batch) {
	c.mu.Lock()
	if !c.closed {
		c.goAway = true
		c.wfr.WriteGoAway(c.maxSeen, code, nil)
		c.bw.Flush()
	}
	c.mu.Unlock()
}

// drain sends GOAWAY: the peer may open no more streams; those open go
// on.
func (c *h2conn) drain() {
	c.mu.Lock()
	if !c.closed && !c.goAway {
		c.goAway = true
		c.wfr.WriteGoAway(c.maxSeen, http2.ErrCodeNo, nil)
		if err := c.bw.Flush(); err != nil {
			c.failLocked()
		}
	}
	c.mu.Unlock()
}

// close closes the connection; its reading goroutine resets the streams.
func (c *h2conn) close() {
	c.mu.Lock()
	c.failLocked()
	c.mu.Unlock()
}

func (c *h2conn) teardown(err error) {
	c.mu.Lock()
	c.failLocked()
	hs := make([]*half, 0, len(c.streams))
	for _, h := range c.streams {
		hs = append(hs, h)
		h.endSent, h.endRecv = true, true
		h.removed = true
	}
	clear(c.streams)
	c.mu.Unlock()
	if c.pool != nil {
		c.pool.forget(c)
	}
	if c.server {
		c.p.conns.remove(c)
	}
	for _, h := range hs {
		h.ps.onConnLost(h, err)
	}
}

// openStream opens a stream on a dialed connection and sends its headers.
// It fails when the connection takes no more streams.
func (c *h2conn) openStream(ps *pstream, fields []hpack.HeaderField, end bool, b *batch) (*half, error) {
	c.mu.Lock()
	if c.closed || c.goAway || c.retiring || uint32(len(c.streams)) >= c.peerMaxStreams || c.nextID > h2MaxWindow {
		c.mu.Unlock()
		return nil, errConnClosed
	}
	h := &half{c: c, id: c.nextID, ps: ps, sendWindow: c.peerInitWindow, recvWindow: ourStreamWindow}
	c.nextID += 2
	c.streams[h.id] = h
	err := c.writeHeadersLocked(h, fields, end)
	c.mu.Unlock()
	c.wrote(b)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// acceptStream registers a stream the peer opened.
func (c *h2conn) acceptStream(ps *pstream, id uint32, ended bool) *half {
	h := &half{c: c, id: id, ps: ps, sendWindow: c.peerInitWindow, recvWindow: ourStreamWindow, endRecv: ended}
	c.mu.Lock()
	c.streams[id] = h
	c.mu.Unlock()
	return h
}

// writeHeaders sends a header block on h, ending the stream when end.
func (c *h2conn) writeHeaders(h *half, fields []hpack.HeaderField, end bool, b *batch) error {
	c.mu.Lock()
	err := c.writeHeadersLocked(h, fields, end)
	c.mu.Unlock()
	c.wrote(b)
	return err
}

func (c *h2conn) writeHeadersLocked(h *half, fields []hpack.HeaderField, end bool) error {
	if c.closed || h.endSent {
		return errConnClosed
	}
	c.hbuf.Reset()
	for _, f := range fields {
		c.henc.WriteField(f)
	}
	block := c.hbuf.Bytes()
	max := int(c.peerMaxFrame)
	first := true
	for first || len(block) > 0 {
		frag := block
		if len(frag) > max {
			frag = frag[:max]
		}
		block = block[len(frag):]
		var err error
		if first {
			err = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: h.id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = c.wfr.WriteContinuation(h.id, len(block) == 0, frag)
		}
		if err != nil {
			c.failLocked()
			return err
		}
	}
	if end {
		h.endSent = true
		c.maybeRemoveLocked(h)
	}
	return nil
}

// writeData sends what the flow-control windows allow of data on h, with
// END_STREAM when end and all of it went. It returns how much was sent;
// h is resumed (pstream.resume) once the windows open for the rest.
func (c *h2conn) writeData(h *half, data []byte, end bool, b *batch) (int, error) {
	c.mu.Lock()
	n, err := c.writeDataLocked(h, data, end)
	c.mu.Unlock()
	c.wrote(b)
	return n, err
}

func (c *h2conn) writeDataLocked(h *half, data []byte, end bool) (int, error) {
	if c.closed || h.endSent {
		return 0, errConnClosed
	}
	sent := 0
	for {
		allowed := max(min(int32(len(data)-sent), h.sendWindow, c.sendWindow, int32(c.peerMaxFrame)), 0)
		if allowed == 0 && sent < len(data) {
			if !h.inBlocked {
				h.inBlocked = true
				c.blocked = append(c.blocked, h)
			}
			return sent, nil
		}
		chunk := data[sent : sent+int(allowed)]
		last := sent+len(chunk) == len(data)
		if err := c.wfr.WriteData(h.id, end && last, chunk); err != nil {
			c.failLocked()
			return sent, err
		}
		sent += len(chunk)
		h.sendWindow -= allowed
		c.sendWindow -= allowed
		if last {
			if end {
				h.endSent = true
				c.maybeRemoveLocked(h)
			}
			return sent, nil
		}
	}
}

// credit gives n received bytes of h back to the peer once they have been
// passed on.
func (c *h2conn) credit(h *half, n int32, b *batch) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.creditLocked(h, n)
	c.mu.Unlock()
	c.wrote(b)
}

// creditConnLocked gives n received bytes back to the connection window.
func (c *h2conn) creditConnLocked(n int32) {
	if c.closed {
		return
	}
	c.recvUnacked += n
	if c.recvUnacked >= ourConnWindow/4 {
		c.wfr.WriteWindowUpdate(0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
	}
}

// creditLocked gives n received bytes back to h's window.
func (c *h2conn) creditLocked(h *half, n int32) {
	if c.closed || h.endRecv {
		return
	}
	h.recvUnacked += n
	if h.recvUnacked >= ourStreamWindow/4 {
		c.wfr.WriteWindowUpdate(h.id, uint32(h.recvUnacked))
		h.recvWindow += h.recvUnacked
		h.recvUnacked = 0
	}
}

// reset ends h with RST_STREAM.
func (c *h2conn) reset(h *half, code http2.ErrCode, b *batch) {
	c.mu.Lock()
	if !h.removed && !c.closed {
		c.wfr.WriteRSTStream(h.id, code)
	}
	h.endSent, h.endRecv = true, true
	c.removeLocked(h)
	c.mu.Unlock()
	c.wrote(b)
}

// resetID resets a stream by id (one the frame reader refused).
func (c *h2conn) resetID(id uint32, code http2.ErrCode, b *batch) {
	c.mu.Lock()
	h := c.streams[id]
	if !c.closed {
		c.wfr.WriteRSTStream(id, code)
	}
	if h != nil {
		h.endSent, h.endRecv = true, true
		c.removeLocked(h)
	}
	c.mu.Unlock()
	c.wrote(b)
	if h != nil {
		h.ps.onReset(h, code, b)
	}
}

func (c *h2conn) maybeRemoveLocked(h *half) {
	if h.endSent && h.endRecv {
		c.removeLocked(h)
	}
}

func (c *h2conn) removeLocked(h *half) {
	if h.removed {
		return
	}
	h.removed = true
	delete(c.streams, h.id)
	if h.inBlocked {
		h.inBlocked = false
		for i, o := range c.blocked {
			if o == h {
				c.blocked = append(c.blocked[:i], c.blocked[i+1:]...)
				break
			}
		}
	}
	if len(c.streams) == 0 {
		c.idleFrom = time.Now()
		if c.retiring && !c.server {
			// A retired connection goes once its last stream is done.
			c.goAway = true
			c.wfr.WriteGoAway(0, http2.ErrCodeNo, nil)
			c.bw.Flush()
			c.failLocked()
		}
	}
}

// idle reports whether c has had no stream since before t.
func (c *h2conn) idleSince(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams) == 0 && c.idleFrom.Before(t)
}

func (c *h2conn) String() string {
	return fmt.Sprintf("h2conn(%s)", c.nc.RemoteAddr())
}
