// Package policy is the declarative mesh policy: its file format (YAML or
// JSON with the same fields), validation, the per-sidecar snapshots the
// control plane derives from it and the service registry, the rendering of
// the same policy as Istio resources, and the default policy of
// `marquee dev`.
//
// A policy says, per service, who may call it and which methods (deny by
// default), and how traffic to it behaves: timeout, retries, outlier
// ejection, version split, header routes and injected faults.
package policy
