// Package webapp is Marquee's viewer web app: static files (HTML, CSS and
// JavaScript ES modules, no build step) embedded in the binary, and the
// http.Handler that serves them.
//
// URLs: the assets live under /assets/<version>/, where version is a hash
// of every embedded file, so a changed file gets a new URL and the assets
// can be cached for a year as immutable; the modules import each other by
// relative paths, which keeps them under the same version. index.html
// names the assets with the version filled in once at start, and is sent
// with no-cache so a browser always learns the current version. The app
// routes on the client with the History API: every other path without a
// file extension ("/", "/title/t-0001", "/watch/t-0001") is an app page and
// gets index.html.
//
// Every response carries security headers that fit a strict Content
// Security Policy: the app has no inline script or style, and loads
// everything from its own origin.
package webapp

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var static embed.FS

// assetPrefix is the URL path under which the versioned assets are served.
const assetPrefix = "/assets/"

// versionPlaceholder is replaced in index.html by the assets' version.
const versionPlaceholder = "__VERSION__"

// ContentSecurityPolicy allows only the app's own origin: scripts and
// styles from files (no inline code, no eval), images and media from the
// origin (artwork, signed video URLs) and data: URLs for small images.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders are set on every response of the handler.
var securityHeaders = map[string]string{
	"Content-Security-Policy":      ContentSecurityPolicy,
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

// contentTypes maps the extensions of the embedded files to their types;
// a file of another extension is not served.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8",
}

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the app. It is built once and never changes.
type handler struct {
	version string
	assets  map[string]file // by path below static/, "js/app.js"
	index   file
	root    map[string]file // files served at the root: favicon, robots.txt
}

// Handler returns the handler of the web app. It answers GET and HEAD
// only (405 otherwise): index.html for app pages, the versioned assets,
// and a few files at the root (/favicon.svg, /robots.txt).
func Handler() http.Handler { return embedded() }

// Version returns the version of the embedded assets: the path segment
// after /assets/.
func Version() string { return embedded().version }

// embedded builds the handler of the embedded files once. The files are
// fixed at build time, so an error is a broken build, not a run-time
// condition.
var embedded = sync.OnceValue(func() *handler {
	h, err := newHandler(static)
	if err != nil {
		panic("webapp: " + err.Error())
	}
	return h
})

func newHandler(fsys fs.FS) (*handler, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]file{}, root: map[string]file{}}
	sum := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum.Write([]byte(p))
		sum.Write([]byte{0})
		sum.Write(body)
		h.assets[p] = file{body: body, contentType: ct, etag: etag(body)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.version = hex.EncodeToString(sum.Sum(nil))[:12]

	idx, ok := h.assets["index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	body := bytes.ReplaceAll(idx.body, []byte(versionPlaceholder), []byte(h.version))
	h.index = file{body: body, contentType: idx.contentType, etag: etag(body)}
	delete(h.assets, "index.html")
	for _, name := range []string{"favicon.svg", "robots.txt"} {
		if f, ok := h.assets[name]; ok {
			h.root["/"+name] = f
		}
	}
	return h, nil
}

func etag(body []byte) string {
	s := sha256.Sum256(body)
	return `"` + hex.EncodeToString(s[:12]) + `"`
}

// ServeHTTP serves one request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	for k, v := range securityHeaders {
		hdr.Set(k, v)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, assetPrefix):
		rest := strings.TrimPrefix(p, assetPrefix)
		version, name, ok := strings.Cut(rest, "/")
		f, found := h.assets[name]
		if !ok || version != h.version || !found || name == "" {
			// An old version's asset is not kept: a page that asks for one
			// is stale and reloading it fixes it.
			hdr.Set("Cache-Control", "no-store")
			plain(w, http.StatusNotFound, "no such asset")
			return
		}
		hdr.Set("Cache-Control", "public, max-age=31536000, immutable")
		serve(w, r, f)
	case h.root[p].body != nil:
		hdr.Set("Cache-Control", "public, max-age=86400")
		serve(w, r, h.root[p])
	case isAppPath(p):
		// no-cache, not no-store: the browser may keep it but asks each
		// time (If-None-Match), so a new version is seen at once.
		hdr.Set("Cache-Control", "no-cache")
		serve(w, r, h.index)
	default:
		hdr.Set("Cache-Control", "no-store")
		plain(w, http.StatusNotFound, "not found")
	}
}

// isAppPath reports whether p is a page of the app rather than a file: a
// clean absolute path whose last segment has no extension.
func isAppPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "/.") || strings.ContainsRune(p, '\\') {
		return false
	}
	return !strings.Contains(path.Base(p), ".")
}

// serve writes f with its type and ETag; http.ServeContent answers
// conditional and range requests and HEAD.
func serve(w http.ResponseWriter, r *http.Request, f file) {
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Vary", "Accept-Encoding")
	http.ServeContent(w, r, "", noModTime, bytes.NewReader(f.body))
}

// noModTime leaves Last-Modified out: the ETag says it better.
var noModTime time.Time

func plain(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}
