package keys_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/keys"
	"github.com/marquee-tv/marquee/internal/identity/store"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock shared by managers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func manager(t *testing.T, db *storage.DB, c *clock, opts keys.Options) *keys.Manager {
	t.Helper()
	opts.Now = c.now
	m, err := keys.New(store.New(db, store.Options{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func jwks(t *testing.T, m *keys.Manager) *token.Keyset {
	t.Helper()
	list, err := m.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.NewKeyset(list)
	if err != nil {
		t.Fatalf("the published JWKS does not parse: %v", err)
	}
	return ks
}

func signNow(t *testing.T, m *keys.Manager, c *clock) (string, string) {
	t.Helper()
	kid, key, err := m.Signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at := c.now()
	tok, err := token.Sign(token.Claims{AccountID: "a", SessionID: "s", IssuedAt: at, NotBefore: at, ExpiresAt: at.Add(token.TTL)}, kid, key)
	if err != nil {
		t.Fatal(err)
	}
	return kid, tok
}

func stateOf(t *testing.T, m *keys.Manager, kid string) domain.KeyState {
	t.Helper()
	sts, err := m.Statuses(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.KID == kid {
			return s.State
		}
	}
	return ""
}

func TestBootstrapAndRotation(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "identity", store.Migrations)
	c := &clock{t: t0}
	m := manager(t, db, c, keys.Options{})
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	kidA, tokA := signNow(t, m, c)
	if ks := jwks(t, m); ks.Len() != 2 {
		t.Fatalf("JWKS after the first start has %d keys, want current and next", ks.Len())
	}
	sts, _ := m.Statuses(ctx)
	var nextKID string
	for _, s := range sts {
		if s.State == domain.KeyNext {
			nextKID = s.KID
		}
	}
	// Rotation promotes the published next key: it was in the JWKS before
	// it signed anything.
	c.add(time.Minute)
	before := jwks(t, m)
	kidB, err := m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kidB != nextKID || kidB == kidA {
		t.Fatalf("Rotate made %s current, want the next key %s", kidB, nextKID)
	}
	if _, ok := before.Lookup(kidB); !ok {
		t.Error("the new current key was not in the JWKS published before the rotation")
	}
	after := jwks(t, m)
	if after.Len() != 3 || stateOf(t, m, kidA) != domain.KeyRetired {
		t.Errorf("JWKS after rotation has %d keys and A is %q; want 3 with A retired", after.Len(), stateOf(t, m, kidA))
	}
	// The old token verifies against both the JWKS of its time and today's.
	for name, ks := range map[string]*token.Keyset{"before": before, "after": after} {
		if _, err := token.Verify(tokA, ks, c.now()); err != nil {
			t.Errorf("token of the retired key against the JWKS %s rotation: %v", name, err)
		}
	}
	if kid, tokB := signNow(t, m, c); kid != kidB {
		t.Errorf("Signer after rotation = %s, want %s", kid, kidB)
	} else if _, err := token.Verify(tokB, after, c.now()); err != nil {
		t.Errorf("token of the new key: %v", err)
	}
	// The retired key stays published until its overlap has passed, then
	// disappears, and its tokens are long expired by then.
	c.add(keys.Overlap - time.Second)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := jwks(t, m).Lookup(kidA); !ok {
		t.Error("the retired key left the JWKS before its overlap")
	}
	c.add(time.Second)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := jwks(t, m).Lookup(kidA); ok {
		t.Error("the retired key is still published after its overlap")
	}
	var private string
	if err := db.QueryRow(ctx, "SELECT private_key FROM signing_keys WHERE kid = $1", kidA).Scan(&private); err != nil || private != "" {
		t.Errorf("removed key's private half = %q, %v; want erased", private, err)
	}
}

func TestScheduledRotation(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "identity", store.Migrations)
	c := &clock{t: t0}
	m := manager(t, db, c, keys.Options{Lifetime: time.Hour})
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	kidA, _ := signNow(t, m, c)
	c.add(59 * time.Minute)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := signNow(t, m, c); kid != kidA {
		t.Fatalf("key rotated before its lifetime: %s", kid)
	}
	c.add(time.Minute)
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if kid, _ := signNow(t, m, c); kid == kidA {
		t.Error("key not rotated at the end of its lifetime")
	}
	if _, err := keys.New(store.New(db, store.Options{}), keys.Options{Lifetime: 10 * time.Minute}); err == nil {
		t.Error("keys.New accepted a lifetime shorter than the overlap")
	}
}

// TestReplicas: two replicas share the keys; one rotates, the other keeps
// signing with its snapshot for at most RefreshInterval, and its tokens
// still verify until they expire.
func TestReplicas(t *testing.T) {
	storagetest.ForEach(t, "identity", store.Migrations, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		c := &clock{t: t0}
		a := manager(t, db, c, keys.Options{})
		b := manager(t, db, c, keys.Options{})
		// Both start at once on an empty database: one set of keys results.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, m := range []*keys.Manager{a, b} {
			wg.Go(func() { errs[i] = m.Maintain(ctx) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("concurrent first starts: %v, %v", errs[0], errs[1])
		}
		kidA, _ := signNow(t, a, c)
		kidB, _ := signNow(t, b, c)
		if kidA != kidB || jwks(t, a).Len() != 2 {
			t.Fatalf("replicas sign with %s and %s (JWKS of %d); want one current key and one next", kidA, kidB, jwks(t, a).Len())
		}
		old := kidA
		c.add(time.Minute)
		signNow(t, b, c) // b reloads its snapshot now
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		// b has not reloaded yet: it still signs with the retired key.
		c.add(keys.RefreshInterval - time.Second)
		kid, late := signNow(t, b, c)
		if kid != old {
			t.Fatalf("b signs with %s, want its snapshot's %s", kid, old)
		}
		// That token stays verifiable, against every JWKS published, until
		// it expires (with the verifier's leeway).
		expiry := c.now().Add(token.TTL + token.Leeway - time.Second)
		c.t = expiry
		if err := a.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := token.Verify(late, jwks(t, a), c.now()); err != nil {
			t.Errorf("a token signed by a stale replica fails at the end of its life: %v", err)
		}
		// Past the snapshot's age, b signs with the new key.
		if kid, _ := signNow(t, b, c); kid == old {
			t.Error("b still signs with the retired key after RefreshInterval")
		}
	})
}

func TestSealedKeys(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "identity", store.Migrations)
	c := &clock{t: t0}
	kek := []byte(strings.Repeat("k", 32))
	m := manager(t, db, c, keys.Options{KeyEncryptionKey: kek})
	if err := m.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	kid, _ := signNow(t, m, c)
	var private string
	if err := db.QueryRow(ctx, "SELECT private_key FROM signing_keys WHERE kid = $1", kid).Scan(&private); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(private, "aesgcm:") {
		t.Errorf("stored private key = %.10q..., want sealed", private)
	}
	for name, opts := range map[string]keys.Options{
		"no key-encryption key":    {},
		"wrong key-encryption key": {KeyEncryptionKey: []byte(strings.Repeat("x", 32))},
	} {
		other := manager(t, db, c, opts)
		if _, _, err := other.Signer(ctx); err == nil {
			t.Errorf("Signer with %s = nil error, want refused", name)
		}
	}
	if _, err := keys.New(store.New(db, store.Options{}), keys.Options{KeyEncryptionKey: []byte("short")}); err == nil {
		t.Error("keys.New accepted a 5-byte key-encryption key")
	}
	// Plain keys stay readable after a key-encryption key is configured.
	plainDB := storagetest.OpenSQLite(t, "identity", store.Migrations)
	if err := manager(t, plainDB, c, keys.Options{}).Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := manager(t, plainDB, c, keys.Options{KeyEncryptionKey: kek}).Signer(ctx); err != nil {
		t.Errorf("Signer over plain keys with a key-encryption key = %v", err)
	}
}
