package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Limits on certificate lifetimes.
const (
	// MinTTL and MaxTTL bound the lifetime Sign accepts for a workload
	// certificate: short enough that a leaked key soon stops mattering,
	// long enough to be worth a round trip.
	MinTTL = time.Second
	MaxTTL = 24 * time.Hour
	// MaxServingTTL bounds ServingCertificate; the control plane renews its
	// own serving certificate.
	MaxServingTTL = 365 * 24 * time.Hour

	// clockSkew backdates NotBefore so a peer whose clock is a little behind
	// accepts a certificate issued a moment ago.
	clockSkew = time.Minute
	rootTTL   = 10 * 365 * 24 * time.Hour
	rootName  = "Marquee mesh root"
	// maxCSR is far above a P-256 request (about 300 bytes with names).
	maxCSR = 8 << 10
)

// ControlPlaneService is the identity the control plane's serving
// certificate carries.
const ControlPlaneService = "control-plane"

// Authority is the mesh root CA. It is immutable once made and safe for
// concurrent use.
type Authority struct {
	root    *x509.Certificate
	key     crypto.Signer
	rootPEM []byte
	pool    *x509.CertPool
}

// NewInMemory returns an Authority with a fresh root that is stored nowhere.
func NewInMemory() (*Authority, error) {
	certDER, key, err := newRoot()
	if err != nil {
		return nil, err
	}
	return newAuthority(certDER, key)
}

// newRoot makes a self-signed root certificate and its key.
func newRoot() (certDER []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: rootName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(rootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Workload certificates are signed directly by the root.
		MaxPathLenZero: true,
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: create root: %w", err)
	}
	return certDER, key, nil
}

// newAuthority checks that certDER is a usable root whose public key is
// key's.
func newAuthority(certDER []byte, key crypto.Signer) (*Authority, error) {
	root, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("ca: parse root: %w", err)
	}
	if !root.IsCA || root.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("ca: root certificate is not a CA")
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || !pub.Equal(root.PublicKey) {
		return nil, errors.New("ca: root key does not match the root certificate")
	}
	if now := time.Now(); now.After(root.NotAfter) {
		return nil, fmt.Errorf("ca: root certificate expired at %s", root.NotAfter.UTC().Format(time.RFC3339))
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &Authority{
		root:    root,
		key:     key,
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		pool:    pool,
	}, nil
}

// Roots returns a pool holding the root certificate. Callers may not
// modify it.
func (a *Authority) Roots() *x509.CertPool { return a.pool }

// Root returns the root certificate.
func (a *Authority) Root() *x509.Certificate { return a.root }

// RootDER returns the root certificate in DER.
func (a *Authority) RootDER() []byte { return append([]byte(nil), a.root.Raw...) }

// RootPEM returns the root certificate in PEM.
func (a *Authority) RootPEM() []byte { return append([]byte(nil), a.rootPEM...) }

// Sign issues a workload certificate for service from a PKCS#10 request.
// The request must be self-signed and hold an ECDSA P-256 public key; any
// names in it are ignored. The certificate's only SAN is ID(service), and
// it is valid from a minute ago (for clock skew) until ttl from now.
func (a *Authority) Sign(csrDER []byte, service string, ttl time.Duration) (*x509.Certificate, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return nil, fmt.Errorf("ca: certificate lifetime %s is out of range [%s, %s]", ttl, MinTTL, MaxTTL)
	}
	if len(csrDER) == 0 {
		return nil, errors.New("ca: empty certificate request")
	}
	if len(csrDER) > maxCSR {
		return nil, fmt.Errorf("ca: certificate request is %d bytes, want at most %d", len(csrDER), maxCSR)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("ca: bad certificate request: %w", err)
	}
	// The key type is checked first: it is cheap, and it keeps costly
	// signature checks (large RSA keys, say) off the path of bad input.
	pub, err := p256Key(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: certificate request signature: %w", err)
	}
	now := time.Now()
	return a.sign(pub, service, now.Add(-clockSkew), now.Add(ttl), nil, nil)
}

// p256Key returns pub when it is an ECDSA P-256 public key.
func p256Key(pub any) (*ecdsa.PublicKey, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("ca: certificate request key is %T, want ECDSA P-256", pub)
	}
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("ca: certificate request key is on curve %s, want P-256", k.Curve.Params().Name)
	}
	return k, nil
}

// Issue generates a key and a certificate for service valid from notBefore
// to notAfter, without the lifetime limits of Sign. It serves tests (an
// expired certificate, say) and the control plane's own client identity.
// The result's Leaf is set and its chain is the leaf alone.
func (a *Authority) Issue(service string, notBefore, notAfter time.Time) (tls.Certificate, error) {
	if err := ValidService(service); err != nil {
		return tls.Certificate{}, err
	}
	if !notAfter.After(notBefore) {
		return tls.Certificate{}, errors.New("ca: notAfter must be after notBefore")
	}
	return a.issue(service, notBefore, notAfter, nil, nil)
}

// ServingCertificate issues the control plane's TLS server certificate: a
// DNS or IP SAN for each of hosts plus the URI ID(ControlPlaneService),
// valid for ttl (at most MaxServingTTL).
func (a *Authority) ServingCertificate(hosts []string, ttl time.Duration) (tls.Certificate, error) {
	if ttl < MinTTL || ttl > MaxServingTTL {
		return tls.Certificate{}, fmt.Errorf("ca: serving certificate lifetime %s is out of range [%s, %s]", ttl, MinTTL, MaxServingTTL)
	}
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if err := validHostname(h); err != nil {
			return tls.Certificate{}, err
		}
		dns = append(dns, h)
	}
	now := time.Now()
	return a.issue(ControlPlaneService, now.Add(-clockSkew), now.Add(ttl), dns, ips)
}

func validHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("ca: invalid host name %q", truncate(h, 80))
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("ca: invalid host name %q", truncate(h, 80))
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*') {
				return fmt.Errorf("ca: invalid host name %q", truncate(h, 80))
			}
		}
	}
	return nil
}

func (a *Authority) issue(service string, notBefore, notAfter time.Time, dns []string, ips []net.IP) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: generate key: %w", err)
	}
	leaf, err := a.sign(&key.PublicKey, service, notBefore, notAfter, dns, ips)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func (a *Authority) sign(pub *ecdsa.PublicKey, service string, notBefore, notAfter time.Time, dns []string, ips []net.IP) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	// A certificate never outlives the root that vouches for it.
	if notAfter.After(a.root.NotAfter) {
		notAfter = a.root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: service},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{idURL(service)},
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.root, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate for %s: %w", service, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse issued certificate: %w", err)
	}
	return cert, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("ca: serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
