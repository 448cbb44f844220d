package policy

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// istioHeader opens the rendered resources: what the reader must know for
// them to mean what the policy means.
const istioHeader = `# Istio resources rendered from the marquee mesh policy.
#
# Identities: Istio's trust domain (cluster.local by default) replaces
# marquee.local, and a caller is known by its Kubernetes service account,
# which must be named after the service (orders runs as service account
# "orders"). Pods carry the labels app: <service> and version: <version>.
# Retry budgets render as DestinationRule trafficPolicy.retryBudget, which
# needs an Istio release that has it.
`

var namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// RenderIstio renders p as Istio resources for the services of namespace,
// as one multi-document YAML stream in a fixed order: a namespace-wide
// PeerAuthentication requiring mTLS, then per service (by name) a
// DestinationRule (version subsets, outlier detection, retry budget), a
// VirtualService (header routes, the weighted split, timeout, retries,
// faults) and an AuthorizationPolicy allowing exactly the policy's callers
// and methods. The same policy always renders to the same bytes.
func RenderIstio(p *Policy, namespace string) ([]byte, error) {
	if !namespaceRE.MatchString(namespace) {
		return nil, fmt.Errorf("istio: namespace %q is not a Kubernetes namespace name", namespace)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	docs := []any{resource("security.istio.io/v1", "PeerAuthentication", "default", namespace, obj{
		"mtls": obj{"mode": "STRICT"},
	})}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s == nil {
			s = &Service{}
		}
		r := istioRenderer{service: name, namespace: namespace, s: s}
		dr, err := r.destinationRule()
		if err != nil {
			return nil, err
		}
		vs, err := r.virtualService()
		if err != nil {
			return nil, err
		}
		docs = append(docs, dr, vs, r.authorizationPolicy())
	}
	var out bytes.Buffer
	out.WriteString(istioHeader)
	for _, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("istio: %w", err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes(), nil
}

// obj is a YAML mapping; the marshaller sorts its keys, which is what
// makes the output deterministic.
type obj = map[string]any

func resource(apiVersion, kind, name, namespace string, spec obj) obj {
	return obj{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata":   obj{"name": name, "namespace": namespace},
		"spec":       spec,
	}
}

type istioRenderer struct {
	service, namespace string
	s                  *Service
}

func (r istioRenderer) host() string {
	return r.service + "." + r.namespace + ".svc.cluster.local"
}

func (r istioRenderer) errorf(format string, args ...any) error {
	return fmt.Errorf("istio: services.%s.%s", r.service, fmt.Sprintf(format, args...))
}

// versions are the subsets: every version the split or a route names.
func (r istioRenderer) versions() []string {
	var vs []string
	for _, w := range r.s.Split {
		vs = append(vs, w.Version)
	}
	for _, rt := range r.s.Routes {
		vs = append(vs, rt.Version)
	}
	slices.Sort(vs)
	return slices.Compact(vs)
}

func (r istioRenderer) destinationRule() (obj, error) {
	spec := obj{"host": r.host()}
	if vs := r.versions(); len(vs) > 0 {
		subsets := make([]obj, len(vs))
		for i, v := range vs {
			subsets[i] = obj{"name": v, "labels": obj{"version": v}}
		}
		spec["subsets"] = subsets
	}
	policy := obj{}
	if o := r.s.Outlier; o != nil && o.ConsecutiveErrors > 0 {
		// The mesh counts gateway errors only (unavailable, reset,
		// 502/503/504); Istio counts every 5xx unless told not to.
		od := obj{
			"consecutiveGatewayErrors": o.ConsecutiveErrors,
			"consecutive5xxErrors":     0,
		}
		if o.BaseEjection > 0 {
			d, err := istioDuration(o.BaseEjection)
			if err != nil {
				return nil, r.errorf("outlier.baseEjection: %v", err)
			}
			od["baseEjectionTime"] = d
		}
		if o.MaxEjectionPercent > 0 {
			od["maxEjectionPercent"] = o.MaxEjectionPercent
		}
		policy["outlierDetection"] = od
	}
	if rt := r.s.Retries; rt != nil && rt.Attempts > 0 && (rt.BudgetPercent > 0 || rt.MinRetriesConcurrent > 0) {
		policy["retryBudget"] = obj{"percent": rt.BudgetPercent, "minRetryConcurrency": rt.MinRetriesConcurrent}
	}
	if len(policy) > 0 {
		spec["trafficPolicy"] = policy
	}
	return resource("networking.istio.io/v1", "DestinationRule", r.service, r.namespace, spec), nil
}

func (r istioRenderer) virtualService() (obj, error) {
	common := obj{}
	if r.s.Timeout > 0 {
		d, err := istioDuration(r.s.Timeout)
		if err != nil {
			return nil, r.errorf("timeout: %v", err)
		}
		common["timeout"] = d
	}
	retries, err := r.retries()
	if err != nil {
		return nil, err
	}
	common["retries"] = retries
	if r.s.Fault != nil {
		fault, err := r.fault()
		if err != nil {
			return nil, err
		}
		if len(fault) > 0 {
			common["fault"] = fault
		}
	}

	var routes []obj
	for i, rt := range r.s.Routes {
		headers := obj{}
		for _, name := range sortedKeys(rt.Headers) {
			headers[name] = obj{"exact": rt.Headers[name]}
		}
		route := obj{
			"name":  fmt.Sprintf("header-%d", i),
			"match": []obj{{"headers": headers}},
			"route": []obj{{"destination": obj{"host": r.host(), "subset": rt.Version}}},
		}
		routes = append(routes, withCommon(route, common))
	}
	def := obj{"name": "default"}
	if len(r.s.Split) == 0 {
		def["route"] = []obj{{"destination": obj{"host": r.host()}}}
	} else {
		weights := make([]int, len(r.s.Split))
		for i, w := range r.s.Split {
			weights[i] = w.Weight
		}
		percents := percentages(weights)
		dests := make([]obj, len(r.s.Split))
		for i, w := range r.s.Split {
			dests[i] = obj{"destination": obj{"host": r.host(), "subset": w.Version}, "weight": percents[i]}
		}
		def["route"] = dests
	}
	routes = append(routes, withCommon(def, common))
	return resource("networking.istio.io/v1", "VirtualService", r.service, r.namespace, obj{
		"hosts": []string{r.host()},
		"http":  routes,
	}), nil
}

func withCommon(route, common obj) obj {
	for k, v := range common {
		route[k] = v
	}
	return route
}

// retries renders the retry policy. Without one, retries are switched off
// explicitly: Istio would otherwise retry on its own defaults, which the
// mesh does not.
func (r istioRenderer) retries() (obj, error) {
	rt := r.s.Retries
	if rt == nil || rt.Attempts == 0 {
		return obj{"attempts": 0}, nil
	}
	out := obj{"attempts": rt.Attempts}
	if rt.PerTryTimeout > 0 {
		d, err := istioDuration(rt.PerTryTimeout)
		if err != nil {
			return nil, r.errorf("retries.perTryTimeout: %v", err)
		}
		out["perTryTimeout"] = d
	}
	on := make([]string, len(rt.RetryOn))
	for i, name := range rt.RetryOn {
		on[i] = istioRetryOn[name]
	}
	out["retryOn"] = strings.Join(on, ",")
	return out, nil
}

// istioRetryOn maps the mesh's retry conditions to Envoy's (x-envoy-retry-on
// and x-envoy-retry-grpc-on), which Istio's retryOn takes.
var istioRetryOn = map[string]string{
	"unavailable":        "unavailable",
	"reset":              "reset",
	"deadline-exceeded":  "deadline-exceeded",
	"resource-exhausted": "resource-exhausted",
	"5xx":                "5xx",
}

func (r istioRenderer) fault() (obj, error) {
	f := r.s.Fault
	out := obj{}
	if a := f.Abort; a != nil {
		abort := obj{"percentage": obj{"value": a.Percent}}
		// Istio takes one status for both protocols; the policy's gRPC code
		// wins, as the services speak gRPC.
		switch {
		case a.GRPCCode != "":
			abort["grpcStatus"] = a.GRPCCode
		case a.HTTPStatus != 0:
			abort["httpStatus"] = a.HTTPStatus
		default:
			abort["grpcStatus"] = "UNAVAILABLE"
		}
		out["abort"] = abort
	}
	if d := f.Delay; d != nil && d.Duration > 0 {
		fixed, err := istioDuration(d.Duration)
		if err != nil {
			return nil, r.errorf("fault.delay.duration: %v", err)
		}
		out["delay"] = obj{"percentage": obj{"value": d.Percent}, "fixedDelay": fixed}
	}
	return out, nil
}

func (r istioRenderer) authorizationPolicy() obj {
	// An ALLOW policy without rules matches nothing: with no other ALLOW
	// policy on the workload, every request is denied, as in the mesh.
	var rules []obj
	for _, a := range r.s.Allow {
		rule := obj{"from": []obj{{"source": obj{
			"principals": []string{"cluster.local/ns/" + r.namespace + "/sa/" + a.From},
		}}}}
		// Istio writes a path prefix as the policy does, with a trailing
		// "*", so exact paths and prefixes carry over as they are; "*" (any
		// path) leaves the rule without a "to".
		if !slices.Contains(a.Methods, "*") {
			rule["to"] = []obj{{"operation": obj{"paths": slices.Clone(a.Methods)}}}
		}
		rules = append(rules, rule)
	}
	spec := obj{
		"selector": obj{"matchLabels": obj{"app": r.service}},
		"action":   "ALLOW",
	}
	if len(rules) > 0 {
		spec["rules"] = rules
	}
	return resource("security.istio.io/v1", "AuthorizationPolicy", r.service, r.namespace, spec)
}

// istioDuration formats d as Istio reads durations (the protobuf JSON
// form: seconds with up to nine decimals, "0.300s"). Istio refuses
// durations under a millisecond.
func istioDuration(d Duration) (string, error) {
	t := d.D()
	if t < time.Millisecond {
		return "", fmt.Errorf("%s is shorter than Istio's minimum of 1ms", t)
	}
	secs, frac := t/time.Second, t%time.Second
	switch {
	case frac == 0:
		return fmt.Sprintf("%ds", secs), nil
	case frac%time.Millisecond == 0:
		return fmt.Sprintf("%d.%03ds", secs, frac/time.Millisecond), nil
	case frac%time.Microsecond == 0:
		return fmt.Sprintf("%d.%06ds", secs, frac/time.Microsecond), nil
	default:
		return fmt.Sprintf("%d.%09ds", secs, frac), nil
	}
}

// percentages scales weights to whole percentages adding up to exactly
// 100 (largest remainder first, earlier entries winning ties), as Istio
// wants; a zero weight stays zero. The weights must add up to more than 0.
func percentages(weights []int) []int {
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]int, len(weights))
	rem := make([]int, len(weights))
	left := 100
	for i, w := range weights {
		out[i] = w * 100 / total
		rem[i] = w * 100 % total
		left -= out[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rem[b] - rem[a] })
	for _, i := range order[:left] {
		out[i]++
	}
	return out
}
