package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/token"
)

func TestCredentials(t *testing.T) {
	tests := []struct {
		auth, key []string
		wantTok   string
		wantKey   bool
		wantErr   error
	}{
		{nil, nil, "", false, ErrNoCredentials},
		{[]string{"Bearer abc.def.ghi"}, nil, "abc.def.ghi", false, nil},
		{[]string{"bearer   abc "}, nil, "abc", false, nil},
		{[]string{"Bearer mq_123"}, nil, "mq_123", true, nil},
		{nil, []string{"mq_123"}, "mq_123", true, nil},
		{nil, []string{"abc"}, "", false, ErrInvalid},
		{[]string{"Basic abc"}, nil, "", false, ErrInvalid},
		{[]string{"Bearer"}, nil, "", false, ErrInvalid},
		{[]string{"Bearer "}, nil, "", false, ErrInvalid},
		{[]string{"Bearer a", "Bearer b"}, nil, "", false, ErrInvalid},
		{[]string{"Bearer a"}, []string{"mq_1"}, "", false, ErrInvalid},
	}
	for _, tt := range tests {
		tok, isKey, err := Credentials(tt.auth, tt.key)
		if tok != tt.wantTok || isKey != tt.wantKey || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("Credentials(%q, %q) = %q, %v, %v; want %q, %v, %v", tt.auth, tt.key, tok, isKey, err, tt.wantTok, tt.wantKey, tt.wantErr)
		}
	}
}

func FuzzCredentials(f *testing.F) {
	f.Add("Bearer x", "")
	f.Add("", "mq_x")
	f.Add("bEaReR  mq_", "")
	f.Fuzz(func(t *testing.T, authz, key string) {
		var a, k []string
		if authz != "" {
			a = []string{authz}
		}
		if key != "" {
			k = []string{key}
		}
		tok, isKey, err := Credentials(a, k)
		if err != nil {
			if tok != "" {
				t.Fatalf("Credentials(%q, %q) = %q with error %v", authz, key, tok, err)
			}
			return
		}
		if tok == "" || isKey != strings.HasPrefix(tok, APIKeyPrefix) || strings.TrimSpace(tok) != tok {
			t.Fatalf("Credentials(%q, %q) = %q, %v", authz, key, tok, isKey)
		}
	})
}

func TestParseRevokedEvent(t *testing.T) {
	tests := []struct {
		in      string
		wantSID string
		wantAt  time.Time
		wantErr bool
	}{
		{`{"sid":"s1"}`, "s1", time.Time{}, false},
		{`{"session_id":"s2","account_id":"a"}`, "s2", time.Time{}, false},
		{`{"sid":" s3 ","revoked_at":"2026-01-02T03:04:05Z"}`, "s3", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), false},
		{`{"sid":""}`, "", time.Time{}, true},
		{`{"sid":5}`, "", time.Time{}, true},
		{`[]`, "", time.Time{}, true},
		{`nope`, "", time.Time{}, true},
		{`{"sid":"` + strings.Repeat("x", 300) + `"}`, "", time.Time{}, true},
	}
	for _, tt := range tests {
		ev, err := ParseRevokedEvent([]byte(tt.in))
		if (err != nil) != tt.wantErr || ev.SessionID != tt.wantSID || !ev.At.Equal(tt.wantAt) {
			t.Errorf("ParseRevokedEvent(%s) = %+v, %v; want %q at %v (error %v)", tt.in, ev, err, tt.wantSID, tt.wantAt, tt.wantErr)
		}
	}
}

