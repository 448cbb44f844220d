package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSetSplit(t *testing.T) {
	p := Default()
	if err := p.SetSplit("recommendations", map[string]uint32{"v2": 10, "v1": 90}); err != nil {
		t.Fatalf("SetSplit = %v", err)
	}
	want := []Weight{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}}
	if got := p.Services["recommendations"].Split; !reflect.DeepEqual(got, want) {
		t.Errorf("split = %v, want %v (sorted by version)", got, want)
	}
	if err := p.SetSplit("recommendations", nil); err != nil {
		t.Fatalf("SetSplit(nil) = %v", err)
	}
	if got := p.Services["recommendations"].Split; got != nil {
		t.Errorf("split after SetSplit(nil) = %v, want none", got)
	}

	before := p.Clone()
	for _, tt := range []struct {
		service string
		weights map[string]uint32
		want    string
	}{
		{"recommendations", map[string]uint32{"v1": 0}, "services.recommendations.split: weights must add up to more than 0"},
		{"recommendations", map[string]uint32{"V1": 1}, `services.recommendations.split[0].version: "V1" is not a version name`},
		{"recommendations", map[string]uint32{"v1": 1 << 31}, "services.recommendations.split: weight of v1 must be at most 1000000"},
		{"nowhere", map[string]uint32{"v1": 1}, "services.nowhere: no such service in the policy"},
	} {
		err := p.SetSplit(tt.service, tt.weights)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SetSplit(%s, %v) = %v, want an error containing %q", tt.service, tt.weights, err, tt.want)
		}
	}
	if !p.Equal(before) {
		t.Error("a refused SetSplit changed the policy")
	}
}

func TestSetFault(t *testing.T) {
	p := Default()
	f := &Fault{Abort: &Abort{Percent: 50, GRPCCode: "UNAVAILABLE"}, Delay: &Delay{Percent: 5, Duration: Duration(time.Second)}}
	if err := p.SetFault("catalog", f); err != nil {
		t.Fatalf("SetFault = %v", err)
	}
	f.Abort.Percent = 1 // the policy keeps its own copy
	if got := p.Services["catalog"].Fault; got.Abort.Percent != 50 || got.Delay.Duration != Duration(time.Second) {
		t.Errorf("fault = %+v %+v", got.Abort, got.Delay)
	}
	snap := p.Snapshot("gateway", nil)
	for _, d := range snap.GetDestinations() {
		if d.GetService() == "catalog" && d.GetFault().GetAbort().GetPercent() != 50 {
			t.Errorf("gateway's snapshot has catalog fault %v", d.GetFault())
		}
	}

	before := p.Clone()
	err := p.SetFault("catalog", &Fault{Abort: &Abort{Percent: 150}})
	if err == nil || !strings.Contains(err.Error(), "services.catalog.fault.abort.percent: must be a percentage between 0 and 100") {
		t.Errorf("SetFault(150%%) = %v", err)
	}
	if err := p.SetFault("gateway", nil); err == nil {
		t.Error("SetFault(gateway) = nil, want an error: the gateway has no entry")
	}
	if !p.Equal(before) {
		t.Error("a refused SetFault changed the policy")
	}
	if err := p.SetFault("catalog", nil); err != nil {
		t.Fatalf("SetFault(nil) = %v", err)
	}
	if p.Services["catalog"].Fault != nil {
		t.Error("SetFault(nil) left a fault")
	}
}
