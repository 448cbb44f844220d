package policy

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/playback/media"
)

// grpcServices are the gRPC service of each service of the default policy;
// naming them here also links their descriptors into the test binary.
var grpcServices = map[string]string{
	"billing":         billingv1.BillingService_ServiceDesc.ServiceName,
	"catalog":         catalogv1.CatalogService_ServiceDesc.ServiceName,
	"identity":        identityv1.IdentityService_ServiceDesc.ServiceName,
	"orders":          ordersv1.OrdersService_ServiceDesc.ServiceName,
	"playback":        playbackv1.PlaybackService_ServiceDesc.ServiceName,
	"profiles":        profilesv1.ProfilesService_ServiceDesc.ServiceName,
	"recommendations": recommendationsv1.RecommendationsService_ServiceDesc.ServiceName,
}

var healthCheck = "/" + healthpb.Health_ServiceDesc.ServiceName + "/Check"

func TestDefaultIsValidAndDocumented(t *testing.T) {
	p, err := Parse(DefaultYAML())
	if err != nil {
		t.Fatalf("default.yaml: %v", err)
	}
	if !p.Equal(Default()) {
		t.Error("Default() differs from Parse(DefaultYAML())")
	}
	b := DefaultYAML()
	b[0] = 'X'
	if DefaultYAML()[0] == 'X' {
		t.Error("DefaultYAML returns the embedded bytes themselves")
	}
	if n := bytes.Count(DefaultYAML(), []byte("\n#")) + bytes.Count(DefaultYAML(), []byte(" # ")); n < 20 {
		t.Errorf("default.yaml has %d comments; it is documentation, explain it", n)
	}
	if got, want := p.ServiceNames(), slices.Sorted(maps.Keys(grpcServices)); !slices.Equal(got, want) {
		t.Errorf("default policy services = %v, want %v", got, want)
	}
}

// TestDefaultMethodsExist fails when a method of the default policy is not
// an RPC of the generated services (a renamed or removed RPC), or not the
// media prefix playback serves.
func TestDefaultMethodsExist(t *testing.T) {
	p := Default()
	for _, name := range p.ServiceNames() {
		for _, a := range p.Services[name].Allow {
			for _, m := range a.Methods {
				if m == media.PathPrefix+"*" && name == "playback" {
					continue
				}
				service, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
				if !ok || strings.Contains(m, "*") {
					t.Errorf("services.%s: %s may call %q, not a gRPC method path", name, a.From, m)
					continue
				}
				if service != grpcServices[name] && m != healthCheck {
					t.Errorf("services.%s: %s may call %s, a method of another service", name, a.From, m)
				}
				d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
				if err != nil {
					t.Errorf("services.%s: %s: no service %s: %v", name, a.From, service, err)
					continue
				}
				if d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method)) == nil {
					t.Errorf("services.%s: %s may call %s, which %s does not have", name, a.From, m, service)
				}
			}
		}
	}
}

// TestDefaultAllowsTheGateway checks the default policy against the
// gateway's routes: every gRPC upstream lets the gateway call every RPC
// with an HTTP binding (the routes expose them all) and its health check,
// and the media prefix goes to playback.
func TestDefaultAllowsTheGateway(t *testing.T) {
	var doc struct {
		HTTPUpstreams map[string]json.RawMessage `json:"http_upstreams"`
		Routes        []struct {
			Kind     string `json:"kind"`
			Upstream string `json:"upstream"`
			Prefix   string `json:"prefix"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(routes.Default, &doc); err != nil {
		t.Fatal(err)
	}
	p := Default()
	allowed := func(service, method string) bool {
		s := p.Services[service]
		if s == nil {
			return false
		}
		for _, a := range s.Allow {
			if a.From == "gateway" && slices.Contains(a.Methods, method) {
				return true
			}
		}
		return false
	}
	upstreams := map[string]bool{}
	for _, r := range doc.Routes {
		switch r.Kind {
		case "", routes.KindGRPC:
			upstreams[r.Upstream] = true
		case routes.KindHTTP:
			if r.Prefix != media.PathPrefix || r.Upstream != "playback-media" {
				t.Errorf("an HTTP route the default policy does not know: %+v", r)
			} else if !allowed("playback", media.PathPrefix+"*") {
				t.Errorf("the gateway may not call playback's %s*", media.PathPrefix)
			}
		}
	}
	if len(upstreams) != len(grpcServices) {
		t.Errorf("gateway routes go to %d gRPC upstreams, the policy knows %d", len(upstreams), len(grpcServices))
	}
	for upstream := range upstreams {
		name := grpcServices[upstream]
		if name == "" {
			t.Errorf("gateway upstream %s has no entry in the default policy", upstream)
			continue
		}
		if !allowed(upstream, healthCheck) {
			t.Errorf("the gateway may not health-check %s", upstream)
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			path := "/" + name + "/" + string(m.Name())
			if rule != nil && !allowed(upstream, path) {
				t.Errorf("the gateway routes to %s but may not call it", path)
			}
		}
	}
}

// TestDefaultDependencyGraph pins the calls between services the code
// makes: a new peer call must be added here and to default.yaml.
func TestDefaultDependencyGraph(t *testing.T) {
	want := map[string]map[string][]string{ // callee → caller → methods (besides the gateway)
		"billing":  {"orders": {"ListPlans", "CreatePaymentMethod", "Charge", "Refund"}},
		"catalog":  {"orders": {"GetTitle"}, "playback": {"GetTitle"}, "profiles": {"GetTitle"}},
		"playback": {"orders": {"GrantEntitlement", "RevokeEntitlement"}},
		"profiles": {"catalog": {"GetProfile"}, "playback": {"GetProfile"}, "recommendations": {"GetProfile"}},
	}
	p := Default()
	for _, callee := range p.ServiceNames() {
		got := map[string][]string{}
		for _, a := range p.Services[callee].Allow {
			if a.From == "gateway" {
				continue
			}
			for _, m := range a.Methods {
				got[a.From] = append(got[a.From], strings.TrimPrefix(m, "/"+grpcServices[callee]+"/"))
			}
		}
		w := want[callee]
		if len(got) != len(w) {
			t.Errorf("%s is called by %v, want %v", callee, got, w)
			continue
		}
		for caller, methods := range w {
			if !slices.Equal(got[caller], methods) {
				t.Errorf("%s may call %s's %v, want %v", caller, callee, got[caller], methods)
			}
		}
	}
	// The gateway's extra calls, which no route binds: authentication and
	// the home page.
	for callee, methods := range map[string][]string{
		"identity":        {"ListSigningKeys", "VerifyAPIKey"},
		"catalog":         {"BatchGetTitles", "ListTitles", "ListGenres"},
		"profiles":        {"GetProfile", "ListMyList"},
		"playback":        {"ContinueWatching"},
		"recommendations": {"GetRecommendations"},
	} {
		snap := p.Snapshot("gateway", nil)
		var ok bool
		for _, d := range snap.GetDestinations() {
			ok = ok || d.GetService() == callee
		}
		if !ok {
			t.Errorf("the gateway's snapshot has no destination %s", callee)
		}
		for _, m := range methods {
			path := "/" + grpcServices[callee] + "/" + m
			if !slices.ContainsFunc(p.Services[callee].Allow, func(a Allow) bool {
				return a.From == "gateway" && slices.Contains(a.Methods, path)
			}) {
				t.Errorf("the gateway may not call %s", path)
			}
		}
	}
}