func FuzzParseRevokedEvent(f *testing.F) {
	f.Add([]byte(`{"sid":"s1","revoked_at":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"session_id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseRevokedEvent(data)
		if err == nil && (ev.SessionID == "" || len(ev.SessionID) > 256) {
			t.Fatalf("ParseRevokedEvent(%q) = %+v without error", data, ev)
		}
	})
}

func TestRevocations(t *testing.T) {
	r := NewRevocations()
	now := time.Now()
	r.Revoke("a", now.Add(time.Minute))
	r.Revoke("a", now.Add(time.Second)) // an earlier end does not shorten it
	if !r.Revoked("a", now.Add(30*time.Second)) || r.Revoked("a", now.Add(2*time.Minute)) || r.Revoked("b", now) || r.Revoked("", now) {
		t.Error("Revoked answers wrong")
	}
	r.Sweep(now.Add(2 * time.Minute))
	if r.Len() != 0 {
		t.Errorf("Len after the sweep = %d, want 0", r.Len())
	}
}

// keySource serves a keyset that the test changes, counting fetches.
type keySource struct {
	mu      sync.Mutex
	keys    []token.JWK
	fetches atomic.Int64
	delay   time.Duration
}

func (s *keySource) SigningKeys(context.Context) (*token.Keyset, error) {
	s.fetches.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	return token.NewKeyset(s.keys)
}

func newKey(t testing.TB) (token.JWK, *ecdsa.PrivateKey) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := token.Thumbprint(&priv.PublicKey)
	j, err := token.PublicJWK(kid, &priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return j, priv
}

func sign(t testing.TB, j token.JWK, priv *ecdsa.PrivateKey, sid string) string {
	now := time.Now()
	s, err := token.Sign(token.Claims{AccountID: "acc", Roles: []string{"viewer"}, SessionID: sid, ID: "j",
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(token.TTL)}, j.Kid, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthenticator(t *testing.T) {
	j1, p1 := newKey(t)
	src := &keySource{keys: []token.JWK{j1}}
	a := New(Config{MinRefreshInterval: 50 * time.Millisecond}, src, nil, nil)
	ctx := context.Background()
	tok := sign(t, j1, p1, "s1")
	for range 3 {
		p, err := a.Authenticate(ctx, tok, false)
		if err != nil || p.AccountID != "acc" || p.SessionID != "s1" || !p.HasRole("viewer") {
			t.Fatalf("Authenticate(good) = %+v, %v", p, err)
		}
	}
	if n := src.fetches.Load(); n != 1 {
		t.Errorf("fetches for 3 uses of one token = %d, want 1", n)
	}
	a.RevokeSession("s1", time.Time{})
	if _, err := a.Authenticate(ctx, tok, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("Authenticate(revoked session) = %v, want ErrInvalid", err)
	}
	// A new key: the first token naming it waits for a refetch.
	j2, p2 := newKey(t)
	src.mu.Lock()
	src.keys = []token.JWK{j1, j2}
	src.mu.Unlock()
	if _, err := a.Authenticate(ctx, sign(t, j2, p2, "s2"), false); err != nil {
		t.Errorf("Authenticate(token of a new key) = %v", err)
	}
	if _, err := a.Authenticate(ctx, "mq_x", true); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Authenticate(API key) without a verifier = %v, want ErrUnavailable", err)
	}
}

// FuzzAuthenticate feeds arbitrary tokens to an Authenticator whose keys
// the fuzzer does not have: none may authenticate, none may panic.
func FuzzAuthenticate(f *testing.F) {
	j1, p1 := newKey(f)
	good := sign(f, j1, p1, "s1")
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c.d")
	f.Add(strings.Repeat("A", 9000))
	src := &keySource{keys: []token.JWK{j1}}
	a := New(Config{MinRefreshInterval: time.Hour}, src, nil, nil)
	if _, err := a.Authenticate(context.Background(), good, false); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		p, err := a.Authenticate(ctx, tok, false)
		if err == nil {
			t.Fatalf("Authenticate(%q) = %+v, want refused", tok, p)
		}
	})
}

func TestAPIKeyCacheLRU(t *testing.T) {
	c := newAPIKeyCache(time.Minute, time.Second, 2)
	now := time.Now()
	for i, k := range []string{"a", "b", "c"} {
		c.put(apiKeyEntry{hash: [32]byte{byte(i)}, owner: APIKeyOwner{AccountID: k}, until: now.Add(time.Minute)})
	}
	if _, ok := c.get([32]byte{0}, now); ok {
		t.Error("the least recently used entry was kept past the size")
	}
	if e, ok := c.get([32]byte{2}, now); !ok || e.owner.AccountID != "c" {
		t.Error("the newest entry is missing")
	}
	if _, ok := c.get([32]byte{2}, now.Add(2*time.Minute)); ok {
		t.Error("an expired entry was answered")
	}
	if c.len() != 1 {
		t.Errorf("len = %d, want 1", c.len())
	}
}
