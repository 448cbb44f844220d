package policy

import (
	"math"
	"strings"
	"testing"
)

// TestValidateRules checks every rule: a policy breaking it is refused
// with an error naming the path and the problem.
func TestValidateRules(t *testing.T) {
	tests := []struct {
		name string
		doc  string // the body of service "svc" unless it starts with "services:"
		want string
	}{
		// Names.
		{"service name", "services:\n  Catalog: {}\n", `services.Catalog: service name must match ^[a-z][a-z0-9-]{0,62}$`},
		{"service name digit", "services:\n  9lives: {}\n", `services.9lives: service name must match`},
		{"service name too long", "services:\n  " + strings.Repeat("a", 64) + ": {}\n", `: service name must match`},
		{"from missing", `allow: [{methods: ["*"]}]`, `services.svc.allow[0].from: is required`},
		{"from invalid", `allow: [{from: Gateway, methods: ["*"]}]`, `services.svc.allow[0].from: "Gateway" is not a service name`},
		{"from duplicate", `allow: [{from: gateway, methods: ["/a"]}, {from: gateway, methods: ["/b"]}]`, `services.svc.allow[1].from: gateway is already allowed in allow[0]`},
		// Methods.
		{"no methods", `allow: [{from: gateway}]`, `services.svc.allow[0].methods: must list at least one method ("*" for all)`},
		{"empty methods", `allow: [{from: gateway, methods: []}]`, `services.svc.allow[0].methods: must list at least one method`},
		{"empty method", `allow: [{from: gateway, methods: [""]}]`, `services.svc.allow[0].methods[0]: must not be empty`},
		{"relative method", `allow: [{from: gateway, methods: ["marquee.catalog.v1.CatalogService/GetTitle"]}]`, `services.svc.allow[0].methods[0]: "marquee.catalog.v1.CatalogService/GetTitle" must be "*" or a path starting with "/"`},
		{"star inside", `allow: [{from: gateway, methods: ["/a/*/b"]}]`, `services.svc.allow[0].methods[0]: "/a/*/b" may only have "*" at the end (a prefix match)`},
		{"prefix star alone", `allow: [{from: gateway, methods: ["*a"]}]`, `services.svc.allow[0].methods[0]: "*a" must be "*" or a path`},
		{"space in method", `allow: [{from: gateway, methods: ["/a b"]}]`, `services.svc.allow[0].methods[0]: "/a b" must be a request path without spaces`},
		{"query in method", `allow: [{from: gateway, methods: ["/a?b=c"]}]`, `must be a request path without spaces, control characters, query or fragment`},
		{"long method", `allow: [{from: gateway, methods: ["/` + strings.Repeat("a", 1024) + `"]}]`, `services.svc.allow[0].methods[0]: must be at most 1024 bytes`},
		// Timeout.
		{"negative timeout", `timeout: -1s`, `services.svc.timeout: must not be negative`},
		{"long timeout", `timeout: 5m1s`, `services.svc.timeout: must be at most 5m0s`},
		// Retries.
		{"negative attempts", `retries: {attempts: -1}`, `services.svc.retries.attempts: must be at least 0`},
		{"many attempts", `retries: {attempts: 6, retryOn: [reset]}`, `services.svc.retries.attempts: must be at most 5`},
		{"per try over timeout", `{timeout: 1s, retries: {attempts: 1, retryOn: [reset], perTryTimeout: 2s}}`, `services.svc.retries.perTryTimeout: 2s is longer than the service timeout 1s`},
		{"per try negative", `retries: {perTryTimeout: -2s}`, `services.svc.retries.perTryTimeout: must not be negative`},
		{"per try long", `retries: {perTryTimeout: 6m}`, `services.svc.retries.perTryTimeout: must be at most 5m0s`},
		{"unknown retryOn", `retries: {attempts: 1, retryOn: [reset, 503]}`, `services.svc.retries.retryOn[1]: the number 503 where a string belongs`},
		{"unknown retryOn word", `retries: {attempts: 1, retryOn: [connect-failure]}`, `services.svc.retries.retryOn[0]: unknown failure "connect-failure" (want one of unavailable, reset, deadline-exceeded, resource-exhausted, 5xx)`},
		{"repeated retryOn", `retries: {attempts: 1, retryOn: [reset, reset]}`, `services.svc.retries.retryOn[1]: reset is listed twice`},
		{"attempts without retryOn", `retries: {attempts: 1}`, `services.svc.retries.retryOn: must name the failures to retry when attempts > 0`},
		{"budget over 100", `retries: {budgetPercent: 100.5}`, `services.svc.retries.budgetPercent: must be a percentage between 0 and 100`},
		{"budget negative", `retries: {budgetPercent: -1}`, `services.svc.retries.budgetPercent: must be a percentage between 0 and 100`},
		{"min concurrent negative", `retries: {minRetriesConcurrent: -1}`, `services.svc.retries.minRetriesConcurrent: must be at least 0`},
		{"min concurrent huge", `retries: {minRetriesConcurrent: 1001}`, `services.svc.retries.minRetriesConcurrent: must be at most 1000`},
		// Outlier.
		{"consecutive errors", `outlier: {consecutiveErrors: 101}`, `services.svc.outlier.consecutiveErrors: must be at most 100`},
		{"consecutive errors negative", `outlier: {consecutiveErrors: -1}`, `services.svc.outlier.consecutiveErrors: must be at least 0`},
		{"max ejection", `outlier: {maxEjectionPercent: 101}`, `services.svc.outlier.maxEjectionPercent: must be at most 100`},
		{"base ejection", `outlier: {baseEjection: 11m}`, `services.svc.outlier.baseEjection: must be at most 10m0s`},
		{"base ejection negative", `outlier: {baseEjection: -1s}`, `services.svc.outlier.baseEjection: must not be negative`},
		// Split.
		{"split sums to zero", `split: [{version: v1, weight: 0}]`, `services.svc.split: weights must add up to more than 0`},
		{"split duplicate", `split: [{version: v1, weight: 1}, {version: v1, weight: 1}]`, `services.svc.split[1].version: v1 is already weighted in split[0]`},
		{"split version missing", `split: [{weight: 1}]`, `services.svc.split[0].version: is required`},
		{"split version name", `split: [{version: V1, weight: 1}]`, `services.svc.split[0].version: "V1" is not a version name`},
		{"split version bare", `split: [{version: v, weight: 1}]`, `services.svc.split[0].version: "v" is not a version name`},
		{"split weight negative", `split: [{version: v1, weight: -1}, {version: v2, weight: 1}]`, `services.svc.split[0].weight: must be at least 0`},
		{"split weight huge", `split: [{version: v1, weight: 1000001}]`, `services.svc.split[0].weight: must be at most 1000000`},
		// Routes.
		{"route without headers", `routes: [{version: v2}]`, `services.svc.routes[0].headers: must match at least one header`},
		{"route header upper case", `routes: [{headers: {X-Beta: "1"}, version: v2}]`, `services.svc.routes[0].headers.X-Beta: "X-Beta" is not a lower-case header name`},
		{"route pseudo header", `routes: [{headers: {":authority": a}, version: v2}]`, `is not a lower-case header name`},
		{"route empty value", `routes: [{headers: {x-beta: ""}, version: v2}]`, `services.svc.routes[0].headers.x-beta: value must not be empty`},
		{"route control value", `routes: [{headers: {x-beta: "a\nb"}, version: v2}]`, `services.svc.routes[0].headers.x-beta: value must be printable ASCII`},
		{"route without version", `routes: [{headers: {x-beta: "1"}}]`, `services.svc.routes[1-1].version: is required`},
		{"route bad version", `routes: [{headers: {x-beta: "1"}, version: "2"}]`, `services.svc.routes[0].version: "2" is not a version name`},
		// Faults.
		{"abort percent", `fault: {abort: {percent: 101}}`, `services.svc.fault.abort.percent: must be a percentage between 0 and 100`},
		{"abort grpc code", `fault: {abort: {percent: 1, grpcCode: Unavailable}}`, `services.svc.fault.abort.grpcCode: "Unavailable" is not a gRPC error code name`},
		{"abort grpc OK", `fault: {abort: {percent: 1, grpcCode: OK}}`, `services.svc.fault.abort.grpcCode: "OK" is not a gRPC error code name`},
		{"abort grpc number", `fault: {abort: {percent: 1, grpcCode: "14"}}`, `services.svc.fault.abort.grpcCode: "14" is not a gRPC error code name`},
		{"abort http low", `fault: {abort: {percent: 1, httpStatus: 302}}`, `services.svc.fault.abort.httpStatus: must be at least 400`},
		{"abort http high", `fault: {abort: {percent: 1, httpStatus: 600}}`, `services.svc.fault.abort.httpStatus: must be at most 599`},
		{"delay percent", `fault: {delay: {percent: -0.5, duration: 1s}}`, `services.svc.fault.delay.percent: must be a percentage between 0 and 100`},
		{"delay long", `fault: {delay: {percent: 1, duration: 61s}}`, `services.svc.fault.delay.duration: must be at most 1m0s`},
		{"delay negative", `fault: {delay: {percent: 1, duration: -1s}}`, `services.svc.fault.delay.duration: must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if !strings.HasPrefix(doc, "services:") {
				if !strings.HasPrefix(doc, "{") {
					doc = "{" + doc + "}"
				}
				doc = "services:\n  svc: " + doc + "\n"
			}
			want := strings.ReplaceAll(tt.want, "[1-1]", "[0]")
			p, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error containing %q", doc, p.Services, want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Parse(%q) = %v\nwant an error containing %q", doc, err, want)
			}
		})
	}
}

func TestValidateAcceptsTheLimits(t *testing.T) {
	doc := `services:
  a-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-abcdefghijkl:
    allow:
      - from: caller-without-an-entry
        methods: ["*", "/x", "/x*", "/", "/*"]
    timeout: 5m
    retries: {attempts: 5, perTryTimeout: 5m, retryOn: [unavailable, reset, deadline-exceeded, resource-exhausted, 5xx], budgetPercent: 100, minRetriesConcurrent: 1000}
    outlier: {consecutiveErrors: 100, baseEjection: 10m, maxEjectionPercent: 100}
    split: [{version: v1.2.3-rc.1, weight: 1000000}, {version: v0, weight: 0}]
    routes: [{headers: {"x-!#$%&'*+.^_|~": "any printable value ~!@"}, version: v9}]
    fault:
      abort: {percent: 100, grpcCode: UNAUTHENTICATED, httpStatus: 599}
      delay: {percent: 0, duration: 1m}
  b:
    fault: {abort: {percent: 0, httpStatus: 400}, delay: {percent: 100, duration: 0s}}
    retries: {attempts: 0}
`
	if _, err := Parse([]byte(doc)); err != nil {
		t.Errorf("Parse(limits) = %v", err)
	}
}

func TestValidateJoinsEveryProblem(t *testing.T) {
	p := &Policy{Services: map[string]*Service{
		"b": {Timeout: -1, Retries: &Retries{Attempts: 9, RetryOn: []string{"reset"}}},
		"a": {Fault: &Fault{Abort: &Abort{Percent: math.NaN()}}},
		"c": nil,
	}}
	err := p.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	want := "services.a.fault.abort.percent: must be a percentage between 0 and 100\n" +
		"services.b.timeout: must not be negative\n" +
		"services.b.retries.attempts: must be at most 5"
	if err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
	if err := (*Policy)(nil).Validate(); err == nil {
		t.Error("nil.Validate() = nil")
	}
	if err := (&Policy{}).Validate(); err != nil {
		t.Errorf("empty policy: Validate() = %v", err)
	}
}
