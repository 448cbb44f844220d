package controlplane_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/mesh/policy"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// api calls the admin API of c over a real HTTP server.
type api struct {
	t   *testing.T
	url string
}

func newAPI(t *testing.T, c *cp) *api {
	ts := httptest.NewServer(c.srv.Handler())
	t.Cleanup(ts.Close)
	return &api{t: t, url: ts.URL}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a *api) do(method, path string, body string, header ...string) answer {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// want checks the status of an answer and decodes its JSON body into v.
func (ans answer) want(t *testing.T, status int, v any) {
	t.Helper()
	if ans.status != status {
		t.Fatalf("status = %d, want %d; body %s", ans.status, status, ans.body)
	}
	if v != nil {
		if err := json.Unmarshal(ans.body, v); err != nil {
			t.Fatalf("decode %s: %v", ans.body, err)
		}
	}
}

type apiError struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	} `json:"error"`
}

type versionAnswer struct {
	Version uint64 `json:"version"`
}

func TestAdminAPI(t *testing.T) {
	storagetest.ForEach(t, "controlplane", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		c := startCP(t, db, "127.0.0.1:0")
		a := newAPI(t, c)
		cat := startSidecar(t, c, "catalog", "catalog-1", "v1", "127.0.0.1:7000")
		prof := startSidecar(t, c, "profiles", "profiles-1", "v1", "127.0.0.1:7001")
		<-cat.agent.Synced()
		<-prof.agent.Synced()

		t.Run("instances", func(t *testing.T) {
			var got struct {
				Instances []map[string]any `json:"instances"`
			}
			waitFor(t, "both instances to have acked", func() bool {
				a.do("GET", "/api/v1/mesh/instances", "").want(t, 200, &got)
				return len(got.Instances) == 2 && got.Instances[0]["acked_version"] != float64(0) && got.Instances[1]["acked_version"] != float64(0)
			})
			in := got.Instances[0]
			if in["id"] != "catalog-1" || in["service"] != "catalog" || in["version"] != "v1" || in["address"] != "127.0.0.1:7000" || in["healthy"] != true {
				t.Errorf("first instance = %v, want catalog-1 healthy at 127.0.0.1:7000", in)
			}
			for _, k := range []string{"connected_at", "last_heartbeat", "snapshot_version", "acked_version", "ack_error"} {
				if _, ok := in[k]; !ok {
					t.Errorf("instance has no %q: %v", k, in)
				}
			}
		})

		t.Run("get policy", func(t *testing.T) {
			ans := a.do("GET", "/api/v1/mesh/policy", "")
			ans.want(t, 200, nil)
			if ct := ans.header.Get("Content-Type"); ct != "application/yaml" {
				t.Errorf("Content-Type = %q, want application/yaml", ct)
			}
			if v := ans.header.Get("X-Marquee-Policy-Version"); v != "1" {
				t.Errorf("X-Marquee-Policy-Version = %q, want 1", v)
			}
			p, err := policy.Parse(ans.body)
			if err != nil {
				t.Fatalf("the YAML does not parse: %v\n%s", err, ans.body)
			}
			if !p.Equal(mustPolicy(t, testPolicy)) {
				t.Errorf("policy = %s, want the initial one", ans.body)
			}
			var js struct {
				Version uint64          `json:"version"`
				Policy  json.RawMessage `json:"policy"`
			}
			a.do("GET", "/api/v1/mesh/policy?format=json", "").want(t, 200, &js)
			if js.Version != 1 {
				t.Errorf("json version = %d, want 1", js.Version)
			}
			if p2, err := policy.Parse(js.Policy); err != nil || !p2.Equal(p) {
				t.Errorf("json policy %s = %v, %v; want the YAML one", js.Policy, p2, err)
			}
			a.do("GET", "/api/v1/mesh/policy?format=xml", "").want(t, 400, nil)
		})

		t.Run("put invalid policy changes nothing", func(t *testing.T) {
			bad := `
services:
  catalog:
    allow:
      - from: profiles
        methods: ["*"]
    retries:
      attempts: 50
    timeout: -1s
`
			var e apiError
			a.do("PUT", "/api/v1/mesh/policy", bad).want(t, 400, &e)
			if e.Error.Code != "INVALID_ARGUMENT" || len(e.Error.Details) < 2 {
				t.Errorf("error = %+v, want INVALID_ARGUMENT listing both problems", e.Error)
			}
			for _, want := range []string{"services.catalog.retries.attempts", "services.catalog.timeout"} {
				if !strings.Contains(e.Error.Message, want) {
					t.Errorf("message %q does not name %s", e.Error.Message, want)
				}
			}
			for _, body := range []string{"", "services: [1, 2", `{"services":{"catalog":{"bogus":1}}}`, "\x00\xff"} {
				a.do("PUT", "/api/v1/mesh/policy", body).want(t, 400, &e)
			}
			if _, v := c.srv.Policy(); v != 1 {
				t.Errorf("policy version = %d after invalid puts, want 1", v)
			}
			var h historyAnswer
			a.do("GET", "/api/v1/mesh/policy/history", "").want(t, 200, &h)
			if len(h.Versions) != 1 {
				t.Errorf("history = %+v, want one version", h.Versions)
			}
		})

		t.Run("put policy", func(t *testing.T) {
			doc := testPolicy + `
  recommendations:
    allow:
      - from: gateway
        methods: ["*"]
`
			var v versionAnswer
			a.do("PUT", "/api/v1/mesh/policy", doc, "X-Marquee-Actor", "alice@example.com", "Content-Type", "application/yaml").want(t, 200, &v)
			if v.Version != 2 {
				t.Fatalf("version = %d, want 2", v.Version)
			}
			if p, pv := c.srv.Policy(); pv != 2 || p.Services["recommendations"] == nil {
				t.Errorf("policy in force = %d %v, want 2 with recommendations", pv, p.ServiceNames())
			}
			// JSON is accepted too, and If-Match guards a stale edit.
			js := `{"services":{"catalog":{"allow":[{"from":"profiles","methods":["*"]}]},"profiles":{"allow":[{"from":"gateway","methods":["*"]}]}}}`
			var e apiError
			a.do("PUT", "/api/v1/mesh/policy", js, "If-Match", "1").want(t, 409, &e)
			if e.Error.Code != "CONFLICT" {
				t.Errorf("code = %q, want CONFLICT", e.Error.Code)
			}
			if _, pv := c.srv.Policy(); pv != 2 {
				t.Errorf("version after a conflict = %d, want 2", pv)
			}
			a.do("PUT", "/api/v1/mesh/policy", js, "If-Match", `"2"`, "Content-Type", "application/json").want(t, 200, &v)
			if v.Version != 3 {
				t.Errorf("version = %d, want 3", v.Version)
			}
			a.do("PUT", "/api/v1/mesh/policy", js, "If-Match", "two").want(t, 400, &e)
			a.do("PUT", "/api/v1/mesh/policy", js, "X-Marquee-Actor", strings.Repeat("x", 300)).want(t, 400, &e)
		})

		t.Run("split", func(t *testing.T) {
			var v versionAnswer
			a.do("POST", "/api/v1/mesh/split", `{"service":"catalog","weights":{"v1":90,"v2":10}}`, "X-Marquee-Actor", "console").want(t, 200, &v)
			if v.Version != 4 {
				t.Fatalf("version = %d, want 4", v.Version)
			}
			waitFor(t, "profiles to get the split", func() bool {
				s := prof.rec.last()
				return s.GetPolicyVersion() == 4 && len(destination(s, "catalog").GetSplit()) == 2
			})
			var e apiError
			for _, body := range []string{
				`{"service":"nope","weights":{"v1":1}}`,
				`{"service":"catalog","weights":{"v1":-1}}`,
				`{"service":"catalog","weights":{"V 1":1}}`,
				`{"weights":{"v1":1}}`,
				`{"service":"catalog","weights":{"v1":1},"extra":true}`,
				`{"service":"catalog"} {}`,
				`[]`,
			} {
				a.do("POST", "/api/v1/mesh/split", body).want(t, 400, &e)
				if e.Error.Code != "INVALID_ARGUMENT" || e.Error.Message == "" {
					t.Errorf("POST split %s: error %+v", body, e.Error)
				}
			}
			if _, pv := c.srv.Policy(); pv != 4 {
				t.Errorf("version after refused splits = %d, want 4", pv)
			}
			a.do("POST", "/api/v1/mesh/split", `{"service":"catalog","weights":{"v1":1}}`, "If-Match", "3").want(t, 409, &e)
		})

		t.Run("fault", func(t *testing.T) {
			var v versionAnswer
			a.do("POST", "/api/v1/mesh/fault", `{"service":"catalog","fault":{"abort":{"percent":50,"grpcCode":"UNAVAILABLE"}}}`).want(t, 200, &v)
			if v.Version != 5 {
				t.Fatalf("version = %d, want 5", v.Version)
			}
			waitFor(t, "profiles to get the fault", func() bool {
				f := destination(prof.rec.last(), "catalog").GetFault()
				return f.GetAbort().GetPercent() == 50 && f.GetAbort().GetGrpcCode() == "UNAVAILABLE"
			})
			var e apiError
			for _, body := range []string{
				`{"service":"catalog"}`,
				`{"service":"catalog","fault":{"abort":{"percent":500}}}`,
				`{"service":"catalog","fault":{"explode":true}}`,
				`{"service":"catalog","fault":"abort"}`,
			} {
				a.do("POST", "/api/v1/mesh/fault", body).want(t, 400, &e)
			}
			a.do("POST", "/api/v1/mesh/fault", `{"service":"catalog","fault":null}`).want(t, 200, &v)
			if v.Version != 6 {
				t.Fatalf("version = %d, want 6", v.Version)
			}
			waitFor(t, "the fault to be cleared", func() bool {
				s := prof.rec.last()
				return s.GetPolicyVersion() == 6 && destination(s, "catalog").GetFault() == nil
			})
		})

		t.Run("history", func(t *testing.T) {
			var h historyAnswer
			a.do("GET", "/api/v1/mesh/policy/history", "").want(t, 200, &h)
			if len(h.Versions) != 6 {
				t.Fatalf("history has %d versions, want 6: %+v", len(h.Versions), h.Versions)
			}
			for i, want := range []struct {
				v      uint64
				author string
			}{{6, "admin"}, {5, "admin"}, {4, "console"}, {3, "admin"}, {2, "alice@example.com"}, {1, "initial"}} {
				got := h.Versions[i]
				if got.Version != want.v || got.Author != want.author || time.Since(got.CreatedAt) > time.Hour {
					t.Errorf("history[%d] = %+v, want version %d by %s, recent", i, got, want.v, want.author)
				}
			}
		})

		t.Run("istio", func(t *testing.T) {
			ans := a.do("GET", "/api/v1/mesh/istio?namespace=shop", "")
			ans.want(t, 200, nil)
			if ct := ans.header.Get("Content-Type"); ct != "application/yaml" {
				t.Errorf("Content-Type = %q, want application/yaml", ct)
			}
			a.do("GET", "/api/v1/mesh/istio", "").want(t, 200, nil)
			var e apiError
			a.do("GET", "/api/v1/mesh/istio?namespace=Bad_NS", "").want(t, 400, &e)
		})

		t.Run("routing errors", func(t *testing.T) {
			var e apiError
			a.do("GET", "/api/v1/mesh/nope", "").want(t, 404, &e)
			if e.Error.Code != "NOT_FOUND" {
				t.Errorf("code = %q, want NOT_FOUND", e.Error.Code)
			}
			ans := a.do("DELETE", "/api/v1/mesh/policy", "")
			ans.want(t, 405, &e)
			if allow := ans.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "PUT") {
				t.Errorf("Allow = %q, want GET and PUT", allow)
			}
			big := bytes.Repeat([]byte("#"), 1<<20+1)
			a.do("PUT", "/api/v1/mesh/policy", string(big)).want(t, 413, &e)
			if e.Error.Code != "PAYLOAD_TOO_LARGE" {
				t.Errorf("code = %q, want PAYLOAD_TOO_LARGE", e.Error.Code)
			}
		})
	})
}

