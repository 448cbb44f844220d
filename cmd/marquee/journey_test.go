package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// client calls the gateway as a user does: JSON bodies, a bearer token.
type client struct {
	t     *testing.T
	base  string
	token string
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (c *client) do(method, path string, body any, headers ...string) reply {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	r.raw, _ = io.ReadAll(resp.Body)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(r.raw, &r.body)
	}
	return r
}

// must calls and fails the test unless the status is want.
func (c *client) must(want int, method, path string, body any, headers ...string) map[string]any {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.status != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, r.status, truncate(r.raw), want)
	}
	return r.body
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func list(m map[string]any, k string) []map[string]any {
	raw, _ := m[k].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, x := range raw {
		if o, ok := x.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func errorCode(r reply) string {
	e, _ := r.body["error"].(map[string]any)
	return str(e, "code")
}

func TestUserJourneys(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system; skipped with -short")
	}
	d := startDev(t)
	anon := &client{t: t, base: d.base}

	t.Run("sign up, log in, refresh, reuse, log out", func(t *testing.T) {
		c := &client{t: t, base: d.base}
		email := fmt.Sprintf("new-%d@example.com", time.Now().UnixNano())
		signup := c.must(201, "POST", "/api/v1/auth/signup", map[string]any{"email": email, "password": "a long enough secret", "name": "New"})
		if str(signup, "account_id") == "" || str(signup, "access_token") == "" || str(signup, "refresh_token") == "" {
			t.Fatalf("signup = %v, want account_id, access_token, refresh_token", signup)
		}
		if r := c.do("POST", "/api/v1/auth/signup", map[string]any{"email": email, "password": "short", "name": "x"}); r.status != 400 {
			t.Errorf("signup with a short password = %d, want 400", r.status)
		}
		login := c.must(200, "POST", "/api/v1/auth/login", map[string]any{"email": email, "password": "a long enough secret"})
		first := str(login, "refresh_token")
		refreshed := c.must(200, "POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": first})
		second := str(refreshed, "refresh_token")
		if second == "" || second == first {
			t.Fatalf("refresh gave %q, want a new refresh token", second)
		}
		if r := c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": first}); r.status != 401 {
			t.Errorf("refresh with the spent token = %d, want 401", r.status)
		}
		// Reuse revoked the family: the newest token fails too.
		if r := c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": second}); r.status != 401 {
			t.Errorf("refresh with the family's newest token after reuse = %d, want 401", r.status)
		}
		// The access token of the revoked family stops working too, as soon
		// as the gateway hears of the revocation over the event bus.
		c.token = str(refreshed, "access_token")
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r := c.do("GET", "/api/v1/profiles", nil)
			if r.status == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("access token of a revoked family = %d 5s after the revocation, want 401", r.status)
				break
			}
		}
		again := c.must(200, "POST", "/api/v1/auth/login", map[string]any{"email": email, "password": "a long enough secret"})
		c.token = str(again, "access_token")
		c.must(200, "GET", "/api/v1/profiles", nil)
		c.must(200, "POST", "/api/v1/auth/logout", map[string]any{"refresh_token": str(again, "refresh_token")})
		if r := c.do("POST", "/api/v1/auth/refresh", map[string]any{"refresh_token": str(again, "refresh_token")}); r.status != 401 {
			t.Errorf("refresh after logout = %d, want 401", r.status)
		}
		if r := anon.do("GET", "/api/v1/profiles", nil); r.status != 401 || errorCode(r) == "" {
			t.Errorf("GET /api/v1/profiles without a token = %d %s, want 401 in the error shape", r.status, r.raw)
		}
	})

	creds := readCredentials(t, d.dataDir)
	viewer := login(t, d.base, creds.Demo.Email, creds.Demo.Password)

	t.Run("watch", func(t *testing.T) {
		c := viewer
		profiles := list(c.must(200, "GET", "/api/v1/profiles", nil), "profiles")
		var adult, kids string
		for _, p := range profiles {
			switch str(p, "maturity_level") {
			case "adult":
				adult = str(p, "id")
			case "kids":
				kids = str(p, "id")
			}
		}
		if adult == "" || kids == "" {
			t.Fatalf("demo profiles = %v, want an adult and a kids profile", profiles)
		}
		home := c.must(200, "GET", "/api/v1/home?profile_id="+adult, nil)
		if rows := list(home, "rows"); len(rows) < 3 {
			t.Errorf("home has %d rows, want at least 3: %v", len(rows), home)
		}
		found := list(c.must(200, "GET", "/api/v1/titles?q=garden&profile_id="+adult, nil), "titles")
		if len(found) == 0 {
			t.Fatal("search for garden found nothing")
		}
		// A kids profile never sees an adult title in browse.
		for page, token := 0, ""; page < 10; page++ {
			b := c.must(200, "GET", "/api/v1/titles?page_size=100&profile_id="+kids+"&page_token="+token, nil)
			for _, ti := range list(b, "titles") {
				switch str(ti, "maturity_rating") {
				case "G", "PG", "TV-Y", "TV-Y7", "TV-G":
				default:
					t.Errorf("kids profile sees %s rated %s", str(ti, "id"), str(ti, "maturity_rating"))
				}
			}
			if token = str(b, "next_page_token"); token == "" {
				break
			}
		}
		// Find a title the adult profile can play and the kids one cannot.
		var title string
		for page, token := 0, ""; title == "" && page < 10; page++ {
			b := c.must(200, "GET", "/api/v1/titles?page_size=100&kind=movie&page_token="+token, nil)
			for _, ti := range list(b, "titles") {
				if str(ti, "maturity_rating") == "R" && ti["available"] == true {
					title = str(ti, "id")
					break
				}
			}
			token = str(b, "next_page_token")
		}
		if title == "" {
			t.Fatal("no available R-rated movie in the demo catalog")
		}
		c.must(200, "PUT", "/api/v1/profiles/"+adult+"/my-list/"+title, nil)
		if r := c.do("POST", "/api/v1/playback/sessions", map[string]any{"profile_id": kids, "title_id": title}); r.status != 403 || errorCode(r) != "MATURITY_RESTRICTED" {
			t.Errorf("kids profile starting an R title = %d %s, want 403 MATURITY_RESTRICTED", r.status, r.raw)
		}
		s := c.must(201, "POST", "/api/v1/playback/sessions", map[string]any{"profile_id": adult, "title_id": title})
		stream := str(s, "stream_url")
		r := c.do("GET", stream, nil, "Range", "bytes=0-1023")
		if r.status != 206 || len(r.raw) != 1024 || r.header.Get("ETag") == "" {
			t.Errorf("GET stream with Range = %d, %d bytes, ETag %q; want 206 with 1024 bytes and an ETag", r.status, len(r.raw), r.header.Get("ETag"))
		}
		if tampered := c.do("GET", strings.Replace(stream, "sig=", "sig=A", 1), nil); tampered.status != 403 {
			t.Errorf("GET stream with a tampered signature = %d, want 403", tampered.status)
		}
		c.must(200, "POST", "/api/v1/playback/sessions/"+str(s, "session_id")+"/progress", map[string]any{"position_seconds": 120})
		c.must(200, "DELETE", "/api/v1/playback/sessions/"+str(s, "session_id"), nil)
		cw := list(c.must(200, "GET", "/api/v1/playback/continue-watching?profile_id="+adult, nil), "items")
		inCW := false
		for _, it := range cw {
			inCW = inCW || str(it, "title_id") == title
		}
		if !inCW {
			t.Errorf("continue watching = %v, want %s in it", cw, title)
		}
		again := c.must(201, "POST", "/api/v1/playback/sessions", map[string]any{"profile_id": adult, "title_id": title})
		if pos, _ := again["resume_position_seconds"].(float64); pos != 120 {
			t.Errorf("resume_position_seconds = %v, want 120", again["resume_position_seconds"])
		}
		c.must(200, "DELETE", "/api/v1/playback/sessions/"+str(again, "session_id"), nil)

		// A second account cannot read the first's profiles.
		other := signUp(t, d.base)
		if r := other.do("GET", "/api/v1/profiles/"+adult, nil); r.status != 404 {
			t.Errorf("another account reading the demo profile = %d, want 404", r.status)
		}
		if r := other.do("GET", "/api/v1/profiles/"+adult+"/my-list", nil); r.status != 404 {
			t.Errorf("another account reading the demo My List = %d, want 404", r.status)
		}
	})

	t.Run("pay", func(t *testing.T) {
		card := func(number string) map[string]any {
			return map[string]any{"card_number": number, "exp_month": 12, "exp_year": time.Now().Year() + 2, "cvc": "123"}
		}
		order := func(c *client, body map[string]any, key string) string {
			b := c.must(202, "POST", "/api/v1/orders", body, "Idempotency-Key", key)
			if str(b, "order_id") == "" {
				t.Fatalf("POST /api/v1/orders = %v, want an order_id", b)
			}
			return str(b, "order_id")
		}
		final := func(c *client, id string) map[string]any {
			deadline := time.Now().Add(30 * time.Second)
			for {
				o := c.must(200, "GET", "/api/v1/orders/"+id, nil)
				if str(o, "status") != "PENDING" {
					return o
				}
				if time.Now().After(deadline) {
					t.Fatalf("order %s still PENDING after 30s", id)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		buyer := signUp(t, d.base)
		if r := buyer.do("POST", "/api/v1/playback/sessions", map[string]any{"profile_id": "x", "title_id": "t-0001"}); r.status == 201 {
			t.Fatal("a new account started playback without a plan")
		}
		key := fmt.Sprintf("k-%d", time.Now().UnixNano())
		id := order(buyer, map[string]any{"plan_id": "basic", "payment": card("4242424242424242")}, key)
		if again := order(buyer, map[string]any{"plan_id": "basic", "payment": card("4242424242424242")}, key); again != id {
			t.Errorf("same Idempotency-Key gave order %s, want %s", again, id)
		}
		if o := final(buyer, id); str(o, "status") != "COMPLETED" {
			t.Fatalf("order with 4242 = %v, want COMPLETED", o)
		}
		if ent := buyer.must(200, "GET", "/api/v1/entitlement", nil); !strings.Contains(fmt.Sprint(ent), "basic") {
			t.Errorf("entitlement after subscribing = %v, want the basic plan", ent)
		}
		invoices := list(buyer.must(200, "GET", "/api/v1/invoices", nil), "invoices")
		if len(invoices) != 1 {
			t.Errorf("invoices after one paid order = %d, want 1 (one charge for two requests with one key)", len(invoices))
		}

		declined := signUp(t, d.base)
		id = order(declined, map[string]any{"plan_id": "standard", "payment": card("4000000000000002")}, "decline-1")
		if o := final(declined, id); str(o, "status") != "REJECTED" || str(o, "reason") == "" {
			t.Errorf("order with 4000…0002 = %v, want REJECTED with a reason", o)
		}
		if inv := list(declined.must(200, "GET", "/api/v1/invoices", nil), "invoices"); len(inv) != 0 {
			t.Errorf("invoices after a declined card = %v, want none", inv)
		}

		renter := signUp(t, d.base)
		id = order(renter, map[string]any{"title_id": "t-0007", "payment": card("4242424242424242")}, "rent-withdrawn")
		o := final(renter, id)
		if str(o, "status") != "FAILED" || str(o, "reason") == "" {
			t.Errorf("rental of the withdrawn title = %v, want FAILED with a reason", o)
		}
		inv := list(renter.must(200, "GET", "/api/v1/invoices", nil), "invoices")
		if len(inv) != 1 || str(inv[0], "status") != "refunded" {
			t.Errorf("invoices after the withdrawn rental = %v, want one refunded invoice", inv)
		}

		// The operator sees the compensated saga with its refund.
		saga := func(args ...string) string {
			out, err := exec.Command(binary, append([]string{"saga"}, append(args, "--control-plane", d.ops, "--data", d.dataDir)...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("marquee saga %v: %v\n%s", args, err, out)
			}
			return string(out)
		}
		if out := saga("list", "--state", "compensated"); !strings.Contains(out, id) {
			t.Errorf("marquee saga list --state compensated does not show order %s:\n%s", id, out)
		}
		if out := saga("show", str(o, "saga_id")); !strings.Contains(out, "refund") || !strings.Contains(out, "compensated") {
			t.Errorf("marquee saga show does not show the refund of a compensated saga:\n%s", out)
		}
	})

	t.Run("home degrades without recommendations", func(t *testing.T) {
		profiles := list(viewer.must(200, "GET", "/api/v1/profiles", nil), "profiles")
		pid := str(profiles[0], "id")
		pids := pidsOf(d.dataDir, "serve recommendations")
		if len(pids) == 0 {
			t.Fatal("recommendations is not running")
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		sawDegraded := false
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			r := viewer.do("GET", "/api/v1/home?profile_id="+pid, nil)
			if r.status != 200 {
				t.Fatalf("home with recommendations down = %d %s, want 200", r.status, r.raw)
			}
			deg := fmt.Sprint(r.body["degraded"])
			if strings.Contains(deg, "recommended") {
				sawDegraded = true
			} else if sawDegraded {
				return // recovered by itself after the restart
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !sawDegraded {
			t.Error("home never reported degraded while recommendations was down")
		} else {
			t.Error("home did not recover within 20s after recommendations was restarted")
		}
	})
}

func readCredentials(t *testing.T, dataDir string) struct {
	Demo, Admin struct{ Email, Password string }
} {
	t.Helper()
	var c struct {
		Demo, Admin struct{ Email, Password string }
	}
	raw, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func login(t *testing.T, base, email, password string) *client {
	t.Helper()
	c := &client{t: t, base: base}
	b := c.must(200, "POST", "/api/v1/auth/login", map[string]any{"email": email, "password": password})
	c.token = str(b, "access_token")
	return c
}

func signUp(t *testing.T, base string) *client {
	t.Helper()
	c := &client{t: t, base: base}
	b := c.must(201, "POST", "/api/v1/auth/signup", map[string]any{
		"email": fmt.Sprintf("u%d@example.com", time.Now().UnixNano()), "password": "a long enough secret", "name": "User"})
	c.token = str(b, "access_token")
	return c
}
