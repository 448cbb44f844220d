package webapp

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, req)
	return w
}

func TestIndexForAppPages(t *testing.T) {
	for _, path := range []string{"/", "/signin", "/title/t-0001", "/watch/t-0003", "/orders/abc-1", "/profiles/new"} {
		w := get(t, "GET", path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", path, w.Code)
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s Content-Type = %q, want text/html; charset=utf-8", path, ct)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s Cache-Control = %q, want no-cache", path, cc)
		}
		body := w.Body.String()
		if strings.Contains(body, versionPlaceholder) || !strings.Contains(body, "/assets/"+Version()+"/js/app.js") {
			t.Errorf("GET %s: index.html does not name the assets of version %s", path, Version())
		}
	}
}

func TestAssets(t *testing.T) {
	v := Version()
	tests := []struct {
		path, contentType string
	}{
		{"/assets/" + v + "/js/app.js", "text/javascript; charset=utf-8"},
		{"/assets/" + v + "/js/api.js", "text/javascript; charset=utf-8"},
		{"/assets/" + v + "/app.css", "text/css; charset=utf-8"},
	}
	for _, tt := range tests {
		w := get(t, "GET", tt.path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tt.path, w.Code)
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != tt.contentType {
			t.Errorf("GET %s Content-Type = %q, want %q", tt.path, ct, tt.contentType)
		}
		if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
			t.Errorf("GET %s Cache-Control = %q, want a year, immutable", tt.path, cc)
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s has no ETag", tt.path)
			continue
		}
		if again := get(t, "GET", tt.path, "If-None-Match", etag); again.Code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match = %d, want 304", tt.path, again.Code)
		}
	}
	if w := get(t, "GET", "/favicon.svg"); w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.svg = %d %q, want 200 image/svg+xml", w.Code, w.Header().Get("Content-Type"))
	}
}

func TestNotFound(t *testing.T) {
	for _, path := range []string{
		"/assets/0000/js/app.js",                  // another version
		"/assets/" + Version() + "/js/missing.js", // no such file
		"/assets/" + Version() + "/",              // a directory
		"/assets/" + Version() + "/index.html",    // the page is not an asset
		"/assets/" + Version() + "/../js/app.js",  // not clean
		"/missing.png",                            // a file that is not there
		"/a/../b", "/.env", "//x",
	} {
		w := get(t, "GET", path)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, w.Code)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s Cache-Control = %q, want no-store", path, cc)
		}
	}
}

func TestMethods(t *testing.T) {
	if w := get(t, "HEAD", "/"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD / = %d with %d bytes, want 200 with none", w.Code, w.Body.Len())
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		w := get(t, m, "/")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s / = %d Allow %q, want 405 Allow GET, HEAD", m, w.Code, w.Header().Get("Allow"))
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	for _, path := range []string{"/", "/assets/" + Version() + "/js/app.js", "/nope.txt"} {
		w := get(t, "GET", path)
		for k, want := range securityHeaders {
			if got := w.Header().Get(k); got != want {
				t.Errorf("GET %s %s = %q, want %q", path, k, got, want)
			}
		}
	}
	if !strings.Contains(ContentSecurityPolicy, "script-src 'self'") || strings.Contains(ContentSecurityPolicy, "unsafe-") {
		t.Errorf("Content-Security-Policy %q allows more than the origin's files", ContentSecurityPolicy)
	}
}

// The policy forbids inline code: no file may rely on it.
func TestNoInlineCode(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`javascript:`),
	}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".html") {
			for _, re := range inline {
				if loc := re.FindIndex(b); loc != nil {
					t.Errorf("%s has inline code at byte %d: %.40q", p, loc[0], b[loc[0]:])
				}
			}
		}
		if strings.HasSuffix(p, ".js") {
			for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("%s uses %s: the app builds the DOM from text nodes only", p, bad)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every module index.html preloads or loads must exist.
func TestIndexNamesRealAssets(t *testing.T) {
	body := get(t, "GET", "/").Body.String()
	refs := regexp.MustCompile(`(?:href|src)="(/[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names %d files, want the stylesheet, the modules and the icon", len(refs))
	}
	for _, m := range refs {
		if w := get(t, "GET", m[1]); w.Code != http.StatusOK {
			t.Errorf("index.html names %s, which answers %d", m[1], w.Code)
		}
	}
}
