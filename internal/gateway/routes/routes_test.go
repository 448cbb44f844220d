package routes

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

var testEnv = Env{
	GRPC: map[string][]Binding{
		"catalog": {
			{Method: "GET", Path: "/api/v1/titles"},
			{Method: "GET", Path: "/api/v1/titles/{id}"},
			{Method: "GET", Path: "/api/v1/titles/{id}/artwork"},
			{Method: "GET", Path: "/api/v1/genres"},
		},
		"profiles": {
			{Method: "GET", Path: "/api/v1/profiles"},
			{Method: "POST", Path: "/api/v1/profiles"},
			{Method: "PATCH", Path: "/api/v1/profiles/{id}"},
			{Method: "DELETE", Path: "/api/v1/profiles/{id}"},
			{Method: "GET", Path: "/api/v1/profiles/{profile_id}/my-list"},
		},
		"orders": {
			{Method: "GET", Path: "/api/v1/admin/sagas"},
			{Method: "GET", Path: "/api/v1/admin/sagas/{id}"},
		},
	},
	Roles: []string{"viewer", "admin"},
}

const testDoc = `{
  "rate_classes": {"default": {"rate": 60, "per": "1m", "burst": 10}, "login": {"rate": 5, "per": "1m", "burst": 5}},
  "http_upstreams": {"media": {"addresses": ["127.0.0.1:9000"]}},
  "routes": [
    {"method": "GET", "path": "/api/v1/titles", "upstream": "catalog", "auth": "optional"},
    {"method": "GET", "path": "/api/v1/titles/{id}", "upstream": "catalog", "auth": "optional", "timeout": "2s"},
    {"method": "GET", "path": "/api/v1/titles/{id}/artwork", "upstream": "catalog", "auth": "none"},
    {"methods": ["GET", "POST"], "path": "/api/v1/profiles", "upstream": "profiles"},
    {"methods": ["PATCH", "DELETE"], "path": "/api/v1/profiles/{id}", "upstream": "profiles",
     "rate_limits": [{"class": "login", "by": "client"}, {"class": "default", "by": "body:email"}]},
    {"prefix": "/api/v1/admin/", "upstream": "orders", "role": "admin"},
    {"methods": ["GET", "HEAD"], "prefix": "/media/", "kind": "http", "upstream": "media", "auth": "none"},
    {"methods": ["GET"], "prefix": "/media/private/", "kind": "http", "upstream": "media"},
    {"method": "GET", "path": "/api/v1/home", "kind": "home"}
  ]
}`

func TestMatch(t *testing.T) {
	tbl, err := Parse([]byte(testDoc), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		wantName     string // "" means no route
		wantStatus   int
		wantAllow    []string
	}{
		{"GET", "/api/v1/titles", "/api/v1/titles", 0, nil},
		{"GET", "/api/v1/titles/t1", "/api/v1/titles/{id}", 0, nil},
		{"GET", "/api/v1/titles/t1/artwork", "/api/v1/titles/{id}/artwork", 0, nil},
		{"POST", "/api/v1/titles", "", 405, []string{"GET"}},
		{"DELETE", "/api/v1/profiles/p1", "/api/v1/profiles/{id}", 0, nil},
		{"PUT", "/api/v1/profiles/p1", "", 405, []string{"DELETE", "PATCH"}},
		{"GET", "/api/v1/admin/sagas", "/api/v1/admin/*", 0, nil},
		{"POST", "/api/v1/admin/sagas/s1/retry", "/api/v1/admin/*", 0, nil},
		{"GET", "/api/v1/admin", "", 404, nil},
		{"GET", "/media/demo-1/video.mp4", "/media/*", 0, nil},
		{"HEAD", "/media/", "/media/*", 0, nil},
		{"GET", "/media/private/x", "/media/private/*", 0, nil},
		{"HEAD", "/media/private/x", "/media/*", 0, nil}, // the longest prefix taking the method
		{"POST", "/media/x", "", 405, []string{"GET", "HEAD"}},
		{"GET", "/media", "", 404, nil},
		{"GET", "/api/v1/home", "/api/v1/home", 0, nil},
		{"GET", "/api/v1/titles/", "", 404, nil},
		{"GET", "/api/v1//titles", "", 404, nil},
		{"GET", "/api/v1/titles/../titles", "", 404, nil},
		{"GET", "/api/v1/titles/./t1", "", 404, nil},
		{"GET", "/media/../api/v1/titles", "", 404, nil},
		{"GET", "/", "", 404, nil},
		{"GET", "", "", 404, nil},
		{"GET", "api/v1/titles", "", 404, nil},
		{"GET", "/API/v1/titles", "", 404, nil},
		{"GET", "/nope", "", 404, nil},
	}
	for _, tt := range tests {
		r, status, allow := tbl.Match(tt.method, tt.path)
		name := ""
		if r != nil {
			name = r.Name
		}
		if name != tt.wantName || status != tt.wantStatus || !slices.Equal(allow, tt.wantAllow) {
			t.Errorf("Match(%s %q) = %q, %d, %v; want %q, %d, %v", tt.method, tt.path, name, status, allow, tt.wantName, tt.wantStatus, tt.wantAllow)
		}
	}

	r, _, _ := tbl.Match("GET", "/api/v1/titles/x")
	if r.Timeout != 2*time.Second || r.Auth != AuthOptional || len(r.Limits) != 1 || r.Limits[0].Class.Name != "default" {
		t.Errorf("route /api/v1/titles/{id} = %+v, want timeout 2s, optional, the default class", r)
	}
	if r.Limits[0].Class.Interval != time.Second || r.Limits[0].Class.Burst != 10 {
		t.Errorf("default class = %+v, want 1s interval, burst 10", r.Limits[0].Class)
	}
	r, _, _ = tbl.Match("PATCH", "/api/v1/profiles/p")
	if r.Auth != AuthRequired || len(r.Limits) != 2 || r.Limits[0].By != ByClient || r.Limits[1].Field != "email" {
		t.Errorf("route /api/v1/profiles/{id} = %+v, want required, limits by client and by email", r)
	}
	r, _, _ = tbl.Match("GET", "/api/v1/admin/x")
	if r.Role != "admin" || r.Auth != AuthRequired {
		t.Errorf("admin prefix = %+v, want role admin, required", r)
	}
}

