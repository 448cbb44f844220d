package media

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/marquee-tv/marquee/internal/platform/logging"
)

// Error codes of the media handler, in the product's JSON error shape.
const (
	CodeInvalidSignature = "INVALID_SIGNATURE"
	CodeURLExpired       = "URL_EXPIRED"
	CodeNotFound         = "NOT_FOUND"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
)

// Handler serves signed media URLs. It is safe for concurrent use.
type Handler struct {
	lib    *Library
	signer *Signer
	now    func() time.Time
	log    *slog.Logger
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a handler of lib's files behind signer's URLs. A nil
// now means time.Now; a nil logger discards.
func NewHandler(lib *Library, signer *Signer, now func() time.Time, logger *slog.Logger) *Handler {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Handler{lib: lib, signer: signer, now: now, log: logger}
}

// ServeHTTP answers GET and HEAD of /media/{asset}/{file}?exp&sid&sig:
//
//   - 404 NOT_FOUND for a path that is not exactly a file of the library;
//   - 403 INVALID_SIGNATURE for a missing, malformed or wrong signature;
//   - 403 URL_EXPIRED for a valid signature past its expiry;
//   - otherwise the bytes as http.ServeContent serves them: 200, 206 for a
//     satisfiable Range (multipart for several), 416 otherwise, 304 when
//     If-None-Match matches the ETag, If-Range honoured; with
//     Content-Type, a strong ETag, and Cache-Control private with a
//     max-age that ends no later than the URL.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := r.Header.Get(logging.RequestIDHeader)
	if !logging.ValidRequestID(reqID) {
		reqID = uuid.NewString()
	}
	w.Header().Set("X-Request-Id", reqID)
	ctx := logging.WithRequestID(r.Context(), reqID)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET or HEAD", reqID)
		return
	}
	// Names are plain unreserved characters: a path that needed escaping
	// (an encoded slash or dot) names nothing here.
	asset, name, err := ParsePath(r.URL.Path)
	if r.URL.RawPath != "" {
		err = ErrBadPath
	}
	var file *File
	if err == nil {
		var ok bool
		if file, ok = h.lib.File(asset, name); !ok {
			err = ErrBadPath
		}
	}
	if err != nil {
		writeError(w, r, http.StatusNotFound, CodeNotFound, "no such media", reqID)
		return
	}
	session, expires, sig, err := ParseQuery(r.URL.RawQuery)
	now := h.now()
	if err == nil {
		err = h.signer.Verify(Signed{Asset: asset, File: name, Session: session, Expires: expires, Sig: sig}, now)
	}
	switch {
	case errors.Is(err, ErrExpired):
		h.log.DebugContext(ctx, "media URL expired", "asset", asset, "session", session)
		writeError(w, r, http.StatusForbidden, CodeURLExpired, "this media URL has expired; start playback again", reqID)
		return
	case err != nil:
		h.log.DebugContext(ctx, "media URL refused", "asset", asset, "err", err)
		writeError(w, r, http.StatusForbidden, CodeInvalidSignature, "this media URL is not validly signed", reqID)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", file.ContentType)
	hdr.Set("ETag", file.ETag)
	hdr.Set("Cache-Control", "private, max-age="+strconv.FormatInt(expires-now.Unix(), 10))
	hdr.Set("X-Content-Type-Options", "nosniff")
	if rng := r.Header.Get("Range"); rng != "" {
		kept, ok := dropEmptySuffixRanges(rng)
		if !ok {
			hdr.Set("Content-Range", "bytes */"+strconv.Itoa(len(file.Data)))
			http.Error(w, "requested range not satisfiable", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if kept != rng {
			r = r.Clone(ctx)
			r.Header.Set("Range", kept)
		}
	}
	http.ServeContent(w, r, file.Name, time.Time{}, bytes.NewReader(file.Data))
}

// dropEmptySuffixRanges removes the suffix ranges of length zero ("-0")
// from a bytes Range header. RFC 9110 §14.1.2 calls them unsatisfiable, but
// http.ServeContent would answer one with an empty 206 and the invalid
// Content-Range "bytes {size}-{size-1}/{size}". It reports false when the
// header named only such ranges (answer 416); other headers are returned
// unchanged for ServeContent to judge.
func dropEmptySuffixRanges(h string) (string, bool) {
	specs, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return h, true
	}
	var kept []string
	dropped := false
	for _, spec := range strings.Split(specs, ",") {
		spec = textproto.TrimString(spec)
		if digits, ok := strings.CutPrefix(spec, "-"); ok && digits != "" && strings.Trim(digits, "0") == "" {
			dropped = true
			continue
		}
		kept = append(kept, spec)
	}
	switch {
	case !dropped:
		return h, true
	case len(kept) == 0:
		return "", false
	}
	return "bytes=" + strings.Join(kept, ","), true
}

// errorBody is the product's JSON error shape.
type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg, reqID string) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.RequestID = code, msg, reqID
	body, _ := json.Marshal(b) // strings only: cannot fail
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(append(body, '\n'))
	}
}
