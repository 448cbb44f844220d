package httpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var video = bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB

func backend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/media/video", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "video/mp4")
		http.ServeContent(w, r, "video.mp4", time.Unix(0, 0), bytes.NewReader(video))
	})
	mux.HandleFunc("/media/echo", func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range r.Header {
			w.Header()["Echo-"+k] = vs
		}
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("X-Request-Id", "upstream-id")
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	mux.HandleFunc("/media/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("first;"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		w.Write([]byte("second"))
	})
	mux.HandleFunc("/media/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	})
	mux.HandleFunc("/media/abort", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte("short"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	s := httptest.NewUnstartedServer(mux)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func front(t *testing.T, u *Upstream, o Options) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := u.Proxy(w, r, o); err != nil {
			code := http.StatusBadGateway
			switch {
			case errors.Is(err, ErrTimeout):
				code = http.StatusGatewayTimeout
			case errors.Is(err, ErrUnreachable), errors.Is(err, ErrNoAddress):
				code = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), code)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRangeAndHeaders(t *testing.T) {
	b, conns := backend(t)
	u := New("media", []string{b.Listener.Addr().String()})
	f := front(t, u, Options{Drop: map[string]bool{"Authorization": true}, Set: [][2]string{{"X-Forwarded-For", "192.0.2.7"}}})

	req, _ := http.NewRequest(http.MethodGet, f.URL+"/media/video", nil)
	req.Header.Set("Range", "bytes=100-199")
	req.Header.Set("If-Range", `"v1"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, video[100:200]) {
		t.Fatalf("GET with Range = %d, %d bytes, want 206 with bytes 100-199", resp.StatusCode, len(body))
	}
	if cr := resp.Header.Get("Content-Range"); cr != "bytes 100-199/1048576" {
		t.Errorf("Content-Range = %q", cr)
	}
	if resp.Header.Get("ETag") != `"v1"` || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Errorf("ETag %q, Accept-Ranges %q, want passed through", resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
	}

	// Whole body, many times: one upstream connection, kept alive.
	for range 20 {
		resp, err := http.Get(f.URL + "/media/video")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != int64(len(video)) {
			t.Fatalf("whole video: %d bytes", n)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream connections for 21 sequential requests = %d, want 1", n)
	}

	req, _ = http.NewRequest(http.MethodPost, f.URL+"/media/echo?a=1", io.MultiReader(strings.NewReader("chunked body")))
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Keep", "kept")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	if string(body) != "chunked body" {
		t.Errorf("echoed body = %q", body)
	}
	checks := map[string]string{
		"Echo-Authorization":   "",
		"Echo-X-Forwarded-For": "192.0.2.7",
		"Echo-X-Hop":           "",
		"Echo-X-Keep":          "kept",
		"X-Secret":             "",
		"X-Request-Id":         "",
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("response header %s = %q, want %q", k, got, want)
		}
	}
}

func TestStreaming(t *testing.T) {
	b, _ := backend(t)
	u := New("media", []string{b.Listener.Addr().String()})
	f := front(t, u, Options{HeaderTimeout: time.Second})
	resp, err := http.Get(f.URL + "/media/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The first chunk arrives while the upstream is still writing: nothing
	// is buffered until the end.
	got := make([]byte, len("first;"))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(bufio.NewReader(resp.Body), got); done <- err }()
	select {
	case err := <-done:
		if err != nil || string(got) != "first;" {
			t.Fatalf("first chunk = %q, %v", got, err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the first chunk was held back")
	}
}

func TestFailures(t *testing.T) {
	b, _ := backend(t)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	tests := []struct {
		name  string
		addrs []string
		path  string
		want  int
	}{
		{"no address", nil, "/media/video", 503},
		{"unreachable", []string{deadAddr}, "/media/video", 503},
		{"one address down", []string{deadAddr, b.Listener.Addr().String()}, "/media/video", 200},
		{"header timeout", []string{b.Listener.Addr().String()}, "/media/slow", 504},
	}
	for _, tt := range tests {
		f := front(t, New("m", tt.addrs), Options{HeaderTimeout: 200 * time.Millisecond})
		resp, err := http.Get(f.URL + tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}

	// An upstream that breaks off mid-body: the client sees a broken
	// response, never a short body taken for whole.
	f := front(t, New("m", []string{b.Listener.Addr().String()}), Options{})
	resp, err := http.Get(f.URL + "/media/abort")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("truncated upstream body read without error")
	}
}

// TestStaleConnection closes the upstream's idle connections between
// requests: the proxy retries a bodiless request on a new connection.
func TestStaleConnection(t *testing.T) {
	b, _ := backend(t)
	u := New("media", []string{b.Listener.Addr().String()})
	f := front(t, u, Options{})
	for i := range 5 {
		resp, err := http.Get(f.URL + "/media/video")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d after the upstream closed idle connections: %d", i, resp.StatusCode)
		}
		b.CloseClientConnections()
		time.Sleep(10 * time.Millisecond)
	}
}
