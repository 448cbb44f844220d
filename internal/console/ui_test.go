package console

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestStaticAssets(t *testing.T) {
	h := newHarness(t, Config{}, false)
	for _, tc := range []struct{ path, ctype string }{
		{"/", "text/html; charset=utf-8"},
		{"/console/console.css", "text/css; charset=utf-8"},
		{"/console/js/main.js", "text/javascript; charset=utf-8"},
		{"/console/js/topology.js", "text/javascript; charset=utf-8"},
	} {
		status, hdr, b := h.do(http.MethodGet, tc.path, "")
		if status != 200 || hdr.Get("Content-Type") != tc.ctype || len(b) == 0 {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %q", tc.path, status, hdr.Get("Content-Type"), len(b), tc.ctype)
		}
		if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q, want scripts from self only", tc.path, csp)
		}
		if hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
	}
	for _, path := range []string{"/console/missing.js", "/console/../console.go", "/console/js/"} {
		if status, _, _ := h.do(http.MethodGet, path, ""); status != 404 {
			t.Errorf("GET %s = %d, want 404", path, status)
		}
	}
}

// The pages must run under the content security policy: no inline script
// or style, and data is never parsed as HTML.
func TestPagesNeedNothingInline(t *testing.T) {
	inlineScript := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	err := fs.WalkDir(uiFiles, "ui", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(uiFiles, path)
		if err != nil {
			return err
		}
		src := string(b)
		for _, bad := range []string{"style=", "<style", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "javascript:", `setAttribute('style'`} {
			if strings.Contains(src, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		if inlineScript.MatchString(src) {
			t.Errorf("%s has an inline script", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every module main.js imports is embedded.
	main, _ := fs.ReadFile(uiFiles, "ui/js/main.js")
	for _, m := range regexp.MustCompile(`from '\./([a-z]+\.js)'`).FindAllStringSubmatch(string(main), -1) {
		if _, err := fs.Stat(uiFiles, "ui/js/"+m[1]); err != nil {
			t.Errorf("main.js imports %s: %v", m[1], err)
		}
	}
}
