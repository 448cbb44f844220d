package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// example is the policy format's documented example.
const example = `# Mesh policy: who may call whom, and how traffic to each service behaves.
services:
  recommendations:
    allow:                      # deny by default: callers and the methods they may call
      - from: gateway
        methods: ["/marquee.recommendations.v1.RecommendationsService/*"]
    timeout: 800ms              # whole request, retries included
    retries: {attempts: 2, perTryTimeout: 300ms, retryOn: [unavailable, reset], budgetPercent: 20, minRetriesConcurrent: 3}
    outlier: {consecutiveErrors: 5, baseEjection: 10s, maxEjectionPercent: 50}
    split: [{version: v1, weight: 90}, {version: v2, weight: 10}]
    routes:
      - headers: {x-marquee-version: v2}
        version: v2
    fault: {abort: {percent: 100, grpcCode: UNAVAILABLE, httpStatus: 503}, delay: {percent: 10, duration: 50ms}}
`

func examplePolicy() *Policy {
	return &Policy{Services: map[string]*Service{
		"recommendations": {
			Allow:   []Allow{{From: "gateway", Methods: []string{"/marquee.recommendations.v1.RecommendationsService/*"}}},
			Timeout: Duration(800 * time.Millisecond),
			Retries: &Retries{
				Attempts:             2,
				PerTryTimeout:        Duration(300 * time.Millisecond),
				RetryOn:              []string{"unavailable", "reset"},
				BudgetPercent:        20,
				MinRetriesConcurrent: 3,
			},
			Outlier: &Outlier{ConsecutiveErrors: 5, BaseEjection: Duration(10 * time.Second), MaxEjectionPercent: 50},
			Split:   []Weight{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}},
			Routes:  []Route{{Headers: map[string]string{"x-marquee-version": "v2"}, Version: "v2"}},
			Fault: &Fault{
				Abort: &Abort{Percent: 100, GRPCCode: "UNAVAILABLE", HTTPStatus: 503},
				Delay: &Delay{Percent: 10, Duration: Duration(50 * time.Millisecond)},
			},
		},
	}}
}

func TestParseExample(t *testing.T) {
	got, err := Parse([]byte(example))
	if err != nil {
		t.Fatalf("Parse(example) = %v", err)
	}
	if want := examplePolicy(); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(example) =\n%#v\nwant\n%#v", got.Services["recommendations"], want.Services["recommendations"])
	}
}

