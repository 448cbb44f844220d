package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// The console's pages: plain files, ES modules, no build step.
//
//go:embed ui
var uiFiles embed.FS

// contentSecurityPolicy allows the console's own files and nothing
// inline, so that no injected markup can run.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// uiHandler serves index.html at / and the other files under /console/.
func uiHandler() http.Handler {
	root, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(path.Clean(r.URL.Path), "/console/")
		}
		b, err := fs.ReadFile(root, name)
		ctype, known := uiTypes[path.Ext(name)]
		if err != nil || !known {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// The files change with the binary; revalidating is cheap on loopback.
		h.Set("Cache-Control", "no-cache")
		w.Write(b)
	})
}
