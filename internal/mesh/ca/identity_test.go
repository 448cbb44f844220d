package ca

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	if got, want := ID("catalog"), "spiffe://marquee.local/svc/catalog"; got != want {
		t.Errorf("ID(catalog) = %q, want %q", got, want)
	}
}

func TestServiceOf(t *testing.T) {
	uri := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		uris []*url.URL
		want string // "" means an error
	}{
		{"service", []*url.URL{uri(ID("catalog"))}, "catalog"},
		{"hyphen", []*url.URL{uri(ID("control-plane"))}, "control-plane"},
		{"none", nil, ""},
		{"two", []*url.URL{uri(ID("catalog")), uri(ID("billing"))}, ""},
		{"other domain", []*url.URL{uri("spiffe://example.org/svc/catalog")}, ""},
		{"other scheme", []*url.URL{uri("https://marquee.local/svc/catalog")}, ""},
		{"not svc", []*url.URL{uri("spiffe://marquee.local/ns/catalog")}, ""},
		{"nested", []*url.URL{uri("spiffe://marquee.local/svc/catalog/x")}, ""},
		{"upper", []*url.URL{uri("spiffe://marquee.local/svc/Catalog")}, ""},
		{"empty service", []*url.URL{uri("spiffe://marquee.local/svc/")}, ""},
		{"query", []*url.URL{uri(ID("catalog") + "?x=1")}, ""},
		{"user", []*url.URL{uri("spiffe://a@marquee.local/svc/catalog")}, ""},
		{"port", []*url.URL{uri("spiffe://marquee.local:1/svc/catalog")}, ""},
	}
	for _, tt := range tests {
		got, err := ServiceOf(&x509.Certificate{URIs: tt.uris})
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: ServiceOf = %q, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: ServiceOf = %q, %v, want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := ServiceOf(nil); err == nil {
		t.Error("ServiceOf(nil) succeeded")
	}
}

func TestValidService(t *testing.T) {
	for _, s := range []string{"a", "catalog", "control-plane", "a1", "a" + strings.Repeat("b", 62)} {
		if err := ValidService(s); err != nil {
			t.Errorf("ValidService(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "1a", "-a", "Catalog", "a_b", "a.b", "a/b", "a" + strings.Repeat("b", 63), "café"} {
		if err := ValidService(s); err == nil {
			t.Errorf("ValidService(%q) = nil, want an error", s)
		}
	}
}