type historyAnswer struct {
	Versions []struct {
		Version   uint64    `json:"version"`
		CreatedAt time.Time `json:"created_at"`
		Author    string    `json:"author"`
	} `json:"versions"`
}

// FuzzPutPolicy feeds the policy endpoint arbitrary bodies: it must answer
// 200 or a 4xx, never fail or panic, and never install an invalid policy.
func FuzzPutPolicy(f *testing.F) {
	for _, seed := range []string{
		testPolicy,
		`{"services":{}}`,
		`{"services":{"catalog":{"allow":[{"from":"profiles","methods":["*"]}],"split":[{"version":"v1","weight":1}]}}}`,
		"services:\n  catalog:\n    fault:\n      delay: {percent: 10, duration: 100ms}\n",
		"services:\n  catalog:\n    timeout: 5\n",
		"a: &a [*a, *a]",
		"services: !!binary aGVsbG8=",
		"",
		"null",
		"\x00",
	} {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(testPolicy), "1")
	f.Add([]byte(testPolicy), `W/"18446744073709551615"`)
	db := storagetest.OpenSQLite(f, "controlplane", storage.Migrations{})
	c := startCP(f, db, "127.0.0.1:0")
	h := c.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, ifMatch string) {
		req := httptest.NewRequest("PUT", "/api/v1/mesh/policy", bytes.NewReader(body))
		if ifMatch != "" && !strings.ContainsAny(ifMatch, "\r\n\x00") {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == 200:
		case rec.Code >= 400 && rec.Code < 500:
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("status %d with body %q, want an error object", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		p, _ := c.srv.Policy()
		if err := p.Validate(); err != nil {
			t.Fatalf("policy in force is invalid after %q: %v", body, err)
		}
	})
}

