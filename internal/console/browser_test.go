package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
)

// TestBrowser signs in to the console in a real browser, finds live
// traffic on the topology and moves a traffic split with the keyboard.
// MARQUEE_TEST_BROWSER names a Chromium executable.
func TestBrowser(t *testing.T) {
	chrome := os.Getenv("MARQUEE_TEST_BROWSER")
	if chrome == "" {
		t.Skip("browser test skipped: set MARQUEE_TEST_BROWSER to a Chromium executable to run it")
	}
	gw, cat := newFakeSidecar(t), newFakeSidecar(t)
	instances := []controlplane.InstanceStatus{
		{ID: "gateway-1", Service: "gateway", Version: "v1", Healthy: true, MetricsAddress: gw.addr(), Address: "127.0.0.1:1"},
		{ID: "catalog-1", Service: "catalog", Version: "v1", Healthy: true, MetricsAddress: cat.addr(), Address: "127.0.0.1:2"},
		{ID: "recommendations-1", Service: "recommendations", Version: "v1", Healthy: true, Address: "127.0.0.1:3"},
		{ID: "recommendations-2", Service: "recommendations", Version: "v2", Healthy: true, Address: "127.0.0.1:4"},
	}
	splits := make(chan map[string]any, 10)
	var mu sync.Mutex
	version := 7
	mesh := http.NewServeMux()
	mesh.HandleFunc("GET /api/v1/mesh/instances", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"instances": instances})
	})
	mesh.HandleFunc("GET /api/v1/mesh/policy", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, map[string]any{"version": version, "policy": map[string]any{"services": map[string]any{
			"recommendations": map[string]any{"split": []map[string]any{{"version": "v1", "weight": 90}, {"version": "v2", "weight": 10}}},
			"catalog":         map[string]any{},
		}}})
	})
	mesh.HandleFunc("GET /api/v1/mesh/policy/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"versions": []map[string]any{{"version": 7, "created_at": time.Now(), "author": "acc-1"}}})
	})
	mesh.HandleFunc("POST /api/v1/mesh/split", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, 400, "invalid_argument", err.Error())
			return
		}
		splits <- body
		mu.Lock()
		version++
		v := version
		mu.Unlock()
		writeJSON(w, map[string]any{"version": v})
	})
	h := newHarness(t, Config{Mesh: mesh, Instances: func() []controlplane.InstanceStatus { return instances }}, false)
	// The fake gateway signs in the admin.
	admin := h.sign(h.key, "admin")
	login := http.NewServeMux()
	login.HandleFunc("POST /api/v1/auth/login", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(b), `"password":"s3cret-enough"`) {
			writeError(w, 401, "unauthenticated", "wrong email or password")
			return
		}
		writeJSON(w, map[string]string{"access_token": admin})
	})
	saga := map[string]any{"id": "saga-1", "order_id": "order-1", "state": "needs_attention", "last_error": "billing: UNAVAILABLE",
		"created_at": time.Now(), "steps": []map[string]any{
			{"name": "charge", "kind": "action", "participant": "billing", "state": "failed", "attempts": 3,
				"errors": []map[string]any{{"attempt": 3, "code": "UNAVAILABLE", "message": "mesh: no healthy upstream for billing", "retryable": true}}},
		}}
	login.HandleFunc("GET /api/v1/admin/sagas", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"sagas": []any{saga}})
	})
	login.HandleFunc("GET /api/v1/admin/sagas/saga-1", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, saga) })
	login.Handle("/", h.gw.Config.Handler)
	h.gw.Config.Handler = login

	ctx := context.Background()
	t0 := time.Now()
	h.c.topo.scrapeOnce(ctx, t0)
	gw.call("gateway", "catalog", "v1", "OK", 120, .004)
	h.c.topo.scrapeOnce(ctx, t0.Add(10*time.Second))

	actx, cancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.Headless)...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 60*time.Second)
	defer cancel()

	// Every exception and browser-log error fails the test: content
	// security policy violations are reported there.
	var pageErrs []string
	cctx, stopConsole := context.WithCancel(bctx)
	messages := chromedp.Console(cctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError {
				pageErrs = append(pageErrs, m.String())
			}
		}
	}()
	defer func() {
		stopConsole()
		<-consoleDone
		for _, e := range pageErrs {
			t.Errorf("page error: %s", e)
		}
	}()

	edge := chromedp.CSS(`g.edge[data-source="gateway"][data-destination="catalog"]`)
	err := chromedp.Do(bctx,
		chromedp.Navigate(h.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "admin@marquee.local"),
		chromedp.SendKeys(chromedp.ID("password"), "s3cret-enough"),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(edge),
	)
	if err != nil {
		t.Fatalf("sign in and see the topology: %v", err)
	}
	edgeText, err := chromedp.Run(bctx, chromedp.TextContent(edge))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(edgeText, "12.0 rps") || !strings.Contains(edgeText, "0% err") {
		t.Errorf("gateway→catalog edge reads %q, want 12.0 rps and 0%% errors", edgeText)
	}

	// Every page draws without an error.
	for _, page := range []string{"instances", "traces", "events", "sagas"} {
		if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`nav a[href="#`+page+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#page h2`))); err != nil {
			t.Fatalf("page %s: %v", page, err)
		}
	}
	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`#page button.link`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.timeline li.step.failed`)))
	if err != nil {
		t.Fatalf("saga timeline: %v", err)
	}
	timeline, err := chromedp.Run(bctx, chromedp.TextContent(chromedp.CSS(`#page section`)))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Retry", "Force compensation", "attempt 3: UNAVAILABLE mesh: no healthy upstream for billing"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("saga detail %q lacks %q", timeline, want)
		}
	}

	slider := chromedp.CSS(`input.split[data-service="recommendations"]`)
	err = chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`nav a[href="#traffic"]`)),
		chromedp.WaitVisible(slider),
		chromedp.Focus(slider),
		chromedp.KeyEvent(kb.ArrowRight),
	)
	if err != nil {
		t.Fatalf("move the split: %v", err)
	}
	select {
	case body := <-splits:
		w, _ := body["weights"].(map[string]any)
		if body["service"] != "recommendations" || w["v1"] != 85.0 || w["v2"] != 15.0 {
			t.Errorf("split posted %v, want recommendations v1 85, v2 15", body)
		}
	case <-bctx.Done():
		t.Fatal("no split was posted after moving the slider")
	}
	status, err := chromedp.Run(bctx, chromedp.Poll[string](
		`(() => { const s = document.querySelector('p[role="status"]').textContent; return s.includes('version 8') && s; })()`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Errorf("status after the change: %v", err)
	}
	if !strings.Contains(status, "policy version 8") {
		t.Errorf("status reads %q, want the new policy version 8", status)
	}
}
