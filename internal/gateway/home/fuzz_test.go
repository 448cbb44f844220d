package home_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/gateway/home"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// FuzzHome sends any query string as any caller: the answer is a page (200)
// or an error of the product shape with a fitting status, never a panic; a
// page is the caller's own profile's (or, when profiles could not answer,
// a kids page), and never holds a title above its level.
func FuzzHome(f *testing.F) {
	for _, q := range []string{"profile_id=p-adult", "profile_id=p-kids&profile_id=p-adult", "profile_id=", "%zz", "profile_id=p%00", "a=b;c"} {
		f.Add(q, accountA)
	}
	f.Add("profile_id=p-adult", accountB)
	f.Add("profile_id=p-b", "")
	h := newHarness(f, home.Config{})
	h.handler = home.New(home.Config{}, dialerOf(h), slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.Fuzz(func(t *testing.T, query, account string) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/home", nil)
		r.URL.RawQuery = query
		if account != "" {
			r = r.WithContext(principal.Attach(r.Context(), principal.Principal{AccountID: account}))
		}
		w := httptest.NewRecorder()
		h.handler.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var p home.Page
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatalf("200 body %q: %v", w.Body.String(), err)
			}
			level := catalogdomain.LevelKids
			if pr, ok := profiles[p.ProfileID]; ok && pr[0] == account {
				level = catalogdomain.Level(pr[1])
			} else if len(p.Degraded) == 0 || p.Degraded[0] != home.DegradedProfile {
				// Only when profiles could not say (a stall under load) may
				// the page of a profile not known to be the caller's be
				// served, and then as a kids page.
				t.Fatalf("page of %q served to %q, degraded %v", p.ProfileID, account, p.Degraded)
			}
			if len(p.Degraded) > 0 && p.Degraded[0] == home.DegradedProfile {
				level = catalogdomain.LevelKids
			}
			for _, row := range p.Rows {
				for _, c := range row.Items {
					if !catalogdomain.Allows(level, catalogdomain.Rating(c.MaturityRating)) {
						t.Fatalf("%s page has %s rated %s", level, c.ID, c.MaturityRating)
					}
				}
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusNotFound:
			var e errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d body %q: %v", w.Code, w.Body.String(), err)
			}
		default:
			t.Fatalf("GET home?%q as %q = %d %s", query, account, w.Code, w.Body.String())
		}
	})
}
