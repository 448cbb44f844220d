package policy

import (
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/yaml"
)

// Policy is the whole mesh policy: one entry per service that may be
// called. A service that only calls others (the gateway) needs no entry of
// its own; it appears in the allow lists of the services it calls.
//
// Reading a policy (Snapshot, Marshal, RenderIstio, Validate) never
// changes it, so one policy may be read from many goroutines; SetSplit and
// SetFault change it in place, so edit a Clone while the original is in
// use.
type Policy struct {
	Services map[string]*Service `json:"services"`
}

// Service is how one service may be called and how traffic to it behaves.
type Service struct {
	// Allow lists the callers and the methods each may call; everything
	// else is denied.
	Allow []Allow `json:"allow,omitempty"`
	// Timeout bounds a whole request including its retries; zero means none.
	Timeout Duration `json:"timeout,omitempty"`
	// Retries retries failed attempts; nil means none.
	Retries *Retries `json:"retries,omitempty"`
	// Outlier ejects endpoints that keep failing; nil means never.
	Outlier *Outlier `json:"outlier,omitempty"`
	// Split weighs versions; empty means every endpoint alike.
	Split []Weight `json:"split,omitempty"`
	// Routes send requests with matching headers to one version; the first
	// match wins and Split applies without one.
	Routes []Route `json:"routes,omitempty"`
	// Fault injects failures into requests to the service.
	Fault *Fault `json:"fault,omitempty"`
}

// Allow lets one caller call some methods.
type Allow struct {
	// From is the calling service.
	From string `json:"from"`
	// Methods are request paths: exact ("/marquee.catalog.v1.CatalogService/GetTitle"),
	// a prefix ending in "*" ("/marquee.catalog.v1.CatalogService/*"), or "*".
	Methods []string `json:"methods"`
}

// Retries retries failed attempts that are safe to retry.
type Retries struct {
	// Attempts is the number of retries after the first try.
	Attempts int `json:"attempts,omitempty"`
	// PerTryTimeout bounds each attempt; zero means the service timeout.
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// RetryOn names the failures retried: unavailable, reset,
	// deadline-exceeded, resource-exhausted, 5xx.
	RetryOn []string `json:"retryOn,omitempty"`
	// BudgetPercent caps retries at this percentage of requests in flight
	// (plus MinRetriesConcurrent), so retries cannot multiply an outage.
	BudgetPercent float64 `json:"budgetPercent,omitempty"`
	// MinRetriesConcurrent is the number of retries always allowed in
	// flight whatever the budget says, so a quiet service can still retry.
	MinRetriesConcurrent int `json:"minRetriesConcurrent,omitempty"`
}

// Outlier ejects endpoints that keep failing.
type Outlier struct {
	// ConsecutiveErrors ejects an endpoint after this many gateway errors
	// in a row (unavailable, reset, 502/503/504); zero disables ejection.
	ConsecutiveErrors int `json:"consecutiveErrors,omitempty"`
	// BaseEjection is the first ejection's length; it grows with each
	// ejection of the same endpoint.
	BaseEjection Duration `json:"baseEjection,omitempty"`
	// MaxEjectionPercent caps the share of endpoints ejected at once.
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
}

// Weight is one version's share of a split, relative to the others.
type Weight struct {
	Version string `json:"version"`
	Weight  int    `json:"weight"`
}

// Route sends requests whose headers all match to one version.
type Route struct {
	// Headers must all be present with exactly these values; names are
	// lower case.
	Headers map[string]string `json:"headers"`
	Version string            `json:"version"`
}

// Fault injects failures, to test how callers cope with them. Injected
// failures say they were injected.
type Fault struct {
	Abort *Abort `json:"abort,omitempty"`
	Delay *Delay `json:"delay,omitempty"`
}

// Abort fails a percentage of requests without sending them.
type Abort struct {
	Percent float64 `json:"percent"`
	// GRPCCode is the status code name returned to gRPC requests
	// ("UNAVAILABLE"); empty means UNAVAILABLE.
	GRPCCode string `json:"grpcCode,omitempty"`
	// HTTPStatus is returned to plain HTTP requests; zero means 503.
	HTTPStatus int `json:"httpStatus,omitempty"`
}

// Delay delays a percentage of requests.
type Delay struct {
	Percent  float64  `json:"percent"`
	Duration Duration `json:"duration"`
}

// Parse reads a policy file (YAML or JSON) strictly: an unknown or
// repeated field is an error naming it. The policy is validated.
func Parse(data []byte) (*Policy, error) {
	p, err := decode(data)
	if err != nil {
		return nil, err
	}
	p.normalize()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Marshal writes p as canonical YAML: the keys of every mapping sorted,
// empty fields left out, durations as strings ("800ms"). Parse reads it
// back to an equal policy, and equal policies marshal to the same bytes.
func (p *Policy) Marshal() ([]byte, error) {
	c := p.Clone()
	if c == nil {
		c = &Policy{}
	}
	c.normalize()
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return b, nil
}

// ServiceNames returns the names of the services with an entry, sorted.
// (It cannot be called Services: that is the field.)
func (p *Policy) ServiceNames() []string {
	if p == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(p.Services))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