// FuzzEdits feeds the split and fault endpoints arbitrary bodies, with the
// same rules as FuzzPutPolicy.
func FuzzEdits(f *testing.F) {
	for _, seed := range []string{
		`{"service":"catalog","weights":{"v1":90,"v2":10}}`,
		`{"service":"catalog","weights":{}}`,
		`{"service":"catalog","weights":null}`,
		`{"service":"catalog","weights":{"v1":4294967295,"v2":4294967295}}`,
		`{"service":"catalog","fault":{"abort":{"percent":50,"grpcCode":"UNAVAILABLE","httpStatus":503}}}`,
		`{"service":"catalog","fault":{"delay":{"percent":100,"duration":"100ms"}}}`,
		`{"service":"catalog","fault":{"delay":{"percent":100,"duration":5}}}`,
		`{"service":"catalog","fault":null}`,
		`{"service":"nope","fault":{}}`,
		`{"service":"catalog","fault":{}} trailing`,
		`{}`,
	} {
		f.Add([]byte(seed), strings.Contains(seed, "fault"))
	}
	db := storagetest.OpenSQLite(f, "controlplane", storage.Migrations{})
	c := startCP(f, db, "127.0.0.1:0")
	h := c.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, fault bool) {
		path := "/api/v1/mesh/split"
		if fault {
			path = "/api/v1/mesh/fault"
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == 200:
		case rec.Code >= 400 && rec.Code < 500:
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("status %d with body %q, want an error object", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
		p, _ := c.srv.Policy()
		if err := p.Validate(); err != nil {
			t.Fatalf("policy in force is invalid after %q: %v", body, err)
		}
	})
}
