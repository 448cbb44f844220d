package media

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var (
	t0      = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	testKey = bytes.Repeat([]byte{0x42}, MinKeySize)
)

// testLibrary is a small library whose bytes are easy to check.
func testLibrary(t testing.TB) *Library {
	t.Helper()
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i % 251)
	}
	lib, err := NewLibrary(fstest.MapFS{
		"demo-1/video.webm":  {Data: data},
		"demo-1/notes.txt":   {Data: []byte("not served")},
		"demo-2/video.webm":  {Data: []byte("second asset")},
		"loose-file.webm":    {Data: []byte("not in an asset")},
		"demo-2/.hidden.txt": {Data: []byte("x")},
	})
	if err != nil {
		t.Fatalf("NewLibrary: %v", err)
	}
	return lib
}

func testSigner(t testing.TB) *Signer {
	t.Helper()
	s, err := NewSigner(testKey)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func TestEmbedded(t *testing.T) {
	lib, err := Embedded()
	if err != nil {
		t.Fatalf("Embedded: %v", err)
	}
	if got, want := strings.Join(lib.Assets(), ","), "demo-1,demo-2,demo-3"; got != want {
		t.Fatalf("Assets() = %s, want %s", got, want)
	}
	total := 0
	for _, a := range lib.Assets() {
		f, ok := lib.File(a, MainFile)
		if !ok {
			t.Fatalf("File(%s, %s) missing", a, MainFile)
		}
		total += len(f.Data)
		// A WebM file is an EBML document whose DocType is "webm".
		if !bytes.HasPrefix(f.Data, []byte{0x1a, 0x45, 0xdf, 0xa3}) || !bytes.Contains(f.Data[:64], []byte("webm")) {
			t.Errorf("%s/%s is not a WebM file", a, MainFile)
		}
		if f.ContentType != "video/webm" || len(f.ETag) < 10 {
			t.Errorf("%s: content type %q, ETag %q", a, f.ContentType, f.ETag)
		}
		if len(f.Data) < 100<<10 || len(f.Data) > 1<<20 {
			t.Errorf("%s is %d bytes, want 100 KiB to 1 MiB (a real video, small)", a, len(f.Data))
		}
	}
	if total > 3<<20 {
		t.Errorf("embedded media total %d bytes, want at most 3 MiB", total)
	}
}

func TestNewLibrary(t *testing.T) {
	lib := testLibrary(t)
	if got := strings.Join(lib.Assets(), ","); got != "demo-1,demo-2" {
		t.Errorf("Assets() = %s, want demo-1,demo-2 (directories with a %s)", got, MainFile)
	}
	if got := strings.Join(lib.Files("demo-1"), ","); got != "video.webm" {
		t.Errorf("Files(demo-1) = %s, want only the video", got)
	}
	if _, err := NewLibrary(fstest.MapFS{"a/other.webm": {Data: []byte("x")}}); err == nil {
		t.Errorf("NewLibrary of an asset without %s = nil error", MainFile)
	}
	if _, err := NewLibrary(fstest.MapFS{}); err == nil {
		t.Errorf("NewLibrary of nothing = nil error")
	}
	if _, err := NewSigner(testKey[:MinKeySize-1]); err == nil {
		t.Errorf("NewSigner(short key) = nil error")
	}
}

func TestSignVerify(t *testing.T) {
	s := testSigner(t)
	other, _ := NewSigner(bytes.Repeat([]byte{7}, MinKeySize))
	exp := t0.Add(4 * time.Hour)
	u := s.URL("demo-1", MainFile, "sess-1", exp)
	if want := "/media/demo-1/video.webm?exp="; !strings.HasPrefix(u, want) {
		t.Fatalf("URL() = %s, want prefix %s", u, want)
	}
	good := parseURL(t, u)
	alter := func(f func(*Signed)) Signed {
		x := good
		x.Sig = append([]byte(nil), good.Sig...)
		f(&x)
		return x
	}
	for _, c := range []struct {
		name   string
		signer *Signer
		x      Signed
		at     time.Time
		want   error
	}{
		{"valid", s, good, t0, nil},
		{"a second before expiry", s, good, exp.Add(-time.Second), nil},
		{"at expiry", s, good, exp, ErrExpired},
		{"after expiry", s, good, exp.Add(time.Hour), ErrExpired},
		{"other asset", s, alter(func(x *Signed) { x.Asset = "demo-2" }), t0, ErrInvalidSignature},
		{"other file", s, alter(func(x *Signed) { x.File = "other.webm" }), t0, ErrInvalidSignature},
		{"other session", s, alter(func(x *Signed) { x.Session = "sess-2" }), t0, ErrInvalidSignature},
		{"later expiry", s, alter(func(x *Signed) { x.Expires += 3600 }), t0, ErrInvalidSignature},
		{"flipped bit", s, alter(func(x *Signed) { x.Sig[0] ^= 1 }), t0, ErrInvalidSignature},
		{"no signature", s, alter(func(x *Signed) { x.Sig = nil }), t0, ErrInvalidSignature},
		{"other key", other, good, t0, ErrInvalidSignature},
		{"expired and altered", s, alter(func(x *Signed) { x.Asset = "demo-3" }), exp.Add(time.Hour), ErrInvalidSignature},
	} {
		if got := c.signer.Verify(c.x, c.at); !errors.Is(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
		}
	}
}

func parseURL(t *testing.T, u string) Signed {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("url.Parse(%s): %v", u, err)
	}
	x, err := Parse(parsed.Path, parsed.RawQuery)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", u, err)
	}
	return x
}

