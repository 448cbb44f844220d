package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser test drives the viewer web app in a real Chromium against
// marquee dev, as a viewer would: sign up, a profile, a plan bought with a
// test card, a title played and resumed, a kids profile, sign out and in.
// It needs MARQUEE_TEST_BROWSER, the path of a Chromium binary. With
// MARQUEE_UPDATE_SCREENSHOTS=1 it also rewrites docs/screenshots/*.png.

// browserStep bounds each wait of the browser test: generous, for a loaded
// machine; nothing waits on a fixed sleep.
const browserStep = 60 * time.Second

// browser is one Chromium tab on the app.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, exe, base string) *browser {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	// Registered after TempDir: runs first, so the browser is gone before
	// its profile directory is removed.
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, base: base}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	b.do("set the viewport", chromedp.EmulateViewport(1280, 800))
	return b
}

// do runs actions, failing the test with the page's state if they fail.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.state())
	}
}

// eval evaluates a JavaScript expression and decodes its value into out.
func (b *browser) eval(expr string, out any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\n%s", expr, err, b.state())
	}
	if err := json.Unmarshal(raw, out); err != nil {
		b.t.Fatalf("evaluating %s: %v (%s)", expr, err, raw)
	}
}

// waitFor polls a JavaScript predicate until it holds.
func (b *browser) waitFor(what, predicate string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserStep)))
	if err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\n%s", what, predicate, err, b.state())
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// fill types text into an empty field, as a person would.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	var cleared bool
	b.eval(`(e => { if (!e) return false; e.value = ""; return true; })(document.querySelector(`+string(q)+`))`, &cleared)
	if !cleared {
		b.t.Fatalf("fill %s: no such field\n%s", sel, b.state())
	}
	b.do("fill "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// state describes the page for a failure message.
func (b *browser) state() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.getElementById("main")?.innerText || "").slice(0, 800)`))
	if err != nil {
		s = "(page state unavailable: " + err.Error() + ")"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var msgs []string
	for _, m := range b.console {
		msgs = append(msgs, m.String())
	}
	return "page: " + s + "\nconsole:\n" + strings.Join(msgs, "\n")
}

// imagesLoaded holds once the page's eager images have loaded.
const imagesLoaded = `[...document.images].every(i => i.loading === "lazy" || (i.complete && i.naturalWidth > 0))`

// screenshot saves the viewport as docs/screenshots/NAME.png when
// MARQUEE_UPDATE_SCREENSHOTS=1, so that ordinary runs leave tracked files
// alone.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("MARQUEE_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	b.waitFor("images and no passing message before the "+name+" screenshot", imagesLoaded+` && (t => !t || getComputedStyle(t).visibility === "hidden")(document.getElementById("toast"))`)
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// pageProblems lists uncaught exceptions and browser security messages
// (Content Security Policy violations) seen so far.
func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.IsException() || m.Source == "security" || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

func TestBrowser(t *testing.T) {
	exe := os.Getenv("MARQUEE_TEST_BROWSER")
	if exe == "" {
		t.Skip("MARQUEE_TEST_BROWSER is not set: set it to a Chromium binary (for example /usr/bin/chromium) to run the browser test")
	}
	if testing.Short() {
		t.Skip("runs the whole system and a browser; skipped with -short")
	}
	d := startDev(t)
	b := newBrowser(t, exe, d.base)
	defer func() {
		if p := b.pageProblems(); len(p) > 0 {
			t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
		}
	}()

	// Signed out, the app sends the viewer to sign in.
	b.open("/")
	b.waitFor("the sign-in page", `location.pathname === "/signin" && document.querySelector("main h1")?.textContent === "Sign in"`)
	b.screenshot("sign-in")

	// Sign up; a new account has no profile yet and creates one.
	b.click(`main a[href="/signup"]`)
	b.waitFor("the sign-up form", `location.pathname === "/signup" && !!document.querySelector("#password")`)
	b.fill("#name", "Robin Browser")
	b.fill("#email", fmt.Sprintf("browser-%d@example.com", time.Now().UnixNano()))
	b.fill("#password", "a long enough secret")
	b.click(`main button[type=submit]`)
	b.waitFor("the first-profile form", `location.pathname === "/profiles" && !!document.querySelector("#profile-name")`)
	var stored bool
	b.eval(`(localStorage.getItem("marquee.refresh") || "").length > 0`, &stored)
	if !stored {
		t.Error("after sign-up, no refresh token in localStorage")
	}
	b.fill("#profile-name", "Robin")
	b.click(`main button[type=submit]`)
	b.waitFor("the home page", `location.pathname === "/" && document.body.dataset.homeRendered === "1"`)
	var adultBg string
	b.eval(`getComputedStyle(document.body).backgroundColor`, &adultBg)

	// Subscribe: the card form checks the card before anything is sent.
	b.click(`nav a[href="/plans"]`)
	b.waitFor("the plans", `!!document.querySelector('li[data-plan="standard"] a')`)
	b.click(`li[data-plan="standard"] a`)
	b.waitFor("the card form", `location.pathname === "/checkout" && !!document.querySelector("#card-number")`)
	b.fill("#card-number", "4242 4242 4242 4241")
	b.fill("#exp-month", "12")
	b.fill("#exp-year", fmt.Sprint(time.Now().Year()+2))
	b.fill("#cvc", "123")
	b.click(`main button[type=submit]`)
	b.waitFor("the card number refused by the form", `document.querySelector("#card-number").getAttribute("aria-invalid") === "true" && document.querySelector("#card-number-error").textContent !== ""`)
	b.fill("#card-number", "4242 4242 4242 4242")
	b.screenshot("checkout")
	b.click(`main button[type=submit]`)
	b.waitFor("the order's final status", `["COMPLETED", "REJECTED", "FAILED"].includes(document.querySelector(".order")?.dataset.status)`)
	var seen []string
	b.eval(`[...document.querySelectorAll(".timeline li")].map(li => li.dataset.status)`, &seen)
	if !slices.Equal(seen, []string{"PENDING", "COMPLETED"}) {
		t.Fatalf("order statuses shown = %v, want [PENDING COMPLETED]\n%s", seen, b.state())
	}
	var cardLeft bool
	b.eval(`JSON.stringify(localStorage).includes("4242") || JSON.stringify(sessionStorage).includes("4242")`, &cardLeft)
	if cardLeft {
		t.Error("the card number was stored in the browser")
	}
	b.screenshot("checkout-result")

	// Open a title from the home page and play it past 2 s.
	b.click(`nav a[href="/"]`)
	b.waitFor("the home page", `location.pathname === "/" && !!document.querySelector('main a.card[href^="/title/"]')`)
	b.click(`main a.card[href^="/title/"]`)
	b.waitFor("a title's page", `location.pathname.startsWith("/title/") && !!document.querySelector(".title-page h1") && !!document.querySelector("a.play")`)
	b.screenshot("title")
	b.click(`a.play`)
	b.waitFor("the video past 2 s", `location.pathname.startsWith("/watch/") && (document.querySelector("video.video")?.currentTime || 0) > 2`)
	var firstResume string
	b.eval(`document.querySelector("video.video").dataset.resume`, &firstResume)
	if firstResume != "0" {
		t.Errorf("a new profile's first session resumes at %s, want 0", firstResume)
	}
	b.screenshot("player")

	// Leave (the session stops), come back: playback resumes.
	b.click(`a.back`)
	b.waitFor("the title's page again", `location.pathname.startsWith("/title/") && !!document.querySelector("a.play")`)
	b.click(`a.play`)
	b.waitFor("the resumed video", `document.querySelector("video.video")?.dataset.startAt !== undefined`)
	var resumed struct {
		Resume, StartAt, Duration float64
	}
	b.eval(`(() => { const v = document.querySelector("video.video"); return {resume: Number(v.dataset.resume), startat: Number(v.dataset.startAt), duration: v.duration}; })()`, &resumed)
	if resumed.Resume < 2 || resumed.StartAt != resumed.Resume {
		t.Errorf("back on the title: resume position %v, started at %v; want at least 2 s, used as is", resumed.Resume, resumed.StartAt)
	}
	b.waitFor("playback from the resume position", `(() => { const v = document.querySelector("video.video"); return !v.paused && v.currentTime >= Number(v.dataset.startAt); })()`)
	b.click(`a.back`)
	b.waitFor("the title's page", `location.pathname.startsWith("/title/") && !!document.querySelector("a.play")`)

	// The first render of the home page, on a full load that restores the
	// session from the refresh token.
	b.open("/")
	b.waitFor("the home page on a full load", `document.body.dataset.homeRendered === "1"`)
	var perf struct {
		Home, FCP, DCL, TTFB float64
		Scripts              int
		ScriptBytes          float64
	}
	b.eval(`(() => {
		const nav = performance.getEntriesByType("navigation")[0];
		const mark = performance.getEntriesByName("marquee:home-rendered")[0];
		const fcp = performance.getEntriesByName("first-contentful-paint")[0];
		const scripts = performance.getEntriesByType("resource").filter(r => r.name.endsWith(".js"));
		return {home: mark ? mark.startTime : -1, fcp: fcp ? fcp.startTime : -1,
			dcl: nav.domContentLoadedEventEnd, ttfb: nav.responseStart,
			scripts: scripts.length, scriptbytes: scripts.reduce((n, r) => n + r.decodedBodySize, 0)};
	})()`, &perf)
	t.Logf("home page first render: %.0f ms after navigation start (first contentful paint %.0f ms, DOMContentLoaded %.0f ms, first byte %.0f ms; %d modules, %.1f KiB of JavaScript)",
		perf.Home, perf.FCP, perf.DCL, perf.TTFB, perf.Scripts, perf.ScriptBytes/1024)
	if perf.Home < 0 {
		t.Error("the home page set no marquee:home-rendered mark")
	}

	// A kids profile looks different and has a simpler header.
	b.click(`nav a.who`)
	b.waitFor("the profile picker", `!!document.querySelector('a[href="/profiles/new"]')`)
	b.click(`a[href="/profiles/new"]`)
	b.waitFor("the new-profile form", `!!document.querySelector("#profile-name")`)
	b.fill("#profile-name", "Pip")
	b.click(`input[value="kids"]`)
	b.click(`main button[type=submit]`)
	b.waitFor("the kids home page", `location.pathname === "/" && document.body.classList.contains("kids") && !!document.querySelector(".kids-home")`)
	var kids struct {
		Bg    string
		Plans bool
		Badge bool
	}
	b.eval(`({bg: getComputedStyle(document.body).backgroundColor, plans: !!document.querySelector('nav a[href="/plans"]'), badge: !!document.querySelector("nav .badge")})`, &kids)
	if kids.Bg == adultBg || kids.Plans || !kids.Badge {
		t.Errorf("kids home: background %s (adult %s), Plans link %v, Kids badge %v; want another background, no Plans link, a badge", kids.Bg, adultBg, kids.Plans, kids.Badge)
	}
	b.screenshot("home-kids")

	// Sign out: the session is gone from the browser.
	b.click(`nav button.linkish`)
	b.waitFor("the sign-in page after signing out", `location.pathname === "/signin" && !!document.querySelector("#password")`)
	var left string
	b.eval(`localStorage.getItem("marquee.refresh") || ""`, &left)
	if left != "" {
		t.Error("after signing out, the refresh token is still in localStorage")
	}

	// Sign in as the demo viewer, whose history has resume positions past
	// the end of the short demo videos: the player clamps them.
	creds := readCredentials(t, d.dataDir)
	b.fill("#email", creds.Demo.Email)
	b.fill("#password", creds.Demo.Password)
	b.click(`main button[type=submit]`)
	b.waitFor("the demo's profile picker", `location.pathname === "/profiles" && document.querySelectorAll("button.profile").length >= 3 && !!document.querySelector('button.profile.kids .badge')`)
	b.screenshot("profile-picker")
	b.click(`button.profile[data-maturity="adult"]`)
	b.waitFor("the demo's home with continue watching", `location.pathname === "/" && !!document.querySelector('section[data-row="continue_watching"] a.card')`)
	b.screenshot("home")
	b.click(`section[data-row="continue_watching"] a.card`)
	b.waitFor("the continued video", `location.pathname.startsWith("/watch/") && document.querySelector("video.video")?.dataset.startAt !== undefined`)
	b.eval(`(() => { const v = document.querySelector("video.video"); return {resume: Number(v.dataset.resume), startat: Number(v.dataset.startAt), duration: v.duration}; })()`, &resumed)
	if resumed.Resume <= resumed.Duration || resumed.StartAt <= 0 || resumed.StartAt >= resumed.Duration {
		t.Errorf("continue watching: resume %v s of a %v s video started at %v; want a resume position past the end, clamped inside the video", resumed.Resume, resumed.Duration, resumed.StartAt)
	}
	b.click(`a.back`)
	b.waitFor("the title's page", `location.pathname.startsWith("/title/")`)

	// On a phone-sized screen the home page fits the width.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/")
	b.waitFor("the home page on a phone", `document.body.dataset.homeRendered === "1"`)
	var overflow bool
	b.eval(`document.documentElement.scrollWidth > window.innerWidth`, &overflow)
	if overflow {
		t.Error("on a 390 px wide screen the home page is wider than the screen")
	}
	b.screenshot("home-phone")
}
