package policy

import (
	"maps"
	"slices"
	"strings"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Snapshot computes what the sidecar of service needs from the policy and
// the registered instances: who may call it (Inbound), and every service
// that allows it as a caller — its declared dependencies — with their
// traffic settings and endpoints. Version and PolicyVersion are left zero
// for the caller to set.
//
// A service without an entry gets an empty Inbound: nothing may call it.
// Endpoints are the instances of a destination that have an address
// (caller-only workloads have none), sorted by instance id, with health
// copied as reported.
func (p *Policy) Snapshot(service string, instances []*meshv1.Instance) *meshv1.Snapshot {
	snap := &meshv1.Snapshot{Service: service, Inbound: &meshv1.Inbound{}}
	if p == nil {
		return snap
	}
	if s := p.Services[service]; s != nil {
		for _, a := range s.Allow {
			snap.Inbound.Allow = append(snap.Inbound.Allow, &meshv1.AllowRule{
				Caller:  a.From,
				Methods: slices.Clone(a.Methods),
			})
		}
	}
	byService := map[string][]*meshv1.Instance{}
	for _, in := range instances {
		if in != nil && in.GetAddress() != "" {
			byService[in.GetService()] = append(byService[in.GetService()], in)
		}
	}
	for _, name := range p.ServiceNames() {
		d := p.Services[name]
		if !d.allows(service) {
			continue
		}
		dest := d.destination(name)
		ins := byService[name]
		slices.SortFunc(ins, func(a, b *meshv1.Instance) int { return strings.Compare(a.GetId(), b.GetId()) })
		for _, in := range ins {
			dest.Endpoints = append(dest.Endpoints, &meshv1.Endpoint{
				InstanceId: in.GetId(),
				Address:    in.GetAddress(),
				Version:    in.GetVersion(),
				Healthy:    in.GetHealthy(),
			})
		}
		snap.Destinations = append(snap.Destinations, dest)
	}
	return snap
}

// allows reports whether caller has an allow rule on s.
func (s *Service) allows(caller string) bool {
	if s == nil {
		return false
	}
	for _, a := range s.Allow {
		if a.From == caller {
			return true
		}
	}
	return false
}

// destination is s's traffic settings as a snapshot destination, without
// endpoints.
func (s *Service) destination(name string) *meshv1.Destination {
	d := &meshv1.Destination{Service: name, Timeout: protoDuration(s.Timeout)}
	for _, r := range s.Routes {
		d.Routes = append(d.Routes, &meshv1.Route{Headers: maps.Clone(r.Headers), Version: r.Version})
	}
	for _, w := range s.Split {
		d.Split = append(d.Split, &meshv1.WeightedVersion{Version: w.Version, Weight: uint32(w.Weight)})
	}
	if r := s.Retries; r != nil {
		d.Retries = &meshv1.RetryPolicy{
			Attempts:             uint32(r.Attempts),
			PerTryTimeout:        protoDuration(r.PerTryTimeout),
			RetryOn:              slices.Clone(r.RetryOn),
			BudgetPercent:        r.BudgetPercent,
			MinRetriesConcurrent: uint32(r.MinRetriesConcurrent),
		}
	}
	if o := s.Outlier; o != nil {
		d.Outlier = &meshv1.OutlierDetection{
			ConsecutiveErrors:  uint32(o.ConsecutiveErrors),
			BaseEjection:       protoDuration(o.BaseEjection),
			MaxEjectionPercent: uint32(o.MaxEjectionPercent),
		}
	}
	if f := s.Fault; f != nil {
		d.Fault = &meshv1.Fault{}
		if a := f.Abort; a != nil {
			d.Fault.Abort = &meshv1.FaultAbort{Percent: a.Percent, GrpcCode: a.GRPCCode, HttpStatus: uint32(a.HTTPStatus)}
		}
		if dl := f.Delay; dl != nil {
			d.Fault.Delay = &meshv1.FaultDelay{Percent: dl.Percent, Duration: protoDuration(dl.Duration)}
		}
	}
	return d
}

// protoDuration leaves zero durations unset: the snapshot's "none".
func protoDuration(d Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d.D())
}