func TestLiteralBeatsVariable(t *testing.T) {
	env := Env{GRPC: map[string][]Binding{"svc": {
		{Method: "GET", Path: "/a/{id}"}, {Method: "DELETE", Path: "/a/special"}, {Method: "GET", Path: "/a/{id}/b"}, {Method: "GET", Path: "/a/special/b"},
	}}}
	tbl, err := Parse([]byte(`{"routes":[
		{"method":"GET","path":"/a/{id}","upstream":"svc","name":"var"},
		{"method":"DELETE","path":"/a/special","upstream":"svc","name":"lit"},
		{"method":"GET","path":"/a/{id}/b","upstream":"svc","name":"var-b"},
		{"method":"GET","path":"/a/special/b","upstream":"svc","name":"lit-b"}]}`), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/a/special", "var"}, // the literal does not take GET
		{"DELETE", "/a/special", "lit"},
		{"GET", "/a/x", "var"},
		{"GET", "/a/special/b", "lit-b"},
		{"GET", "/a/x/b", "var-b"},
	} {
		r, status, _ := tbl.Match(tt.method, tt.path)
		if r == nil || r.Name != tt.want {
			t.Errorf("Match(%s %s) = %v, %d; want %s", tt.method, tt.path, r, status, tt.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	wrap := func(routes string) string {
		return `{"rate_classes":{"default":{"rate":1,"per":"1s","burst":1}},"http_upstreams":{"media":{}},"routes":[` + routes + `]}`
	}
	tests := []struct {
		name, doc, wantErr string
	}{
		{"not JSON", `routes:`, "invalid character"},
		{"unknown field", `{"routes":[],"extra":1}`, "unknown field"},
		{"trailing data", `{"routes":[{"method":"GET","path":"/api/v1/titles","upstream":"catalog"}]} {}`, "data after"},
		{"no routes", `{"routes":[]}`, "no routes"},
		{"unknown upstream", wrap(`{"method":"GET","path":"/x","upstream":"nope"}`), "not a gRPC upstream"},
		{"not a binding", wrap(`{"method":"GET","path":"/api/v1/other","upstream":"catalog"}`), "not an HTTP route of catalog"},
		{"wrong method for binding", wrap(`{"method":"POST","path":"/api/v1/titles","upstream":"catalog"}`), "POST /api/v1/titles is not an HTTP route"},
		{"path and prefix", wrap(`{"method":"GET","path":"/api/v1/titles","prefix":"/api/","upstream":"catalog"}`), "not both"},
		{"neither path nor prefix", wrap(`{"method":"GET","upstream":"catalog"}`), "needs a path or a prefix"},
		{"bad auth", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","auth":"maybe"}`), "auth \"maybe\""},
		{"role without required", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","auth":"none","role":"admin"}`), "a role needs auth required"},
		{"unknown role", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","role":"root"}`), "role \"root\""},
		{"unknown class", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","rate_class":"nope"}`), "rate class \"nope\" is not defined"},
		{"bad by", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","rate_limits":[{"class":"default","by":"header:x"}]}`), "want principal, client or body:FIELD"},
		{"bad body field", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","rate_limits":[{"class":"default","by":"body:a b"}]}`), "not a JSON field"},
		{"bad method", wrap(`{"method":"get","path":"/api/v1/titles","upstream":"catalog"}`), "not an upper-case"},
		{"dot segment", wrap(`{"method":"GET","path":"/api/../titles","upstream":"catalog"}`), "segment"},
		{"bad prefix", wrap(`{"prefix":"/media","kind":"http","upstream":"media"}`), "starts and ends with /"},
		{"prefix covers nothing", wrap(`{"prefix":"/nothing/","upstream":"catalog"}`), "covers no route"},
		{"undeclared http upstream", wrap(`{"prefix":"/m/","kind":"http","upstream":"other"}`), "not declared"},
		{"bad kind", wrap(`{"prefix":"/m/","kind":"ftp","upstream":"media"}`), "kind \"ftp\""},
		{"duplicate", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog"},{"method":"GET","path":"/api/v1/titles","upstream":"catalog"}`), "same path and method"},
		{"negative timeout", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","timeout":"-1s"}`), "timeout"},
		{"bad duration", wrap(`{"method":"GET","path":"/api/v1/titles","upstream":"catalog","timeout":5}`), "duration"},
		{"bad class", `{"rate_classes":{"x":{"rate":0,"per":"1s","burst":1}},"routes":[{"method":"GET","path":"/api/v1/titles","upstream":"catalog"}]}`, "rate class x"},
		{"bad address", `{"http_upstreams":{"m":{"addresses":["nope"]}},"routes":[{"prefix":"/m/","kind":"http","upstream":"m"}]}`, "not host:port"},
		{"breaker rate", `{"breakers":{"default":{"error_rate":2}},"routes":[{"method":"GET","path":"/api/v1/titles","upstream":"catalog"}]}`, "error_rate"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc), testEnv)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
	// Every problem is reported at once.
	_, err := Parse([]byte(wrap(`{"method":"GET","path":"/x","upstream":"nope"},{"method":"get","path":"/api/v1/titles","upstream":"catalog"}`)), testEnv)
	if err == nil || !strings.Contains(err.Error(), "route 1") || !strings.Contains(err.Error(), "route 2") {
		t.Errorf("Parse(two bad routes) = %v, want both reported", err)
	}
}

// TestDefault checks the embedded routing document against the bindings
// of the real protos, in package gateway's tests; here, its shape.
func TestDefaultShape(t *testing.T) {
	d, err := Parse(Default, Env{GRPC: map[string][]Binding{}, Roles: testEnv.Roles})
	if err == nil {
		t.Fatalf("Parse(Default) without upstreams = %v, want errors", d)
	}
	if strings.Contains(err.Error(), "invalid character") || strings.Contains(err.Error(), "unknown field") {
		t.Errorf("Parse(Default) = %v, want only missing-upstream errors", err)
	}
}

// FuzzParse feeds arbitrary documents to Parse: it must not panic, and a
// table it accepts must answer Match without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(testDoc), "GET", "/api/v1/titles/x")
	f.Add(Default, "POST", "/api/v1/auth/login")
	f.Add([]byte(`{"routes":[{"prefix":"/","kind":"http","upstream":"media"}],"http_upstreams":{"media":{}}}`), "GET", "/x/y")
	f.Add([]byte(`{"rate_classes":{"a":{"rate":1e308,"per":"1ns","burst":1}}}`), "GET", "/")
	f.Fuzz(func(t *testing.T, doc []byte, method, path string) {
		tbl, err := Parse(doc, testEnv)
		if err != nil {
			return
		}
		r, status, _ := tbl.Match(method, path)
		if (r == nil) == (status == 0) {
			t.Fatalf("Match(%q, %q) = %v, %d: want a route or a status", method, path, r, status)
		}
	})
}

// FuzzMatch matches arbitrary requests against the test table and checks
// the invariants: a route found takes the method, and its pattern or
// prefix agrees with the path.
func FuzzMatch(f *testing.F) {
	tbl, err := Parse([]byte(testDoc), testEnv)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/api/v1/titles", "/api/v1/titles/x/artwork", "/media/a/../b", "/api/v1/admin/", "//", "/a%2Fb"} {
		f.Add("GET", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r, status, allow := tbl.Match(method, path)
		switch {
		case r != nil:
			if !r.Allows(method) {
				t.Fatalf("Match(%q, %q) = %s, which does not take the method", method, path, r.Name)
			}
			if strings.Contains("/"+path+"/", "/../") || strings.Contains("/"+path+"/", "/./") {
				t.Fatalf("Match(%q, %q) = %s for a path with dot segments", method, path, r.Name)
			}
			if r.Prefix != "" && !strings.HasPrefix(path, r.Prefix) {
				t.Fatalf("Match(%q, %q) = prefix %s", method, path, r.Prefix)
			}
			if r.Path != "" && strings.Count(path, "/") != strings.Count(r.Path, "/") {
				t.Fatalf("Match(%q, %q) = pattern %s of another length", method, path, r.Path)
			}
		case status == http.StatusMethodNotAllowed:
			if len(allow) == 0 || slices.Contains(allow, method) {
				t.Fatalf("Match(%q, %q) = 405 allowing %v", method, path, allow)
			}
		case status != http.StatusNotFound:
			t.Fatalf("Match(%q, %q) = status %d", method, path, status)
		}
	})
}
