// Package ca is the mesh certificate authority and the workload identities
// it issues.
//
// The control plane holds an Authority: a root key (ECDSA P-256) kept in its
// database that signs short-lived workload certificates. A workload
// certificate names exactly one identity, a SPIFFE URI
// spiffe://marquee.local/svc/<service>, and nothing else the workload asked
// for: the service comes from the join token the sidecar presented, never
// from the certificate request.
//
// A sidecar holds a Workload: the current certificate and roots, renewed at
// half-life with a fresh key each time, and the tls.Config builders that
// make every new handshake use the current certificate and verify the peer
// against the current roots and its SPIFFE identity.
package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// TrustDomain is the SPIFFE trust domain of the mesh.
const TrustDomain = "marquee.local"

// svcPrefix is the path under which services are named in TrustDomain.
const svcPrefix = "/svc/"

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ID returns the SPIFFE ID of service: "spiffe://marquee.local/svc/<service>".
func ID(service string) string {
	return "spiffe://" + TrustDomain + svcPrefix + service
}

// ValidService reports an error when service is not a valid mesh service
// name: a lowercase letter, then up to 62 lowercase letters, digits or
// hyphens.
func ValidService(service string) error {
	if !serviceName.MatchString(service) {
		return fmt.Errorf("ca: invalid service name %q (want a lowercase letter, then up to 62 of a-z, 0-9 and -)", truncate(service, 80))
	}
	return nil
}

func idURL(service string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: TrustDomain, Path: svcPrefix + service}
}

// ServiceOf returns the service named by the certificate's SPIFFE ID. The
// certificate must carry exactly one URI SAN, and it must be a service ID in
// TrustDomain; DNS and IP SANs beside it are allowed.
func ServiceOf(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", errors.New("ca: no certificate")
	}
	switch len(cert.URIs) {
	case 0:
		return "", errors.New("ca: certificate has no SPIFFE ID")
	case 1:
	default:
		return "", fmt.Errorf("ca: certificate has %d URI SANs, want exactly one SPIFFE ID", len(cert.URIs))
	}
	return serviceOfURI(cert.URIs[0])
}

func serviceOfURI(u *url.URL) (string, error) {
	if u.Scheme != "spiffe" {
		return "", fmt.Errorf("ca: URI SAN scheme %q is not spiffe", truncate(u.Scheme, 40))
	}
	if u.Host != TrustDomain {
		return "", fmt.Errorf("ca: SPIFFE ID is in trust domain %q, want %q", truncate(u.Host, 80), TrustDomain)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.RawPath != "" {
		return "", errors.New("ca: SPIFFE ID has a user, query, fragment or escaped path")
	}
	service, ok := strings.CutPrefix(u.Path, svcPrefix)
	if !ok {
		return "", fmt.Errorf("ca: SPIFFE ID path %q is not under %s", truncate(u.Path, 80), svcPrefix)
	}
	if !serviceName.MatchString(service) {
		return "", fmt.Errorf("ca: SPIFFE ID names an invalid service %q", truncate(service, 80))
	}
	return service, nil
}

// truncate keeps error messages about hostile input short.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
