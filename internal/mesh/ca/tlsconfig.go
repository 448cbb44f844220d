package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// nextProtos lets one listener serve HTTP/2 (gRPC) and HTTP/1.1.
var nextProtos = []string{"h2", "http/1.1"}

var errNoCertificate = errors.New("ca: no mesh certificate yet")

// ServerTLS returns the configuration of an mTLS server. Each handshake
// presents the current certificate, so a renewal takes effect without
// restarting listeners, and requires a client certificate that chains to
// the current roots, is valid now, and carries a service SPIFFE ID in
// TrustDomain. The caller's service is then ServiceOf(PeerCertificates[0]).
// Each call returns a new Config that the caller may change.
func (w *Workload) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return w.currentCert()
		},
		// Verification is done by hand against the roots current at
		// handshake time, which a fixed ClientCAs could not follow. It runs
		// on resumed sessions too, so a ticket does not outlive a
		// certificate or a root.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := w.verifyPeer(cs.PeerCertificates, x509.ExtKeyUsageClientAuth)
			return err
		},
	}
}

// ClientTLS returns the configuration for dialing the sidecar of service:
// it presents the current certificate and accepts only a server whose
// certificate chains to the current roots, is valid now and carries exactly
// ID(service). Each call returns a new Config that the caller may change.
func (w *Workload) ClientTLS(service string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: nextProtos,
		ServerName: service,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return w.currentCert()
		},
		// Mesh certificates carry no DNS names, so the standard host name
		// check is replaced by the SPIFFE ID check below; the chain is
		// still verified in full.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := w.verifyPeer(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if got != service {
				return fmt.Errorf("ca: server is %q, want %q", got, service)
			}
			return nil
		},
	}
}

func (w *Workload) currentCert() (*tls.Certificate, error) {
	id := w.cur.Load()
	if id == nil {
		return nil, errNoCertificate
	}
	return id.cert, nil
}

// verifyPeer checks a peer's chain against the current roots and returns
// the service it names.
func (w *Workload) verifyPeer(chain []*x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	id := w.cur.Load()
	if id == nil || id.roots == nil {
		return "", errors.New("ca: no mesh roots yet")
	}
	if len(chain) == 0 {
		return "", errors.New("ca: peer sent no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:       id.roots,
		CurrentTime: time.Now(),
		KeyUsages:   []x509.ExtKeyUsage{usage},
	}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return "", fmt.Errorf("ca: peer certificate: %w", err)
	}
	return ServiceOf(chain[0])
}
