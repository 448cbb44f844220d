package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// issuer signs requests with an in-memory Authority and records what it
// saw, as the control plane would.
type issuer struct {
	a   *Authority
	ttl time.Duration

	mu      sync.Mutex
	fail    int // calls left to fail
	calls   int
	serials []*big.Int
	keys    []*ecdsa.PublicKey
}

func (is *issuer) issue(_ context.Context, csrDER []byte) ([]byte, [][]byte, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.calls++
	if is.fail > 0 {
		is.fail--
		return nil, nil, errors.New("control plane unavailable")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, nil, err
	}
	cert, err := is.a.Sign(csrDER, "catalog", is.ttl)
	if err != nil {
		return nil, nil, err
	}
	is.serials = append(is.serials, cert.SerialNumber)
	is.keys = append(is.keys, csr.PublicKey.(*ecdsa.PublicKey))
	return cert.Raw, [][]byte{is.a.RootDER()}, nil
}

func (is *issuer) snapshot() (serials []*big.Int, keys []*ecdsa.PublicKey, calls int) {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]*big.Int(nil), is.serials...), append([]*ecdsa.PublicKey(nil), is.keys...), is.calls
}

// runWorkload runs w until the test ends and checks Run returns nil.
func runWorkload(t *testing.T, w *Workload) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
}

