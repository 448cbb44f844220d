package ca

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// handshake is what the test server saw of one connection.
type handshake struct {
	service string
	err     error
}

// serveTLS runs a TLS server on 127.0.0.1:0 that answers each verified
// client with its service name and reports every handshake.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, seen <-chan handshake) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan handshake, 16)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*tls.Conn)
			tc.SetDeadline(time.Now().Add(30 * time.Second))
			if err := tc.Handshake(); err != nil {
				ch <- handshake{err: err}
				tc.Close()
				continue
			}
			svc, err := ServiceOf(tc.ConnectionState().PeerCertificates[0])
			if err == nil {
				_, err = io.WriteString(tc, svc+"\n")
			}
			ch <- handshake{service: svc, err: err}
			tc.Close()
		}
	}()
	return ln.Addr().String(), ch
}

// dial connects with cfg and returns the server's answer line, or the first
// error of the dial, the handshake or the read.
func dial(t *testing.T, addr string, cfg *tls.Config) (string, *tls.ConnectionState, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tc := conn.(*tls.Conn)
	cs := tc.ConnectionState()
	// In TLS 1.3 the server judges the client's certificate after the
	// client's handshake is done; a refusal shows on the first read.
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		return "", &cs, err
	}
	return strings.TrimSuffix(line, "\n"), &cs, nil
}

func issue(t testing.TB, a *Authority, service string, nb, na time.Time) tls.Certificate {
	t.Helper()
	c, err := a.Issue(service, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func valid(t testing.TB, a *Authority, service string) tls.Certificate {
	return issue(t, a, service, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

// rootSigned signs tmpl with a's root directly, to make certificates the
// Authority's API never would.
func rootSigned(t testing.TB, a *Authority, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key := p256(t)
	tmpl.SerialNumber = big.NewInt(42)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Minute)
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.root, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestServerTLS(t *testing.T) {
	a := testAuthority(t)
	foreign := testAuthority(t)
	server := StaticWorkload("catalog", valid(t, a, "catalog"), a.Roots())
	addr, seen := serveTLS(t, server.ServerTLS())

	// client trusts a's root and presents cert, if any.
	client := func(cert *tls.Certificate) *tls.Config {
		cfg := StaticWorkload("orders", tls.Certificate{}, a.Roots()).ClientTLS("catalog")
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert == nil {
				return &tls.Certificate{}, nil
			}
			return cert, nil
		}
		return cfg
	}
	good := valid(t, a, "orders")
	got, cs, err := dial(t, addr, client(&good))
	if err != nil {
		t.Fatalf("good client refused: %v", err)
	}
	if got != "orders" {
		t.Errorf("server saw caller %q, want orders", got)
	}
	if h := <-seen; h.err != nil || h.service != "orders" {
		t.Errorf("server handshake = %+v, want orders", h)
	}
	if cs.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN = %q, want h2", cs.NegotiatedProtocol)
	}

	bad := []struct {
		name string
		cert *tls.Certificate
		want string // in the server's handshake error
	}{
		{"no certificate", nil, "certificate"},
		{"foreign authority", ptr(valid(t, foreign, "orders")), "unknown authority"},
		{"expired", ptr(issue(t, a, "orders", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))), "expired"},
		{"not yet valid", ptr(issue(t, a, "orders", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))), "not yet valid"},
		{"no SPIFFE ID", ptr(rootSigned(t, a, &x509.Certificate{
			Subject:     pkix.Name{CommonName: "orders"},
			DNSNames:    []string{"orders"},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})), "no SPIFFE ID"},
		{"foreign trust domain", ptr(rootSigned(t, a, &x509.Certificate{
			URIs:        []*url.URL{mustURL(t, "spiffe://example.org/svc/orders")},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})), "trust domain"},
		{"server-only usage", ptr(rootSigned(t, a, &x509.Certificate{
			URIs:        []*url.URL{idURL("orders")},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})), "usage"},
	}
	for _, tt := range bad {
		got, _, err := dial(t, addr, client(tt.cert))
		if err == nil {
			t.Errorf("%s: client accepted, server answered %q", tt.name, got)
		}
		h := <-seen
		if h.err == nil {
			t.Errorf("%s: server handshake succeeded for %q", tt.name, h.service)
			continue
		}
		if !strings.Contains(h.err.Error(), tt.want) {
			t.Errorf("%s: server error = %q, want it to mention %q", tt.name, h.err, tt.want)
		}
	}

	// A plaintext client gets nowhere.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: catalog\r\n\r\n")
	if h := <-seen; h.err == nil {
		t.Error("plaintext client accepted")
	}
	conn.Close()
}

