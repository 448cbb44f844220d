package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// IssueFunc asks the control plane to sign csrDER (a PKCS#10 request in
// DER) and returns the certificate and the current mesh roots, all in DER.
type IssueFunc func(ctx context.Context, csrDER []byte) (certDER []byte, rootsDER [][]byte, err error)

// Retry and renewal timing of Workload.Run.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
	// minRetry keeps a retry loop against an almost expired certificate
	// from spinning.
	minRetry = 50 * time.Millisecond
	// maxAttempt bounds one call of the IssueFunc.
	maxAttempt = 30 * time.Second
)

// Workload holds a sidecar's current certificate and the mesh roots, and
// renews the certificate while Run runs. It is safe for concurrent use; the
// TLS configurations it builds always use the current certificate and roots.
type Workload struct {
	service string
	issue   IssueFunc
	log     *slog.Logger

	cur      atomic.Pointer[identity]
	ready    chan struct{}
	once     sync.Once
	renewals atomic.Int64
	running  atomic.Bool
}

// identity is one certificate and the roots that came with it; it is
// replaced whole, never modified.
type identity struct {
	cert  *tls.Certificate
	roots *x509.CertPool
}

// NewWorkload returns a Workload for service that obtains certificates by
// calling issue. Call Run to obtain and renew them.
func NewWorkload(service string, issue IssueFunc, log *slog.Logger) *Workload {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Workload{service: service, issue: issue, log: log, ready: make(chan struct{})}
}

// StaticWorkload returns a Workload that holds cert and roots for good; it
// is Ready at once and Run only waits for its context.
func StaticWorkload(service string, cert tls.Certificate, roots *x509.CertPool) *Workload {
	w := NewWorkload(service, nil, nil)
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			cert.Leaf = leaf
		}
	}
	w.store(&identity{cert: &cert, roots: roots})
	return w
}

// Service returns the service the Workload is for.
func (w *Workload) Service() string { return w.service }

// Ready is closed once a certificate is held.
func (w *Workload) Ready() <-chan struct{} { return w.ready }

// Renewals reports how many certificates have been obtained, the first
// included.
func (w *Workload) Renewals() int { return int(w.renewals.Load()) }

// NotAfter returns the expiry of the current certificate, or the zero time
// when none is held.
func (w *Workload) NotAfter() time.Time {
	id := w.cur.Load()
	if id == nil || id.cert.Leaf == nil {
		return time.Time{}
	}
	return id.cert.Leaf.NotAfter
}

// Certificate returns the current certificate, or nil when none is held.
func (w *Workload) Certificate() *tls.Certificate {
	if id := w.cur.Load(); id != nil {
		return id.cert
	}
	return nil
}

// Roots returns the current mesh roots, or nil when none are held.
func (w *Workload) Roots() *x509.CertPool {
	if id := w.cur.Load(); id != nil {
		return id.roots
	}
	return nil
}

func (w *Workload) store(id *identity) {
	w.cur.Store(id)
	w.renewals.Add(1)
	w.once.Do(func() { close(w.ready) })
}

// Run obtains a certificate, then renews it at about half its remaining
// lifetime, each time with a new key, until ctx ends; then it returns nil.
// A failed attempt is retried with backoff from 1s to 30s, and always well
// before the current certificate expires.
func (w *Workload) Run(ctx context.Context) error {
	if err := ValidService(w.service); err != nil {
		return err
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("ca: workload is already running")
	}
	defer w.running.Store(false)
	if w.issue == nil {
		<-ctx.Done()
		return nil
	}
	var backoff time.Duration
	for {
		wait, err := w.renew(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait = w.retryDelay(backoff, time.Now())
			w.log.Warn("mesh certificate renewal failed; will retry",
				"service", w.service, "err", err, "retry_in", wait, "current_not_after", w.NotAfter())
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// retryDelay caps backoff so that, while a certificate is still held, a
// retry comes well before it expires.
func (w *Workload) retryDelay(backoff time.Duration, now time.Time) time.Duration {
	if na := w.NotAfter(); !na.IsZero() {
		backoff = min(backoff, max(na.Sub(now)/4, minRetry))
	}
	// Jitter keeps sidecars that failed together from retrying together.
	return backoff - time.Duration(mrand.Int64N(int64(backoff)/5+1))
}

// renewDelay is when to renew a certificate valid until notAfter, seen at
// now: half of what is left, less up to a twentieth of it as jitter.
func renewDelay(now, notAfter time.Time) time.Duration {
	left := notAfter.Sub(now)
	if left <= 0 {
		return minRetry
	}
	d := left/2 - time.Duration(mrand.Int64N(int64(left)/20+1))
	return max(d, minRetry)
}

// renew obtains and stores one certificate and says when to renew it.
func (w *Workload) renew(ctx context.Context) (time.Duration, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, fmt.Errorf("ca: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: w.service},
		URIs:    []*url.URL{idURL(w.service)},
	}, key)
	if err != nil {
		return 0, fmt.Errorf("ca: create certificate request: %w", err)
	}
	attempt := maxAttempt
	if na := w.NotAfter(); !na.IsZero() {
		attempt = min(attempt, max(time.Until(na)/2, 2*time.Second))
	}
	actx, cancel := context.WithTimeout(ctx, attempt)
	certDER, rootsDER, err := w.issue(actx, csr)
	cancel()
	if err != nil {
		return 0, err
	}
	id, err := checkIssued(w.service, key, certDER, rootsDER, time.Now())
	if err != nil {
		return 0, err
	}
	w.store(id)
	leaf := id.cert.Leaf
	w.log.Info("mesh certificate obtained", "service", w.service,
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
	return renewDelay(time.Now(), leaf.NotAfter), nil
}

// checkIssued refuses a certificate that would only fail later, in a
// handshake: one for another identity or key, not chaining to the roots
// sent with it, or not valid now.
func checkIssued(service string, key *ecdsa.PrivateKey, certDER []byte, rootsDER [][]byte, now time.Time) (*identity, error) {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("ca: issued certificate: %w", err)
	}
	if len(rootsDER) == 0 {
		return nil, errors.New("ca: issuer sent no roots")
	}
	roots := x509.NewCertPool()
	for i, der := range rootsDER {
		root, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("ca: root %d: %w", i, err)
		}
		roots.AddCert(root)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, errors.New("ca: issued certificate is not for the requested key")
	}
	got, err := ServiceOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("ca: issued certificate: %w", err)
	}
	if got != service {
		return nil, fmt.Errorf("ca: issued certificate is for %q, want %q", got, service)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, fmt.Errorf("ca: issued certificate: %w", err)
	}
	return &identity{
		cert:  &tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: leaf},
		roots: roots,
	}, nil
}
