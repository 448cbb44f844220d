package ca

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func testAuthority(t testing.TB) *Authority {
	t.Helper()
	a, err := NewInMemory()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// csrFor makes a certificate request signed by key that asks for names the
// Authority must ignore.
func csrFor(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "billing"},
		DNSNames:       []string{"billing", "evil.example"},
		IPAddresses:    []net.IP{net.IPv4(10, 0, 0, 1)},
		EmailAddresses: []string{"root@example.org"},
		URIs:           []*url.URL{{Scheme: "spiffe", Host: TrustDomain, Path: "/svc/billing"}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoot(t *testing.T) {
	a := testAuthority(t)
	root, err := x509.ParseCertificate(a.RootDER())
	if err != nil {
		t.Fatal(err)
	}
	if root.Subject.CommonName != "Marquee mesh root" || !root.IsCA {
		t.Errorf("root = %q (CA %v), want a CA named Marquee mesh root", root.Subject.CommonName, root.IsCA)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("root key is %T, want ECDSA", root.PublicKey)
	}
	if life := root.NotAfter.Sub(root.NotBefore); life < 9*365*24*time.Hour {
		t.Errorf("root lifetime = %s, want about 10 years", life)
	}
	block, _ := pem.Decode(a.RootPEM())
	if block == nil || block.Type != "CERTIFICATE" || string(block.Bytes) != string(a.RootDER()) {
		t.Error("RootPEM does not hold RootDER")
	}
	if _, err := root.Verify(x509.VerifyOptions{Roots: a.Roots()}); err != nil {
		t.Errorf("root does not verify against Roots: %v", err)
	}
	b := testAuthority(t)
	if string(a.RootDER()) == string(b.RootDER()) {
		t.Error("two in-memory authorities share a root")
	}
}

func TestSignIgnoresRequestedNames(t *testing.T) {
	a := testAuthority(t)
	key := p256(t)
	before := time.Now()
	cert, err := a.Sign(csrFor(t, key), "catalog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != ID("catalog") {
		t.Errorf("URIs = %v, want only %s", cert.URIs, ID("catalog"))
	}
	if len(cert.DNSNames)+len(cert.IPAddresses)+len(cert.EmailAddresses) != 0 {
		t.Errorf("cert carries requested names: DNS %v IP %v email %v", cert.DNSNames, cert.IPAddresses, cert.EmailAddresses)
	}
	if got, err := ServiceOf(cert); err != nil || got != "catalog" {
		t.Errorf("ServiceOf = %q, %v, want catalog", got, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Error("cert is not for the requested key")
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want digitalSignature only", cert.KeyUsage)
	}
	eku := map[x509.ExtKeyUsage]bool{}
	for _, u := range cert.ExtKeyUsage {
		eku[u] = true
	}
	if len(cert.ExtKeyUsage) != 2 || !eku[x509.ExtKeyUsageServerAuth] || !eku[x509.ExtKeyUsageClientAuth] {
		t.Errorf("ExtKeyUsage = %v, want serverAuth and clientAuth", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("workload cert is a CA")
	}
	if cert.NotBefore.After(before.Add(-50 * time.Second)) {
		t.Errorf("NotBefore = %s, want about a minute before %s", cert.NotBefore, before)
	}
	if d := cert.NotAfter.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("NotAfter - now = %s, want about 1h", d)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %s is not a positive 128-bit number", cert.SerialNumber)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("cert does not chain to the root: %v", err)
	}
	other, err := a.Sign(csrFor(t, key), "catalog", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestSignRefuses(t *testing.T) {
	a := testAuthority(t)
	good := csrFor(t, p256(t))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-10] ^= 0xff // inside the signature
	tests := []struct {
		name    string
		csr     []byte
		service string
		ttl     time.Duration
		want    string
	}{
		{"empty", nil, "catalog", time.Hour, "empty certificate request"},
		{"huge", make([]byte, 9000), "catalog", time.Hour, "at most"},
		{"garbage", []byte("not a csr"), "catalog", time.Hour, "bad certificate request"},
		{"truncated", good[:len(good)/2], "catalog", time.Hour, "bad certificate request"},
		{"bad signature", tampered, "catalog", time.Hour, "signature"},
		{"rsa", csrFor(t, rsaKey), "catalog", time.Hour, "want ECDSA P-256"},
		{"p384", csrFor(t, p384), "catalog", time.Hour, "want P-256"},
		{"ed25519", csrFor(t, edKey), "catalog", time.Hour, "want ECDSA P-256"},
		{"bad service", good, "Catalog", time.Hour, "invalid service name"},
		{"empty service", good, "", time.Hour, "invalid service name"},
		{"service with slash", good, "a/b", time.Hour, "invalid service name"},
		{"ttl zero", good, "catalog", 0, "out of range"},
		{"ttl too short", good, "catalog", 999 * time.Millisecond, "out of range"},
		{"ttl negative", good, "catalog", -time.Hour, "out of range"},
		{"ttl too long", good, "catalog", 24*time.Hour + time.Second, "out of range"},
	}
	for _, tt := range tests {
		cert, err := a.Sign(tt.csr, tt.service, tt.ttl)
		if err == nil {
			t.Errorf("%s: Sign succeeded (serial %s), want an error", tt.name, cert.SerialNumber)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Sign error = %q, want it to mention %q", tt.name, err, tt.want)
		}
	}
	for _, ttl := range []time.Duration{MinTTL, MaxTTL} {
		if _, err := a.Sign(good, "catalog", ttl); err != nil {
			t.Errorf("Sign with ttl %s: %v", ttl, err)
		}
	}
}

func TestIssue(t *testing.T) {
	a := testAuthority(t)
	nb := time.Now().Add(-2 * time.Hour)
	na := time.Now().Add(-time.Hour)
	c, err := a.Issue("orders", nb, na)
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf == nil || len(c.Certificate) != 1 || string(c.Certificate[0]) != string(c.Leaf.Raw) {
		t.Fatal("Issue: want Leaf set and the chain to be the leaf alone")
	}
	if !c.Leaf.NotAfter.Equal(na.Truncate(time.Second)) {
		t.Errorf("NotAfter = %s, want %s", c.Leaf.NotAfter, na)
	}
	if got, _ := ServiceOf(c.Leaf); got != "orders" {
		t.Errorf("ServiceOf = %q, want orders", got)
	}
	if !c.PrivateKey.(*ecdsa.PrivateKey).PublicKey.Equal(c.Leaf.PublicKey) {
		t.Error("private key does not match the leaf")
	}
	if _, err := a.Issue("orders", na, nb); err == nil {
		t.Error("Issue with notAfter before notBefore succeeded")
	}
	if _, err := a.Issue("Orders!", nb, na); err == nil {
		t.Error("Issue with an invalid service succeeded")
	}
}

func TestServingCertificate(t *testing.T) {
	a := testAuthority(t)
	c, err := a.ServingCertificate([]string{"localhost", "127.0.0.1", "::1", "cp.marquee.svc"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if got, err := ServiceOf(leaf); err != nil || got != "control-plane" {
		t.Errorf("ServiceOf = %q, %v, want control-plane", got, err)
	}
	if strings.Join(leaf.DNSNames, ",") != "localhost,cp.marquee.svc" || len(leaf.IPAddresses) != 2 {
		t.Errorf("SANs = DNS %v IP %v", leaf.DNSNames, leaf.IPAddresses)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.Roots(), DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	for _, hosts := range [][]string{{""}, {"bad host"}, {"a..b"}, {strings.Repeat("a", 64) + ".b"}} {
		if _, err := a.ServingCertificate(hosts, time.Hour); err == nil {
			t.Errorf("ServingCertificate(%q) succeeded", hosts)
		}
	}
	if _, err := a.ServingCertificate([]string{"localhost"}, 0); err == nil {
		t.Error("ServingCertificate with ttl 0 succeeded")
	}
}

func FuzzSign(f *testing.F) {
	a := testAuthority(f)
	f.Add(csrFor(f, p256(f)))
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, csr []byte) {
		cert, err := a.Sign(csr, "catalog", time.Hour)
		if err != nil {
			return
		}
		if len(cert.URIs) != 1 || cert.URIs[0].String() != ID("catalog") || len(cert.DNSNames) != 0 {
			t.Fatalf("signed cert has SANs URI %v DNS %v", cert.URIs, cert.DNSNames)
		}
	})
}
