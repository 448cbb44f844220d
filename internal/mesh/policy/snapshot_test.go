package policy

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
)

func snapshotPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Parse([]byte(`
services:
  catalog:
    allow:
      - from: gateway
        methods: ["*"]
      - from: orders
        methods: [/marquee.catalog.v1.CatalogService/GetTitle]
    timeout: 2s
    retries: {attempts: 2, perTryTimeout: 500ms, retryOn: [unavailable, reset], budgetPercent: 20, minRetriesConcurrent: 3}
    outlier: {consecutiveErrors: 5, baseEjection: 10s, maxEjectionPercent: 50}
  billing:
    allow:
      - from: orders
        methods: [/marquee.billing.v1.BillingService/Charge]
    fault: {abort: {percent: 50, grpcCode: INTERNAL, httpStatus: 500}, delay: {percent: 10, duration: 50ms}}
    split: [{version: v1, weight: 90}, {version: v2, weight: 10}]
    routes: [{headers: {x-marquee-version: v2}, version: v2}]
  orders:
    allow:
      - from: gateway
        methods: [/marquee.orders.v1.OrdersService/*]
  lonely: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func instances() []*meshv1.Instance {
	return []*meshv1.Instance{
		{Id: "catalog-2", Service: "catalog", Version: "v1", Address: "127.0.0.1:7002", Healthy: false},
		{Id: "gateway-1", Service: "gateway", Version: "v1"}, // caller only: no address
		{Id: "catalog-1", Service: "catalog", Version: "v1", Address: "127.0.0.1:7001", Healthy: true},
		{Id: "billing-b", Service: "billing", Version: "v2", Address: "127.0.0.1:7102", Healthy: true},
		nil,
		{Id: "billing-a", Service: "billing", Version: "v1", Address: "127.0.0.1:7101", Healthy: true},
		{Id: "catalog-0", Service: "catalog", Version: "v1", Healthy: true}, // no address yet
		{Id: "orders-1", Service: "orders", Version: "v1", Address: "127.0.0.1:7201", Healthy: true},
	}
}

func TestSnapshotOfACallerWithDependencies(t *testing.T) {
	got := snapshotPolicy(t).Snapshot("orders", instances())
	want := &meshv1.Snapshot{
		Service: "orders",
		Inbound: &meshv1.Inbound{Allow: []*meshv1.AllowRule{
			{Caller: "gateway", Methods: []string{"/marquee.orders.v1.OrdersService/*"}},
		}},
		Destinations: []*meshv1.Destination{
			{
				Service: "billing",
				Endpoints: []*meshv1.Endpoint{
					{InstanceId: "billing-a", Address: "127.0.0.1:7101", Version: "v1", Healthy: true},
					{InstanceId: "billing-b", Address: "127.0.0.1:7102", Version: "v2", Healthy: true},
				},
				Routes: []*meshv1.Route{{Headers: map[string]string{"x-marquee-version": "v2"}, Version: "v2"}},
				Split:  []*meshv1.WeightedVersion{{Version: "v1", Weight: 90}, {Version: "v2", Weight: 10}},
				Fault: &meshv1.Fault{
					Abort: &meshv1.FaultAbort{Percent: 50, GrpcCode: "INTERNAL", HttpStatus: 500},
					Delay: &meshv1.FaultDelay{Percent: 10, Duration: durationpb.New(50 * time.Millisecond)},
				},
			},
			{
				Service: "catalog",
				Endpoints: []*meshv1.Endpoint{
					{InstanceId: "catalog-1", Address: "127.0.0.1:7001", Version: "v1", Healthy: true},
					{InstanceId: "catalog-2", Address: "127.0.0.1:7002", Version: "v1", Healthy: false},
				},
				Timeout: durationpb.New(2 * time.Second),
				Retries: &meshv1.RetryPolicy{
					Attempts:             2,
					PerTryTimeout:        durationpb.New(500 * time.Millisecond),
					RetryOn:              []string{"unavailable", "reset"},
					BudgetPercent:        20,
					MinRetriesConcurrent: 3,
				},
				Outlier: &meshv1.OutlierDetection{
					ConsecutiveErrors:  5,
					BaseEjection:       durationpb.New(10 * time.Second),
					MaxEjectionPercent: 50,
				},
			},
		},
	}
	if !proto.Equal(got, want) {
		t.Errorf("Snapshot(orders) =\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
	}
}

func TestSnapshotOfACallerOnlyService(t *testing.T) {
	got := snapshotPolicy(t).Snapshot("gateway", instances())
	if len(got.GetInbound().GetAllow()) != 0 {
		t.Errorf("gateway Inbound = %v, want no rules (deny all)", got.GetInbound())
	}
	if got.GetInbound() == nil {
		t.Error("gateway Inbound is nil, want an empty Inbound")
	}
	var names []string
	for _, d := range got.GetDestinations() {
		names = append(names, d.GetService())
	}
	if want := []string{"catalog", "orders"}; !slices.Equal(names, want) {
		t.Errorf("gateway destinations = %v, want %v", names, want)
	}
	if eps := got.GetDestinations()[1].GetEndpoints(); len(eps) != 1 || eps[0].GetInstanceId() != "orders-1" {
		t.Errorf("orders endpoints = %v, want orders-1", eps)
	}
}

func TestSnapshotDeniesAllWithoutAnEntry(t *testing.T) {
	p := snapshotPolicy(t)
	for _, service := range []string{"unknown", "lonely", "billing"} {
		got := p.Snapshot(service, instances())
		if got.GetService() != service || got.GetVersion() != 0 || got.GetPolicyVersion() != 0 {
			t.Errorf("Snapshot(%s) header = %q v%d p%d", service, got.GetService(), got.GetVersion(), got.GetPolicyVersion())
		}
		if len(got.GetDestinations()) != 0 {
			t.Errorf("Snapshot(%s) destinations = %v, want none (it calls nothing)", service, got.GetDestinations())
		}
		if service != "billing" && (got.GetInbound() == nil || len(got.GetInbound().GetAllow()) != 0) {
			t.Errorf("Snapshot(%s) inbound = %v, want empty (deny all)", service, got.GetInbound())
		}
	}
	if got := (*Policy)(nil).Snapshot("catalog", instances()); got.GetInbound() == nil || len(got.GetInbound().GetAllow())+len(got.GetDestinations()) != 0 {
		t.Errorf("nil policy: Snapshot = %v, want deny all and no destinations", got)
	}
	// A service with an entry and no instances: the destination is there,
	// without endpoints.
	got := p.Snapshot("orders", nil)
	if len(got.GetDestinations()) != 2 || len(got.GetDestinations()[0].GetEndpoints()) != 0 {
		t.Errorf("Snapshot(orders, no instances) = %v", got)
	}
}

func TestSnapshotDoesNotShareThePolicy(t *testing.T) {
	p := snapshotPolicy(t)
	snap := p.Snapshot("orders", instances())
	snap.GetInbound().GetAllow()[0].Methods[0] = "/changed"
	snap.GetDestinations()[0].GetRoutes()[0].Headers["x-marquee-version"] = "changed"
	snap.GetDestinations()[1].GetRetries().RetryOn[0] = "changed"
	if !p.Equal(snapshotPolicy(t)) {
		t.Error("changing a snapshot changed the policy")
	}
	if !proto.Equal(p.Snapshot("orders", instances()), snapshotPolicy(t).Snapshot("orders", instances())) {
		t.Error("Snapshot is not deterministic")
	}
}
