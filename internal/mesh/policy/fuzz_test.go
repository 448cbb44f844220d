package policy

import (
	"testing"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

// FuzzParse feeds Parse arbitrary documents. It must never panic, and a
// policy it accepts must survive Marshal and Parse unchanged and be usable:
// snapshots and Istio rendering must not panic either.
func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add(DefaultYAML())
	for _, p := range []*Policy{richPolicy(), examplePolicy()} {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"services:\n  a:\n",
		`{"services":{"a":{"allow":[{"from":"b","methods":["*"]}],"timeout":"1ms"}}}`,
		"services: {a: {split: [{version: v1, weight: 1}], routes: [{headers: {x: y}, version: v2}]}}",
		"services: {a: {fault: {abort: {percent: 1e-300}, delay: {percent: 99.99999999, duration: 1ns}}}}",
		"services: {a: {retries: {attempts: 1, retryOn: [reset], budgetPercent: 0.1}}}\n---\nservices: {}",
		"services: {a: &x {}, b: *x}",
		"services: {\"\": {}}",
	} {
		f.Add([]byte(s))
	}
	instances := []*meshv1.Instance{
		{Id: "a-1", Service: "a", Version: "v1", Address: "127.0.0.1:1", Healthy: true},
		{Id: "b-1", Service: "b", Address: "127.0.0.1:2"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed policy = %v", err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v\n%s", err, b)
		}
		if !q.Equal(p) {
			t.Fatalf("Parse(Marshal()) = %#v, want %#v\n%s", q, p, b)
		}
		b2, err := q.Marshal()
		if err != nil || string(b2) != string(b) {
			t.Fatalf("Marshal is not stable: %v\n%s\nthen\n%s", err, b, b2)
		}
		for _, name := range append(p.ServiceNames(), "gateway") {
			p.Snapshot(name, instances)
		}
		_, _ = RenderIstio(p, "ns") // may refuse sub-millisecond durations
	})
}
