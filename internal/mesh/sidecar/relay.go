package sidecar

import (
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"google.golang.org/grpc/codes"
)

// isGRPC reports whether a request or response with header h is gRPC:
// its content type is application/grpc or application/grpc+<codec>.
func isGRPC(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}

// cleanRequestHeader removes hop-by-hop headers (RFC 9110 7.6.1) from r's
// header, in place: the handler owns it, and it is passed on as it is.
func cleanRequestHeader(r *http.Request) {
	h := r.Header
	if r.ProtoMajor == 2 {
		// HTTP/2 has no connection-specific fields; the server has
		// refused requests with any but "te: trailers".
		return
	}
	if c := h["Connection"]; len(c) > 0 {
		for _, v := range c {
			for tok := range strings.SplitSeq(v, ",") {
				if tok = textproto.TrimString(tok); tok != "" {
					delete(h, http.CanonicalHeaderKey(tok))
				}
			}
		}
		delete(h, "Connection")
	}
	for _, k := range [...]string{"Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Transfer-Encoding", "Upgrade", "Trailer"} {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
	if te := h["Te"]; len(te) > 0 && (len(te) > 1 || te[0] != "trailers") {
		delete(h, "Te")
	}
}

// copyResponseHeader copies src into dst (empty, the response writer's),
// sharing the value slices, without hop-by-hop fields.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Trailer", "Proxy-Authenticate":
			continue
		}
		dst[k] = vv
	}
}

// copyTrailers sets src as trailers of the response being written to dst.
func copyTrailers(dst, src http.Header) {
	for k, vv := range src {
		dst[trailerKey(k)] = vv
	}
}

// trailerKey is http.TrailerPrefix+k, without building the string for
// gRPC's trailers.
func trailerKey(k string) string {
	switch k {
	case "Grpc-Status":
		return "Trailer:Grpc-Status"
	case "Grpc-Message":
		return "Trailer:Grpc-Message"
	case "Grpc-Status-Details-Bin":
		return "Trailer:Grpc-Status-Details-Bin"
	}
	return http.TrailerPrefix + k
}

// relay copies resp to w and records it. When the body breaks off, a gRPC
// response ends with the status cutShort gives (none when the client has
// gone), and any other response is aborted (the client sees the connection
// or stream reset, never a truncated body passed off as complete). It
// reports whether the response was a gRPC UNAVAILABLE, which outlier
// detection counts.
func relay(w http.ResponseWriter, resp *http.Response, ex *exchange, cutShort func() meshError) (unavailable bool) {
	h := w.Header()
	copyResponseHeader(h, resp.Header)
	var readErr, writeErr error
	w.WriteHeader(resp.StatusCode)
	// A trailers-only gRPC response must stay one: nothing is written.
	if resp.ContentLength != 0 && !(ex.grpc && len(resp.Header["Grpc-Status"]) > 0) {
		bp := copyBufs.Get().(*[]byte)
		readErr, writeErr = copyBody(w, resp.Body, *bp, ex.grpc || resp.ContentLength < 0)
		copyBufs.Put(bp)
	}
	resp.Body.Close()
	switch {
	case writeErr != nil:
		ex.canceled()
		return false
	case readErr != nil:
		e := cutShort()
		if e.reason == "" {
			ex.canceled()
			return false
		}
		ex.meshErr = e.reason
		if !ex.grpc {
			ex.code = statusLabel(e.status)
			panic(http.ErrAbortHandler)
		}
		h["Trailer:Grpc-Status"] = []string{strconv.Itoa(int(e.code))}
		h["Trailer:Grpc-Message"] = []string{encodeGRPCMessage(e.msg)}
		h["Trailer:Grpc-Status-Details-Bin"] = []string{e.details()}
		h["Trailer:"+meshErrorHeader] = []string{e.reason}
		ex.code = rpcerr.CodeName(e.code)
		return e.code == codes.Unavailable
	}
	copyTrailers(h, resp.Trailer)
	ex.responded(resp)
	return ex.grpc && ex.code == "UNAVAILABLE"
}

const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyBody copies src to w through buf, flushing after each write when
// flush is set (streams: gRPC, bodies of unknown length) so that data goes
// out as it comes. It tells a failed read (readErr) from a failed write
// (writeErr); the end of src is no error.
func copyBody(w http.ResponseWriter, src io.Reader, buf []byte, flush bool) (readErr, writeErr error) {
	var fl http.Flusher
	if flush {
		fl, _ = w.(http.Flusher)
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// hostOnly returns host without a port.
func hostOnly(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.IndexByte(host[i:], ']') >= 0 {
		return host
	}
	return host[:i]
}
