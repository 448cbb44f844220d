package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// fakeWeb stands for the web app: it answers every request with a page
// naming the path, and records what reached it.
type fakeWeb struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakeWeb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!doctype html><title>app</title><p>page "+r.URL.Path+"</p>"+strings.Repeat("<p>filler</p>", 200))
}

func (f *fakeWeb) reached(what string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.paths {
		if p == what {
			return true
		}
	}
	return false
}

func TestWebApp(t *testing.T) {
	u := startUpstream(t)
	web := &fakeWeb{}
	g := newGateway(t, u.addr, Config{Web: web}, nil)

	// App pages: served by the web app, with the edge's headers.
	for _, tt := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/title/t1"},
		{"GET", "/assets/abc/js/app.js"},
		{"HEAD", "/watch/t1"},
		{"GET", "/apiary"}, // only the /api/ path itself is the API's
	} {
		r := g.do(t, tt.method, tt.path, nil, nil)
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s %s = %d %s, want 200 from the web app", tt.method, tt.path, r.status, r.header.Get("Content-Type"))
		}
		if !web.reached(tt.method + " " + tt.path) {
			t.Errorf("%s %s did not reach the web app", tt.method, tt.path)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s has no X-Request-Id", tt.method, tt.path)
		}
		for k, want := range securityHeaders {
			if got := r.header.Get(k); got != want[0] {
				t.Errorf("%s %s header %s = %q, want %q", tt.method, tt.path, k, got, want[0])
			}
		}
	}

	// The API's paths keep the API's JSON 404; other methods are not pages.
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/nope", http.StatusNotFound},
		{"GET", "/api", http.StatusNotFound},
		{"GET", "/api/", http.StatusNotFound},
		{"GET", "/.well-known/other.json", http.StatusNotFound},
		{"GET", "/media", http.StatusNotFound},
		{"POST", "/", http.StatusNotFound},
		{"DELETE", "/title/t1", http.StatusNotFound},
		{"GET", "/api/v1/auth/login", http.StatusMethodNotAllowed},
	} {
		r := g.do(t, tt.method, tt.path, nil, nil)
		if r.status != tt.status {
			t.Errorf("%s %s = %s, want %d", tt.method, tt.path, describe(r), tt.status)
			continue
		}
		if e := errorOf(t, r); e.Code == "" {
			t.Errorf("%s %s: error has no code: %s", tt.method, tt.path, r.body)
		}
		if web.reached(tt.method + " " + tt.path) {
			t.Errorf("%s %s reached the web app, want the API's error", tt.method, tt.path)
		}
	}

	// Routes still win over the app.
	if r := g.get(t, "/api/v1/titles"); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/v1/titles with a web app = %s, want the API's 200", describe(r))
	}

	// The app's pages are compressed like the API's answers.
	r := g.do(t, http.MethodGet, "/", header("Accept-Encoding", "gzip"), nil)
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET / with Accept-Encoding gzip: Content-Encoding = %q, want gzip", r.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(page, []byte("page /")) {
		t.Errorf("gunzipped GET / = %.60q (%v), want the app's page", page, err)
	}

	// The access log names the route "web".
	r = g.do(t, http.MethodGet, "/account", header("X-Request-Id", "web-log-1"), nil)
	if line := g.accessLine(t, "web-log-1"); line["route"] != webRoute || line["status"] != float64(200) {
		t.Errorf("access log of GET /account = %v, want route %q status 200", line, webRoute)
	}
}

func TestNoWebApp(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	r := g.get(t, "/")
	if r.status != http.StatusNotFound {
		t.Fatalf("GET / without a web app = %s, want 404", describe(r))
	}
	if e := errorOf(t, r); e.Code != "NOT_FOUND" {
		t.Errorf("GET / without a web app: code %q, want NOT_FOUND", e.Code)
	}
}
