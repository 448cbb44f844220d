package media

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestChromiumPlays has a real browser play every embedded video through
// the handler and signed URLs, as viewers do. It runs when
// MARQUEE_TEST_CHROMIUM names a Chromium binary (e.g. /usr/bin/chromium)
// and is skipped with a message otherwise.
func TestChromiumPlays(t *testing.T) {
	bin := os.Getenv("MARQUEE_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("browser test skipped: set MARQUEE_TEST_CHROMIUM=/path/to/chromium to run it")
	}
	lib, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	signer := testSigner(t)
	handler := NewHandler(lib, signer, nil, nil)
	var partial atomic.Int64
	results := make(chan []byte, 1)
	mux := http.NewServeMux()
	mux.Handle("/media/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		handler.ServeHTTP(rec, r)
		if rec.status == http.StatusPartialContent {
			partial.Add(1)
		}
	}))
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case results <- b:
		default:
		}
	})
	var videos strings.Builder
	for _, a := range lib.Assets() {
		u := signer.URL(a, MainFile, "browser-test", time.Now().Add(time.Hour))
		fmt.Fprintf(&videos, "<video id=%q src=%q muted playsinline preload=auto></video>\n", a, html.EscapeString(u))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><html><body>%s<script>
const out = {canPlay: document.createElement("video").canPlayType('video/webm; codecs="vp9, opus"'), videos: {}};
const vids = [...document.querySelectorAll("video")];
let pending = vids.length;
function done(v, err) {
  if (out.videos[v.id]) return;
  out.videos[v.id] = {err: err || "", duration: v.duration, width: v.videoWidth, height: v.videoHeight, time: v.currentTime};
  if (--pending === 0) fetch("/result", {method: "POST", body: JSON.stringify(out)});
}
for (const v of vids) {
  v.addEventListener("error", () => done(v, "media error " + (v.error && v.error.code)));
  v.addEventListener("timeupdate", () => { if (v.currentTime > 1.5) { v.pause(); done(v); } });
  v.play().catch(e => done(v, "play: " + e));
}
setTimeout(() => { for (const v of vids) done(v, "timeout"); }, 20000);
</script></body></html>`, videos.String())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
		"--autoplay-policy=no-user-gesture-required", "--no-first-run", "--user-data-dir="+t.TempDir(), srv.URL+"/")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var got struct {
		CanPlay string `json:"canPlay"`
		Videos  map[string]struct {
			Err            string
			Duration, Time float64
			Width, Height  int
		} `json:"videos"`
	}
	select {
	case b := <-results:
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("result %s: %v", b, err)
		}
	case <-ctx.Done():
		t.Fatalf("no result from the browser; its stderr:\n%s", stderr.String())
	}
	t.Logf("browser results: %+v; %d responses were 206", got, partial.Load())
	if got.CanPlay != "probably" {
		t.Errorf(`canPlayType(video/webm; codecs="vp9, opus") = %q, want probably`, got.CanPlay)
	}
	for _, a := range lib.Assets() {
		v, ok := got.Videos[a]
		if !ok || v.Err != "" || v.Width != 640 || v.Height != 360 || v.Duration < 20 || v.Duration > 30 || v.Time <= 1.5 {
			t.Errorf("%s in the browser: %+v, want a 640x360 video of 20-30 s played past 1.5 s", a, v)
		}
	}
	if partial.Load() == 0 {
		t.Errorf("the browser made no Range request answered 206")
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
