package policy

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

type doc = map[string]any

// renderDocs renders p and parses every document back.
func renderDocs(t *testing.T, p *Policy, namespace string) (out []byte, docs []doc) {
	t.Helper()
	out, err := RenderIstio(p, namespace)
	if err != nil {
		t.Fatalf("RenderIstio = %v", err)
	}
	if !bytes.HasPrefix(out, []byte("# ")) || !bytes.Contains(out, []byte("trust domain")) {
		t.Errorf("output does not open with the comment about identities:\n%.300s", out)
	}
	for _, part := range strings.Split(string(out), "\n---\n")[1:] {
		var d doc
		if err := yaml.UnmarshalStrict([]byte(part), &d); err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, part)
		}
		docs = append(docs, d)
	}
	return out, docs
}

// get walks d along keys (strings for mappings, ints for lists).
func get(t *testing.T, d any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := d.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping at %q", keys, k)
			}
			d, ok = m[k]
			if !ok {
				t.Fatalf("%v: no %q in %v", keys, k, m)
			}
		case int:
			l, ok := d.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no [%d] in %v", keys, k, d)
			}
			d = l[k]
		}
	}
	return d
}

func has(d any, key string) bool {
	m, ok := d.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[key]
	return ok
}

func eq(t *testing.T, got, want any, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func findDoc(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	for _, d := range docs {
		if d["kind"] == kind && get(t, d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func TestRenderIstioDefault(t *testing.T) {
	p := Default()
	_, docs := renderDocs(t, p, "marquee")
	if want := 1 + 3*len(p.Services); len(docs) != want {
		t.Fatalf("rendered %d documents, want %d", len(docs), want)
	}

	// Order: the PeerAuthentication, then each service's three, by name.
	pa := docs[0]
	eq(t, pa["apiVersion"], "security.istio.io/v1", "PeerAuthentication apiVersion")
	eq(t, pa["kind"], "PeerAuthentication", "first kind")
	eq(t, get(t, pa, "metadata"), map[string]any{"name": "default", "namespace": "marquee"}, "PeerAuthentication metadata")
	eq(t, get(t, pa, "spec", "mtls", "mode"), "STRICT", "mtls mode")
	for i, name := range p.ServiceNames() {
		for j, kind := range []string{"DestinationRule", "VirtualService", "AuthorizationPolicy"} {
			d := docs[1+3*i+j]
			if d["kind"] != kind || get(t, d, "metadata", "name") != name || get(t, d, "metadata", "namespace") != "marquee" {
				t.Errorf("document %d is %v %v, want %s %s", 1+3*i+j, d["kind"], d["metadata"], kind, name)
			}
		}
	}

	const host = "recommendations.marquee.svc.cluster.local"
	dr := findDoc(t, docs, "DestinationRule", "recommendations")
	eq(t, dr["apiVersion"], "networking.istio.io/v1", "DestinationRule apiVersion")
	eq(t, get(t, dr, "spec", "host"), host, "DestinationRule host")
	eq(t, get(t, dr, "spec", "subsets"), []any{
		map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
		map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
	}, "subsets")
	eq(t, get(t, dr, "spec", "trafficPolicy", "outlierDetection"), map[string]any{
		"consecutiveGatewayErrors": float64(5),
		"consecutive5xxErrors":     float64(0),
		"baseEjectionTime":         "10s",
		"maxEjectionPercent":       float64(50),
	}, "outlierDetection")
	eq(t, get(t, dr, "spec", "trafficPolicy", "retryBudget"), map[string]any{
		"percent": float64(20), "minRetryConcurrency": float64(3),
	}, "retryBudget")

	vs := findDoc(t, docs, "VirtualService", "recommendations")
	eq(t, vs["apiVersion"], "networking.istio.io/v1", "VirtualService apiVersion")
	eq(t, get(t, vs, "spec", "hosts"), []any{host}, "hosts")
	http := get(t, vs, "spec", "http").([]any)
	if len(http) != 2 {
		t.Fatalf("recommendations has %d http routes, want 2 (header, default)", len(http))
	}
	eq(t, get(t, http[0], "match"), []any{map[string]any{"headers": map[string]any{
		"x-marquee-version": map[string]any{"exact": "v2"},
	}}}, "header route match")
	eq(t, get(t, http[0], "route"), []any{map[string]any{"destination": map[string]any{"host": host, "subset": "v2"}}}, "header route")
	eq(t, get(t, http[1], "route"), []any{
		map[string]any{"destination": map[string]any{"host": host, "subset": "v1"}, "weight": float64(100)},
		map[string]any{"destination": map[string]any{"host": host, "subset": "v2"}, "weight": float64(0)},
	}, "default route")
	for i, r := range http {
		eq(t, get(t, r, "timeout"), "0.800s", "timeout")
		eq(t, get(t, r, "retries"), map[string]any{
			"attempts": float64(2), "perTryTimeout": "0.300s", "retryOn": "unavailable,reset,deadline-exceeded",
		}, "retries")
		if has(r, "fault") {
			t.Errorf("route %d has a fault; the default policy injects none", i)
		}
	}

	ap := findDoc(t, docs, "AuthorizationPolicy", "billing")
	eq(t, ap["apiVersion"], "security.istio.io/v1", "AuthorizationPolicy apiVersion")
	eq(t, get(t, ap, "spec", "action"), "ALLOW", "action")
	eq(t, get(t, ap, "spec", "selector"), map[string]any{"matchLabels": map[string]any{"app": "billing"}}, "selector")
	eq(t, get(t, ap, "spec", "rules", 1, "from"), []any{map[string]any{"source": map[string]any{
		"principals": []any{"cluster.local/ns/marquee/sa/orders"},
	}}}, "orders rule source")
	eq(t, get(t, ap, "spec", "rules", 1, "to"), []any{map[string]any{"operation": map[string]any{"paths": []any{
		"/marquee.billing.v1.BillingService/ListPlans",
		"/marquee.billing.v1.BillingService/CreatePaymentMethod",
		"/marquee.billing.v1.BillingService/Charge",
		"/marquee.billing.v1.BillingService/Refund",
	}}}}, "orders rule paths")

	// A service without a split routes to the host itself.
	cvs := findDoc(t, docs, "VirtualService", "catalog")
	eq(t, get(t, cvs, "spec", "http", 0, "route"), []any{map[string]any{"destination": map[string]any{
		"host": "catalog.marquee.svc.cluster.local",
	}}}, "catalog route")
	if has(get(t, findDoc(t, docs, "DestinationRule", "catalog"), "spec"), "subsets") {
		t.Error("catalog has subsets without versions")
	}
	// Media paths keep their prefix form.
	pap := findDoc(t, docs, "AuthorizationPolicy", "playback")
	paths := get(t, pap, "spec", "rules", 0, "to", 0, "operation", "paths").([]any)
	if paths[len(paths)-1] != "/media/*" {
		t.Errorf("playback gateway paths end with %v, want /media/*", paths[len(paths)-1])
	}
}

func TestRenderIstioExample(t *testing.T) {
	p := examplePolicy()
	p.Services["open"] = &Service{Allow: []Allow{{From: "gateway", Methods: []string{"/a", "*"}}}}
	p.Services["closed"] = &Service{Fault: &Fault{
		Abort: &Abort{Percent: 12.5, HTTPStatus: 503},
		Delay: &Delay{Percent: 1, Duration: Duration(1500 * time.Microsecond)},
	}}
	p.Services["plain"] = &Service{Fault: &Fault{Abort: &Abort{Percent: 1}}, Retries: &Retries{BudgetPercent: 20}}
	_, docs := renderDocs(t, p, "prod-1")

	vs := findDoc(t, docs, "VirtualService", "recommendations")
	def := get(t, vs, "spec", "http", 1)
	eq(t, get(t, def, "route", 0, "weight"), float64(90), "v1 weight")
	eq(t, get(t, def, "route", 1, "weight"), float64(10), "v2 weight")
	eq(t, get(t, def, "fault"), map[string]any{
		"abort": map[string]any{"percentage": map[string]any{"value": float64(100)}, "grpcStatus": "UNAVAILABLE"},
		"delay": map[string]any{"percentage": map[string]any{"value": float64(10)}, "fixedDelay": "0.050s"},
	}, "fault")
	eq(t, get(t, vs, "spec", "http", 0, "fault"), get(t, def, "fault"), "header route fault")

	closed := findDoc(t, docs, "VirtualService", "closed")
	eq(t, get(t, closed, "spec", "http", 0, "fault"), map[string]any{
		"abort": map[string]any{"percentage": map[string]any{"value": 12.5}, "httpStatus": float64(503)},
		"delay": map[string]any{"percentage": map[string]any{"value": float64(1)}, "fixedDelay": "0.001500s"},
	}, "HTTP fault")
	eq(t, get(t, closed, "spec", "http", 0, "retries"), map[string]any{"attempts": float64(0)}, "retries off")
	if has(get(t, closed, "spec", "http", 0), "timeout") {
		t.Error("a service without a timeout renders one")
	}
	if has(get(t, findDoc(t, docs, "AuthorizationPolicy", "closed"), "spec"), "rules") {
		t.Error("a service nobody may call has rules")
	}
	if has(get(t, findDoc(t, docs, "DestinationRule", "closed"), "spec"), "trafficPolicy") {
		t.Error("a service without outlier detection or retries has a traffic policy")
	}
	eq(t, get(t, findDoc(t, docs, "VirtualService", "plain"), "spec", "http", 0, "fault", "abort", "grpcStatus"),
		"UNAVAILABLE", "default abort status")

	open := findDoc(t, docs, "AuthorizationPolicy", "open")
	rule := get(t, open, "spec", "rules", 0)
	if has(rule, "to") {
		t.Errorf("a rule allowing \"*\" restricts paths: %v", rule)
	}
	eq(t, get(t, rule, "from", 0, "source", "principals"), []any{"cluster.local/ns/prod-1/sa/gateway"}, "principals")
}

func TestRenderIstioIsDeterministic(t *testing.T) {
	for _, p := range []*Policy{Default(), richPolicy()} {
		a, err := RenderIstio(p, "marquee")
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b, err := RenderIstio(p.Clone(), "marquee")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("two renderings differ:\n%s\n---\n%s", a, b)
			}
		}
	}
}

func TestRenderIstioRefuses(t *testing.T) {
	for _, ns := range []string{"", "Marquee", "-x", "x_y", strings.Repeat("a", 64)} {
		if _, err := RenderIstio(Default(), ns); err == nil {
			t.Errorf("RenderIstio(namespace %q) = nil error", ns)
		}
	}
	bad := Default()
	bad.Services["catalog"].Timeout = -1
	if _, err := RenderIstio(bad, "marquee"); err == nil || !strings.Contains(err.Error(), "services.catalog.timeout") {
		t.Errorf("RenderIstio(invalid policy) = %v", err)
	}
	tiny := Default()
	tiny.Services["catalog"].Timeout = Duration(time.Microsecond)
	tiny.Services["catalog"].Retries.PerTryTimeout = 0
	_, err := RenderIstio(tiny, "marquee")
	if err == nil || !strings.Contains(err.Error(), "services.catalog.timeout: 1µs is shorter than Istio's minimum of 1ms") {
		t.Errorf("RenderIstio(1µs timeout) = %v", err)
	}
}

func TestIstioDuration(t *testing.T) {
	for _, tt := range []struct {
		in   time.Duration
		want string
	}{
		{time.Millisecond, "0.001s"},
		{800 * time.Millisecond, "0.800s"},
		{2 * time.Second, "2s"},
		{90 * time.Second, "90s"},
		{10 * time.Minute, "600s"},
		{1500 * time.Microsecond, "0.001500s"},
		{time.Second + 5, "1.000000005s"},
	} {
		got, err := istioDuration(Duration(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("istioDuration(%v) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestPercentages(t *testing.T) {
	for _, tt := range []struct {
		in, want []int
	}{
		{[]int{1}, []int{100}},
		{[]int{90, 10}, []int{90, 10}},
		{[]int{9, 1}, []int{90, 10}},
		{[]int{1, 1, 1}, []int{34, 33, 33}},
		{[]int{1, 2}, []int{33, 67}},
		{[]int{100, 0}, []int{100, 0}},
		{[]int{0, 3, 0}, []int{0, 100, 0}},
		{[]int{1, 1000000}, []int{0, 100}},
		{[]int{1, 1, 1, 1, 1, 1, 1}, []int{15, 15, 14, 14, 14, 14, 14}},
	} {
		got := percentages(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("percentages(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