func waitReady(t *testing.T, w *Workload) {
	t.Helper()
	select {
	case <-w.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("workload not ready after 60s")
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkloadRenews(t *testing.T) {
	a := testAuthority(t)
	is := &issuer{a: a, ttl: 4 * time.Second}
	w := NewWorkload("catalog", is.issue, nil)
	if w.Service() != "catalog" {
		t.Errorf("Service = %q", w.Service())
	}
	runWorkload(t, w)
	waitReady(t, w)

	addr, seen := serveTLS(t, w.ServerTLS())
	client := StaticWorkload("orders", valid(t, a, "orders"), a.Roots())
	serverSerial := func() *big.Int {
		t.Helper()
		got, cs, err := dial(t, addr, client.ClientTLS("catalog"))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if h := <-seen; h.err != nil || got != "orders" {
			t.Fatalf("server saw %+v, client got %q", h, got)
		}
		return cs.PeerCertificates[0].SerialNumber
	}
	first := serverSerial()
	// Every certificate the first connection could have seen is among the
	// first n issued.
	n := w.Renewals()

	eventually(t, "two more renewals", func() bool { return w.Renewals() >= n+2 })
	later := serverSerial()
	if later.Cmp(first) == 0 {
		t.Fatalf("connection after renewals saw the old serial %x", first)
	}
	serials, keys, _ := is.snapshot()
	if !containsSerial(serials[:n], first) {
		t.Errorf("first connection saw serial %x, not an issued certificate", first)
	}
	if !containsSerial(serials[n:], later) {
		t.Errorf("connection after renewals saw serial %x, not a renewed certificate", later)
	}
	for i := range keys {
		for j := range i {
			if keys[i].Equal(keys[j]) {
				t.Errorf("certificates %d and %d share a key", j, i)
			}
		}
	}
	if na := w.NotAfter(); na.Before(time.Now().Add(-time.Second)) || na.After(time.Now().Add(5*time.Second)) {
		t.Errorf("NotAfter = %s, want within the 4s lifetime of a recent certificate", na)
	}
}

func TestWorkloadRetries(t *testing.T) {
	a := testAuthority(t)
	is := &issuer{a: a, ttl: time.Hour, fail: 2}
	w := NewWorkload("catalog", is.issue, nil)
	runWorkload(t, w)
	waitReady(t, w)
	if _, _, calls := is.snapshot(); calls != 3 {
		t.Errorf("issuer calls = %d, want 3 (two failures, then success)", calls)
	}
	if w.Renewals() != 1 {
		t.Errorf("Renewals = %d, want 1", w.Renewals())
	}
	if d := time.Until(w.NotAfter()); d < 59*time.Minute {
		t.Errorf("NotAfter in %s, want about 1h", d)
	}
}

func TestWorkloadRefusesBadIssue(t *testing.T) {
	a := testAuthority(t)
	other := testAuthority(t)
	type call struct {
		cert  []byte
		roots [][]byte
	}
	tests := []struct {
		name string
		give func(csr []byte) call
		want string
	}{
		{"other service", func(csr []byte) call {
			c, err := a.Sign(csr, "billing", time.Hour)
			if err != nil {
				return call{}
			}
			return call{c.Raw, [][]byte{a.RootDER()}}
		}, `is for "billing"`},
		{"other key", func([]byte) call {
			return call{valid(t, a, "catalog").Certificate[0], [][]byte{a.RootDER()}}
		}, "requested key"},
		{"other root", func(csr []byte) call {
			c, err := a.Sign(csr, "catalog", time.Hour)
			if err != nil {
				return call{}
			}
			return call{c.Raw, [][]byte{other.RootDER()}}
		}, "unknown authority"},
		{"no roots", func(csr []byte) call {
			c, err := a.Sign(csr, "catalog", time.Hour)
			if err != nil {
				return call{}
			}
			return call{c.Raw, nil}
		}, "no roots"},
		{"garbage", func([]byte) call { return call{[]byte("x"), [][]byte{a.RootDER()}} }, "issued certificate"},
	}
	for _, tt := range tests {
		errs := make(chan error, 1)
		var once sync.Once
		// The first failure is observed through the log.
		log := logTo(func(msg string, err error) { once.Do(func() { errs <- err }) })
		w := NewWorkload("catalog", func(_ context.Context, csr []byte) ([]byte, [][]byte, error) {
			c := tt.give(csr)
			return c.cert, c.roots, nil
		}, log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		var err error
		select {
		case err = <-errs:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: no failure reported", tt.name)
		}
		cancel()
		<-done
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: renewal error = %v, want it to mention %q", tt.name, err, tt.want)
		}
		select {
		case <-w.Ready():
			t.Errorf("%s: workload became ready", tt.name)
		default:
		}
	}
}

func TestWorkloadRun(t *testing.T) {
	if err := NewWorkload("Bad Name", func(context.Context, []byte) ([]byte, [][]byte, error) {
		return nil, nil, errors.New("unused")
	}, nil).Run(context.Background()); err == nil {
		t.Error("Run with an invalid service name succeeded")
	}

	a := testAuthority(t)
	w := StaticWorkload("catalog", valid(t, a, "catalog"), a.Roots())
	select {
	case <-w.Ready():
	default:
		t.Error("static workload is not ready")
	}
	if w.Renewals() != 1 || w.NotAfter().IsZero() {
		t.Errorf("static: Renewals = %d, NotAfter = %s", w.Renewals(), w.NotAfter())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	eventually(t, "Run is running", func() bool { return w.running.Load() })
	if err := w.Run(ctx); err == nil {
		t.Error("second concurrent Run succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}

	// A static certificate without Leaf still reports its expiry.
	c := valid(t, a, "catalog")
	want := c.Leaf.NotAfter
	c.Leaf = nil
	if got := StaticWorkload("catalog", c, a.Roots()).NotAfter(); !got.Equal(want) {
		t.Errorf("NotAfter = %s, want %s", got, want)
	}
}

func TestRenewDelay(t *testing.T) {
	now := time.Now()
	for _, left := range []time.Duration{time.Hour, 4 * time.Second, 100 * time.Millisecond} {
		d := renewDelay(now, now.Add(left))
		if d > left/2 || d < left/2-left/20-time.Nanosecond && d != minRetry {
			t.Errorf("renewDelay(%s left) = %s, want about half", left, d)
		}
	}
	if d := renewDelay(now, now.Add(-time.Second)); d != minRetry {
		t.Errorf("renewDelay(expired) = %s, want %s", d, minRetry)
	}
}

func TestRetryDelay(t *testing.T) {
	now := time.Now()
	w := NewWorkload("catalog", nil, nil)
	if d := w.retryDelay(30*time.Second, now); d > 30*time.Second || d < 24*time.Second {
		t.Errorf("without a certificate: retryDelay(30s) = %s, want 24s..30s", d)
	}
	a := testAuthority(t)
	c := issue(t, a, "catalog", now.Add(-time.Minute), now.Add(20*time.Second))
	w.store(&identity{cert: &c, roots: a.Roots()})
	if d := w.retryDelay(30*time.Second, now); d > 5*time.Second {
		t.Errorf("20s before expiry: retryDelay(30s) = %s, want at most 5s", d)
	}
}

func containsSerial(serials []*big.Int, s *big.Int) bool {
	for _, x := range serials {
		if x.Cmp(s) == 0 {
			return true
		}
	}
	return false
}

// logTo returns a logger that hands each record's message and "err"
// attribute to fn.
func logTo(fn func(msg string, err error)) *slog.Logger {
	return slog.New(funcHandler(fn))
}

type funcHandler func(msg string, err error)

func (h funcHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h funcHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h funcHandler) WithGroup(string) slog.Handler            { return h }
func (h funcHandler) Handle(_ context.Context, r slog.Record) error {
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			if e, ok := a.Value.Any().(error); ok {
				err = e
			} else {
				err = errors.New(a.Value.String())
			}
		}
		return true
	})
	if err != nil {
		h(r.Message, err)
	}
	return nil
}