func TestParse(t *testing.T) {
	s := testSigner(t)
	q := strings.SplitN(s.URL("demo-1", MainFile, "sess-1", t0), "?", 2)[1]
	sig := url.Values{}
	parsed, _ := url.ParseQuery(q)
	sig.Set(ParamSignature, parsed.Get(ParamSignature))
	for _, c := range []struct {
		path, query string
		want        error
	}{
		{"/media/demo-1/video.webm", q, nil},
		{"/media/demo-1/video.webm", q + "&extra=1", ErrInvalidSignature},
		{"/media/demo-1/video.webm", q + "&exp=1", ErrInvalidSignature},
		{"/media/demo-1/video.webm", "", ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1&sid=s&sig=" + sig.Get(ParamSignature) + "=", ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=-1&sid=s&" + sig.Encode(), ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=+1&sid=s&" + sig.Encode(), ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1234567890123&sid=s&" + sig.Encode(), ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1&sid=a%20b&" + sig.Encode(), ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1&sid=&" + sig.Encode(), ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1&sid=s&sig=AAAA", ErrInvalidSignature},
		{"/media/demo-1/video.webm", "exp=1&sid=s&" + sig.Encode() + "%zz", ErrInvalidSignature},
		{"/media/demo-1/video.webm/", q, ErrBadPath},
		{"/media/demo-1/../demo-2/video.webm", q, ErrBadPath},
		{"/media/../store/store.go", q, ErrBadPath},
		{"/media/demo-1/..", q, ErrBadPath},
		{"/media/demo-1/.hidden", q, ErrBadPath},
		{"/media//video.webm", q, ErrBadPath},
		{"/media/demo-1", q, ErrBadPath},
		{"/other/demo-1/video.webm", q, ErrBadPath},
		{"/media/demo-1/vid\x00eo.webm", q, ErrBadPath},
		{"/media/demo-1/video.webm%2f..", q, ErrBadPath},
	} {
		_, err := Parse(c.path, c.query)
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("Parse(%q, %q) = %v, want %v", c.path, c.query, err, c.want)
		}
	}
}

// server serves lib through a handler whose clock reads *now, on
// 127.0.0.1:0.
func server(t *testing.T, lib *Library, now *time.Time) *httptest.Server {
	t.Helper()
	h := NewHandler(lib, testSigner(t), func() time.Time { return *now }, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+u, nil)
	if err != nil {
		t.Fatalf("NewRequest(%s): %v", u, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", u, err)
	}
	return resp, body
}

// wantError checks a JSON error response.
func wantError(t *testing.T, what string, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, resp.StatusCode, status, body)
		return
	}
	var e struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: body %q is not the JSON error shape: %v", what, body, err)
		return
	}
	if e.Error.Code != code || e.Error.Message == "" || e.Error.RequestID == "" || e.Error.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("%s: error %+v (X-Request-Id %q), want code %s with a message and the request id", what, e.Error, resp.Header.Get("X-Request-Id"), code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
}

