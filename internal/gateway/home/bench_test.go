package home_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/marquee-tv/marquee/internal/gateway/home"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// BenchmarkHome is one full page over the fake services on loopback gRPC:
// four calls in parallel, then three catalog resolutions.
func BenchmarkHome(b *testing.B) {
	h := newHarness(b, home.Config{})
	ctx := principal.Attach(b.Context(), principal.Principal{AccountID: accountA})
	r := httptest.NewRequest(http.MethodGet, "/api/v1/home?profile_id=p-adult", nil).WithContext(ctx)
	for b.Loop() {
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