func TestParseJSON(t *testing.T) {
	got, err := Parse([]byte(`{"services": {"catalog": {"allow": [{"from": "gateway", "methods": ["*"]}], "timeout": "2s"}}}`))
	if err != nil {
		t.Fatalf("Parse(JSON) = %v", err)
	}
	want := &Policy{Services: map[string]*Service{"catalog": {
		Allow:   []Allow{{From: "gateway", Methods: []string{"*"}}},
		Timeout: Duration(2 * time.Second),
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(JSON) = %#v, want %#v", got, want)
	}
}

func TestParseRefusesWhatIsNotPolicy(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown top-level field", "services: {}\nversion: 2\n", `unknown field "version"`},
		{"unknown service field", "services:\n  catalog:\n    timout: 2s\n", `services.catalog: unknown field "timout" (want one of allow, fault, outlier, retries, routes, split, timeout)`},
		{"unknown nested field", "services:\n  catalog:\n    retries: {attempts: 1, retryOn: [reset], budget: 20}\n", `services.catalog.retries: unknown field "budget"`},
		{"repeated field", "services:\n  catalog:\n    timeout: 1s\n    timeout: 2s\n", `"timeout"`},
		{"unitless duration", "services:\n  catalog:\n    timeout: 5\n", `services.catalog.timeout: the number 5 is not a duration`},
		{"bad duration", "services:\n  catalog:\n    timeout: 5 seconds\n", `services.catalog.timeout: the string "5 seconds" is not a duration`},
		{"wrong type", "services:\n  catalog:\n    allow: gateway\n", `services.catalog.allow: the string "gateway" where a list belongs`},
		{"fraction", "services:\n  catalog:\n    split: [{version: v1, weight: 1.5}]\n", `services.catalog.split[0].weight: 1.5 is not a whole number`},
		{"number as text", "services:\n  catalog:\n    outlier: {consecutiveErrors: \"5\"}\n", `services.catalog.outlier.consecutiveErrors: the string "5" where a whole number belongs`},
		{"list for a string", "services:\n  catalog:\n    allow: [{from: [gateway], methods: [\"*\"]}]\n", `services.catalog.allow[0].from: a list where a string belongs`},
		{"bool for a string", "services:\n  catalog:\n    routes: [{headers: {x-beta: on}, version: v2}]\n", `services.catalog.routes[0].headers.x-beta: true where a string belongs (quote it: "true")`},
		{"number for a string", "services:\n  catalog:\n    routes: [{headers: {x-beta: 2}, version: v2}]\n", `services.catalog.routes[0].headers.x-beta: the number 2 where a string belongs`},
		{"every problem at once", "services:\n  a: {timeout: x, retries: {attempts: z}}\n  b: {nope: 1}\n", "services.a.retries.attempts: the string \"z\" where a whole number belongs\nservices.a.timeout: the string \"x\" is not a duration: want a number with a unit such as \"300ms\" or \"2s\"\nservices.b: unknown field \"nope\""},
		{"not a mapping", "services: [catalog]\n", `services: a list where a mapping (name: value) belongs`},
		{"top level not a mapping", "- catalog\n", `policy: a list where a mapping`},
		{"not YAML", "services: [\n", `policy:`},
		{"invalid", "services:\n  catalog:\n    retries: {attempts: 9, retryOn: [reset]}\n", `services.catalog.retries.attempts: must be at most 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error containing %q", tt.doc, p, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tt.doc, err, tt.want)
			}
		})
	}
}

func TestParseEmptyForms(t *testing.T) {
	// Every way of writing "nothing" parses to the same policy.
	for _, doc := range []string{"", "services:", "services: {}", "{}"} {
		p, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", doc, err)
		}
		if !reflect.DeepEqual(p, &Policy{Services: map[string]*Service{}}) {
			t.Errorf("Parse(%q) = %#v, want an empty policy", doc, p)
		}
	}
	p, err := Parse([]byte("services:\n  catalog:\n  profiles: {allow: [], split: []}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{Services: map[string]*Service{"catalog": {}, "profiles": {}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("bare entries parse to %#v, want %#v", p, want)
	}
}

func richPolicy() *Policy {
	p := examplePolicy()
	p.Services["catalog"] = &Service{
		Allow: []Allow{
			{From: "gateway", Methods: []string{"*"}},
			{From: "orders", Methods: []string{"/marquee.catalog.v1.CatalogService/GetTitle", "/yes", "/on*"}},
		},
		Timeout: Duration(90 * time.Second),
		Retries: &Retries{Attempts: 5, RetryOn: RetryOn, BudgetPercent: 12.5},
		Outlier: &Outlier{ConsecutiveErrors: 1},
		Split:   []Weight{{Version: "v2.1-rc.1", Weight: 1}, {Version: "v1", Weight: 0}},
		Routes: []Route{
			{Headers: map[string]string{"x-a": "true", "x-b": "null"}, Version: "v1"},
			{Headers: map[string]string{"x-c": "~"}, Version: "v2.1-rc.1"},
		},
		Fault: &Fault{Delay: &Delay{Percent: 0.001, Duration: Duration(1500 * time.Microsecond)}},
	}
	p.Services["billing"] = &Service{}
	p.Services["caller-only-is-fine"] = &Service{Fault: &Fault{Abort: &Abort{Percent: 33.3}}}
	return p
}

func TestMarshalRoundTrip(t *testing.T) {
	for name, p := range map[string]*Policy{"default": Default(), "rich": richPolicy(), "empty": {}} {
		t.Run(name, func(t *testing.T) {
			b, err := p.Marshal()
			if err != nil {
				t.Fatalf("Marshal = %v", err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(Marshal()) = %v\n%s", err, b)
			}
			if !got.Equal(p) {
				t.Errorf("Parse(Marshal()) = %#v, want %#v\n%s", got, p, b)
			}
			again, err := got.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(b) {
				t.Errorf("Marshal is not canonical:\n%s\nthen\n%s", b, again)
			}
		})
	}
}

func TestMarshalIsCanonical(t *testing.T) {
	// The same policy written two ways marshals to the same bytes.
	a, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(`{"services":{"recommendations":{
		"fault":{"delay":{"duration":"0.05s","percent":10},"abort":{"httpStatus":503,"grpcCode":"UNAVAILABLE","percent":100}},
		"routes":[{"version":"v2","headers":{"x-marquee-version":"v2"}}],
		"split":[{"weight":90,"version":"v1"},{"weight":10,"version":"v2"}],
		"outlier":{"maxEjectionPercent":50,"baseEjection":"10000ms","consecutiveErrors":5},
		"retries":{"minRetriesConcurrent":3,"budgetPercent":20,"retryOn":["unavailable","reset"],"perTryTimeout":"300ms","attempts":2},
		"timeout":"0.8s",
		"allow":[{"methods":["/marquee.recommendations.v1.RecommendationsService/*"],"from":"gateway"}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ya, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	yb, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if string(ya) != string(yb) {
		t.Errorf("equal policies marshal differently:\n%s\n---\n%s", ya, yb)
	}
	if !strings.Contains(string(ya), "timeout: 800ms") || !strings.Contains(string(ya), "baseEjection: 10s") {
		t.Errorf("durations are not written as duration strings:\n%s", ya)
	}
}

func TestCloneIsDeep(t *testing.T) {
	p := richPolicy()
	c := p.Clone()
	if !reflect.DeepEqual(p, c) {
		t.Fatal("Clone() differs from the original")
	}
	c.Services["catalog"].Allow[1].Methods[0] = "/changed"
	c.Services["catalog"].Retries.RetryOn[0] = "changed"
	c.Services["catalog"].Routes[0].Headers["x-a"] = "changed"
	c.Services["catalog"].Split[0].Weight = 7
	c.Services["catalog"].Fault.Delay.Percent = 50
	c.Services["recommendations"].Fault.Abort.Percent = 1
	c.Services["recommendations"].Outlier.ConsecutiveErrors = 1
	delete(c.Services, "billing")
	if !reflect.DeepEqual(p, richPolicy()) {
		t.Error("changing a clone changed the original")
	}
	if (*Policy)(nil).Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}

func TestEqual(t *testing.T) {
	a := &Policy{Services: map[string]*Service{"catalog": nil}}
	b := &Policy{Services: map[string]*Service{"catalog": {Allow: []Allow{}}}}
	if !a.Equal(b) {
		t.Error("a bare entry and an empty one are not Equal")
	}
	if !(&Policy{}).Equal(nil) {
		t.Error("an empty policy is not Equal to nil")
	}
	c := b.Clone()
	c.Services["catalog"].Timeout = 1
	if b.Equal(c) {
		t.Error("policies with different timeouts are Equal")
	}
}

func TestServiceNames(t *testing.T) {
	got := richPolicy().ServiceNames()
	want := []string{"billing", "caller-only-is-fine", "catalog", "recommendations"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ServiceNames() = %v, want %v", got, want)
	}
}