func TestHandlerServesSignedMedia(t *testing.T) {
	lib := testLibrary(t)
	now := t0
	srv := server(t, lib, &now)
	s := testSigner(t)
	file, _ := lib.File("demo-1", MainFile)
	u := s.URL("demo-1", MainFile, "sess-1", t0.Add(4*time.Hour))

	resp, body := get(t, srv, "GET", u, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, file.Data) {
		t.Fatalf("GET = %d with %d bytes, want 200 with the %d-byte file", resp.StatusCode, len(body), len(file.Data))
	}
	for k, want := range map[string]string{
		"Content-Type":   "video/webm",
		"ETag":           file.ETag,
		"Cache-Control":  "private, max-age=14400",
		"Accept-Ranges":  "bytes",
		"Content-Length": "1000",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("GET header %s = %q, want %q", k, got, want)
		}
	}

	// max-age shrinks with the time left.
	now = t0.Add(4*time.Hour - 90*time.Second)
	resp, _ = get(t, srv, "GET", u, nil)
	if got := resp.Header.Get("Cache-Control"); got != "private, max-age=90" {
		t.Errorf("Cache-Control 90 s before expiry = %q, want private, max-age=90", got)
	}
	now = t0

	for _, c := range []struct {
		rng, contentRange string
		from, to          int
	}{
		{"bytes=0-99", "bytes 0-99/1000", 0, 100},
		{"bytes=500-", "bytes 500-999/1000", 500, 1000},
		{"bytes=-10", "bytes 990-999/1000", 990, 1000},
		{"bytes=990-5000", "bytes 990-999/1000", 990, 1000},
		{"bytes=-0, 0-4", "bytes 0-4/1000", 0, 5}, // the empty suffix range is dropped
	} {
		resp, body := get(t, srv, "GET", u, map[string]string{"Range": c.rng})
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != c.contentRange || !bytes.Equal(body, file.Data[c.from:c.to]) {
			t.Errorf("Range %s = %d, Content-Range %q, %d bytes; want 206, %q, bytes [%d,%d)",
				c.rng, resp.StatusCode, resp.Header.Get("Content-Range"), len(body), c.contentRange, c.from, c.to)
		}
	}
	for _, rng := range []string{"bytes=1000-", "bytes=-0", "bytes=-000,-0"} {
		resp, _ = get(t, srv, "GET", u, map[string]string{"Range": rng})
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != "bytes */1000" {
			t.Errorf("Range %s = %d, Content-Range %q, want 416, bytes */1000", rng, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}

	resp, body = get(t, srv, "GET", u, map[string]string{"If-None-Match": file.ETag})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("If-None-Match with the ETag = %d, %d bytes, want 304, empty", resp.StatusCode, len(body))
	}
	resp, _ = get(t, srv, "GET", u, map[string]string{"If-None-Match": `"other"`})
	if resp.StatusCode != 200 {
		t.Errorf("If-None-Match with another ETag = %d, want 200", resp.StatusCode)
	}
	resp, body = get(t, srv, "GET", u, map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`})
	if resp.StatusCode != 200 || len(body) != 1000 {
		t.Errorf("Range with a stale If-Range = %d, %d bytes; want the whole file", resp.StatusCode, len(body))
	}
	resp, body = get(t, srv, "HEAD", u, nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "1000" {
		t.Errorf("HEAD = %d, %d bytes, Content-Length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	resp, _ = get(t, srv, "GET", u, map[string]string{"X-Request-Id": "req-123"})
	if got := resp.Header.Get("X-Request-Id"); got != "req-123" {
		t.Errorf("X-Request-Id = %q, want the caller's req-123", got)
	}
}

func TestHandlerRefuses(t *testing.T) {
	lib := testLibrary(t)
	now := t0
	srv := server(t, lib, &now)
	s := testSigner(t)
	exp := t0.Add(time.Hour)
	u := s.URL("demo-1", MainFile, "sess-1", exp)
	tampered := strings.Replace(u, "sid=sess-1", "sid=sess-2", 1)
	other, _ := NewSigner(bytes.Repeat([]byte{9}, MinKeySize))
	for _, c := range []struct {
		name, method, url string
		status            int
		code              string
	}{
		{"tampered session", "GET", tampered, 403, CodeInvalidSignature},
		{"moved to another asset", "GET", strings.Replace(u, "/demo-1/", "/demo-2/", 1), 403, CodeInvalidSignature},
		{"no signature", "GET", "/media/demo-1/video.webm", 403, CodeInvalidSignature},
		{"signed with another key", "GET", other.URL("demo-1", MainFile, "sess-1", exp), 403, CodeInvalidSignature},
		{"unknown asset, validly signed", "GET", s.URL("demo-9", MainFile, "sess-1", exp), 404, CodeNotFound},
		{"file outside the media set, validly signed", "GET", s.URL("demo-1", "notes.txt", "sess-1", exp), 404, CodeNotFound},
		{"traversal", "GET", "/media/demo-1/..%2f..%2fstore%2fstore.go?" + strings.SplitN(u, "?", 2)[1], 404, CodeNotFound},
		{"dot segments", "GET", "/media/demo-1/%2e%2e/demo-2/video.webm", 404, CodeNotFound},
		{"encoded slash", "GET", "/media/demo-1%2fvideo.webm", 404, CodeNotFound},
		{"not media", "GET", "/api/v1/titles", 404, CodeNotFound},
		{"POST", "POST", u, 405, CodeMethodNotAllowed},
	} {
		resp, body := get(t, srv, c.method, c.url, nil)
		wantError(t, c.name, resp, body, c.status, c.code)
	}
	now = exp
	resp, body := get(t, srv, "GET", u, nil)
	wantError(t, "expired", resp, body, 403, CodeURLExpired)
	resp, body = get(t, srv, "GET", tampered, nil)
	wantError(t, "expired and tampered", resp, body, 403, CodeInvalidSignature)
}

// FuzzParse feeds arbitrary paths and queries to the URL parser: it must
// never panic, and what it accepts must be names of the allowed shape and
// a signature of the right size.
func FuzzParse(f *testing.F) {
	s := testSigner(f)
	good, _ := url.Parse(s.URL("demo-1", MainFile, "sess-1", t0))
	f.Add(good.Path, good.RawQuery)
	f.Add("/media/demo-1/../x", good.RawQuery)
	f.Add("/media/a/b", "exp=1&sid=x&sig=")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, path, query string) {
		x, err := Parse(path, query)
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("Parse(%q, %q) = %v, want ErrBadPath or ErrInvalidSignature", path, query, err)
			}
			return
		}
		if !validSegment(x.Asset) || !validSegment(x.File) || strings.Contains(x.Asset+x.File, "/") ||
			path != PathPrefix+x.Asset+"/"+x.File {
			t.Fatalf("Parse(%q) accepted asset %q file %q", path, x.Asset, x.File)
		}
		if len(x.Sig) != sigLen || x.Expires < 0 || x.Session == "" || !validSession(x.Session) {
			t.Fatalf("Parse(%q, %q) = %+v", path, query, x)
		}
	})
}

// FuzzHandler sends arbitrary paths, queries, Range and If-None-Match
// headers through the handler: it must never panic or fail with a server
// error, must serve bytes only for a validly signed, unexpired URL of a
// file in the library, and a 206 must carry exactly the range it names.
func FuzzHandler(f *testing.F) {
	lib := testLibrary(f)
	s := testSigner(f)
	h := NewHandler(lib, s, func() time.Time { return t0 }, nil)
	good, _ := url.Parse(s.URL("demo-1", MainFile, "sess-1", t0.Add(time.Hour)))
	expired, _ := url.Parse(s.URL("demo-1", MainFile, "sess-1", t0))
	for _, r := range []string{"", "bytes=0-99", "bytes=-5", "bytes=10-", "bytes=0-0,5-9", "bytes=999-", "bytes=1000-", "bytes=5-1", "bytes=-0", "items=0-1", "bytes=0-99999999999999999999"} {
		f.Add(good.Path, good.RawQuery, r, "")
	}
	f.Add(good.Path, good.RawQuery, "", `"x"`)
	f.Add(expired.Path, expired.RawQuery, "bytes=0-1", "")
	f.Add("/media/demo-1/../../etc/passwd", good.RawQuery, "", "")
	f.Fuzz(func(t *testing.T, path, query, rng, inm string) {
		req := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code := w.Code
		switch code {
		case 200, 206, 304, 403, 404, 416:
		default:
			t.Fatalf("GET %q?%q Range %q = %d", path, query, rng, code)
		}
		if code != 200 && code != 206 && code != 304 && code != 416 {
			return
		}
		// Served (or range-checked): the URL must verify.
		x, err := Parse(path, query)
		if err != nil {
			t.Fatalf("GET %q?%q = %d but Parse = %v", path, query, code, err)
		}
		file, ok := lib.File(x.Asset, x.File)
		if !ok || s.Verify(x, t0) != nil {
			t.Fatalf("GET %q?%q = %d for an invalid URL", path, query, code)
		}
		body := w.Body.Bytes()
		switch code {
		case 200:
			if !bytes.Equal(body, file.Data) {
				t.Fatalf("200 body is %d bytes, want the %d-byte file", len(body), len(file.Data))
			}
		case 206:
			var from, to, size int
			cr := w.Header().Get("Content-Range")
			if cr == "" { // multipart/byteranges: several ranges
				if !strings.HasPrefix(w.Header().Get("Content-Type"), "multipart/byteranges") {
					t.Fatalf("206 without Content-Range is %q", w.Header().Get("Content-Type"))
				}
				return
			}
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &from, &to, &size); err != nil {
				t.Fatalf("Content-Range %q: %v", cr, err)
			}
			if size != len(file.Data) || from < 0 || to < from || to >= size || !bytes.Equal(body, file.Data[from:to+1]) {
				t.Fatalf("206 Content-Range %q with %d bytes does not match the file", cr, len(body))
			}
		}
	})
}