func TestClientTLS(t *testing.T) {
	a := testAuthority(t)
	foreign := testAuthority(t)
	client := StaticWorkload("orders", valid(t, a, "orders"), a.Roots())
	tests := []struct {
		name   string
		server tls.Certificate
		want   string // in the client's error; "" means accepted
	}{
		{"right service", valid(t, a, "catalog"), ""},
		{"other service", valid(t, a, "billing"), `server is "billing", want "catalog"`},
		{"foreign authority", valid(t, foreign, "catalog"), "unknown authority"},
		{"expired", issue(t, a, "catalog", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)), "expired"},
		{"client-only usage", rootSigned(t, a, &x509.Certificate{
			URIs:        []*url.URL{idURL("catalog")},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}), "usage"},
	}
	for _, tt := range tests {
		server := StaticWorkload("catalog", tt.server, a.Roots())
		addr, seen := serveTLS(t, server.ServerTLS())
		got, _, err := dial(t, addr, client.ClientTLS("catalog"))
		<-seen
		if tt.want == "" {
			if err != nil || got != "orders" {
				t.Errorf("%s: dial = %q, %v, want the server to see orders", tt.name, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: dial error = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
}

// TestHTTPOverMTLS runs the configurations as a sidecar pair would: an
// HTTP server (HTTP/2 and HTTP/1.1) that names its caller from the
// verified certificate.
func TestHTTPOverMTLS(t *testing.T) {
	a := testAuthority(t)
	server := StaticWorkload("catalog", valid(t, a, "catalog"), a.Roots())
	client := StaticWorkload("orders", valid(t, a, "orders"), a.Roots())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: server.ServerTLS(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			caller, err := ServiceOf(r.TLS.PeerCertificates[0])
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			io.WriteString(w, caller+" "+r.Proto)
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	for _, h2 := range []bool{true, false} {
		cfg := client.ClientTLS("catalog")
		if !h2 {
			cfg.NextProtos = []string{"http/1.1"}
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: h2}
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "orders HTTP/1.1"
		if h2 {
			want = "orders HTTP/2.0"
		}
		if string(body) != want {
			t.Errorf("h2=%v: body = %q, want %q", h2, body, want)
		}
	}
}

func TestNoCertificateYet(t *testing.T) {
	w := NewWorkload("catalog", func(context.Context, []byte) ([]byte, [][]byte, error) {
		return nil, nil, errors.New("unreachable")
	}, nil)
	select {
	case <-w.Ready():
		t.Fatal("Ready before any certificate")
	default:
	}
	if !w.NotAfter().IsZero() || w.Renewals() != 0 {
		t.Errorf("NotAfter = %s, Renewals = %d, want zero", w.NotAfter(), w.Renewals())
	}
	a := testAuthority(t)
	addr, seen := serveTLS(t, w.ServerTLS())
	if _, _, err := dial(t, addr, StaticWorkload("orders", valid(t, a, "orders"), a.Roots()).ClientTLS("catalog")); err == nil {
		t.Error("a server without a certificate completed a handshake")
	}
	if h := <-seen; h.err == nil {
		t.Error("server handshake succeeded without a certificate")
	}
}

func ptr[T any](v T) *T { return &v }

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
