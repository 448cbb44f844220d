package gateway

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity/token"
)

var b64 = base64.RawURLEncoding

// rawToken builds a compact JWS from a header and claims, signed by sign.
func rawToken(t testing.TB, hdr, cl map[string]any, sign func(input string) []byte) string {
	t.Helper()
	h, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(sign(input))
}

// es256 signs like ES256: r and s, 32 bytes each.
func es256(t testing.TB, priv *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, d[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

// goodClaims are valid claims as a JSON map, edited by the cases.
func goodClaims(edit func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"iss": token.Issuer, "aud": []string{token.Audience}, "sub": "acc-1", "roles": []string{"viewer"},
		"sid": "sid-1", "jti": "j1", "iat": now, "nbf": now, "exp": now + 900,
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// TestRefusedCredentials sends credentials that must not work, each to a
// route that requires authentication, and requests for routes that do not
// exist: every one is answered 401 with WWW-Authenticate (403 for a missing
// role, 404 for no route), and the upstream sees nothing.
func TestRefusedCredentials(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{JWKSMinRefreshInterval: 20 * time.Millisecond}, nil)
	key := u.identity.key()
	attacker := newSigningKey(t)
	hdr := func(alg, kid string) map[string]any { return map[string]any{"alg": alg, "kid": kid, "typ": "JWT"} }
	good := key.sign(t, claims("acc-1"))
	parts := strings.Split(good, ".")
	pubBytes, err := key.priv.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	u.identity.mu.Lock()
	u.identity.apiKeys["mq_good"] = &identityv1.VerifyAPIKeyResponse{AccountId: "acc-k", KeyId: "key-1", Roles: []string{"viewer"}}
	u.identity.mu.Unlock()

	tampered := goodClaims(func(c map[string]any) { c["sub"] = "admin-account"; c["roles"] = []string{"admin"} })
	tests := []struct {
		name       string
		header     http.Header
		path       string
		wantStatus int
		wantCode   string
	}{
		{"no credentials", nil, "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"spoofed principal headers", header("X-Marquee-Account-Id", "acc-1", "X-Marquee-Roles", "admin"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"forged signature: claims changed", header("Authorization", "Bearer "+parts[0]+"."+b64.EncodeToString(mustJSON(t, tampered))+"."+parts[2]), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"forged signature: attacker's key, real kid", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(nil), es256(t, attacker.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"forged signature: garbage", header("Authorization", "Bearer "+parts[0]+"."+parts[1]+"."+b64.EncodeToString(make([]byte, 64))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"alg none", header("Authorization", "Bearer "+rawToken(t, hdr("none", key.kid), goodClaims(nil), func(string) []byte { return nil })), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"alg none, no signature part", header("Authorization", "Bearer "+parts[0]+"."+parts[1]+"."), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"HS256 with the public key as secret", header("Authorization", "Bearer "+rawToken(t, hdr("HS256", key.kid), goodClaims(nil), func(in string) []byte {
			m := hmac.New(sha256.New, pubBytes)
			m.Write([]byte(in))
			return m.Sum(nil)
		})), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"unknown kid", header("Authorization", "Bearer "+attacker.sign(t, claims("acc-1"))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"no kid", header("Authorization", "Bearer "+rawToken(t, map[string]any{"alg": "ES256"}, goodClaims(nil), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"expired", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-time.Hour).Unix(), time.Now().Add(-45*time.Minute).Unix()
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"not yet valid", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["nbf"] = time.Now().Add(10 * time.Minute).Unix()
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"issued in the future", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = time.Now().Add(time.Hour).Unix(), time.Now().Add(time.Hour).Unix(), time.Now().Add(70*time.Minute).Unix()
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"wrong audience", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["aud"] = []string{"someone-else"}
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"wrong issuer", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["iss"] = "evil"
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"no sub", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			delete(c, "sub")
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"lifetime too long", header("Authorization", "Bearer "+rawToken(t, hdr("ES256", key.kid), goodClaims(func(c map[string]any) {
			c["exp"] = time.Now().Add(24 * time.Hour).Unix()
		}), es256(t, key.priv))), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"not a JWT", header("Authorization", "Bearer hello"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"Basic scheme", header("Authorization", "Basic YWRtaW46YWRtaW4="), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"two credentials", header("Authorization", "Bearer "+good, "X-Api-Key", "mq_good"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"unknown API key", header("X-Api-Key", "mq_unknown"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"unknown API key as bearer", header("Authorization", "Bearer mq_unknown"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"API key without the prefix", header("X-Api-Key", "good"), "/api/v1/account", 401, "UNAUTHENTICATED"},
		{"bad token on an optional route", header("Authorization", "Bearer "+parts[0]+"."+parts[1]+"."), "/api/v1/titles", 401, "UNAUTHENTICATED"},
		{"unknown route", header("Authorization", "Bearer "+good), "/api/v1/nope", 404, "NOT_FOUND"},
		{"unknown route under a known one", header("Authorization", "Bearer "+good), "/api/v1/account/x", 404, "NOT_FOUND"},
		{"path traversal", nil, "/api/v1/titles/../account", 404, "NOT_FOUND"},
		{"encoded path traversal", nil, "/api/v1/titles/..%2Faccount", 404, "NOT_FOUND"},
		{"viewer on an admin route", header("Authorization", "Bearer "+good), "/api/v1/admin/signing-keys/rotate", 403, "FORBIDDEN"},
		{"API key viewer on an admin route", header("X-Api-Key", "mq_good"), "/api/v1/admin/signing-keys/rotate", 403, "FORBIDDEN"},
	}
	for _, tt := range tests {
		method := http.MethodGet
		if strings.Contains(tt.path, "rotate") {
			method = http.MethodPost
		}
		before := u.calls()
		r := g.do(t, method, tt.path, tt.header, strings.NewReader("{}"))
		if r.status != tt.wantStatus {
			t.Errorf("%s: %s %s = %s, want %d", tt.name, method, tt.path, describe(r), tt.wantStatus)
			continue
		}
		if e := errorOf(t, r); e.Code != tt.wantCode {
			t.Errorf("%s: code = %q, want %q", tt.name, e.Code, tt.wantCode)
		}
		if wa := r.header.Get("WWW-Authenticate"); tt.wantStatus == 401 && !strings.HasPrefix(wa, `Bearer realm="marquee"`) {
			t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", tt.name, wa)
		}
		if n := u.calls(); n != before {
			t.Errorf("%s: the upstream served %d calls, want none", tt.name, n-before)
		}
	}

	// And what must work does, through the same routes.
	for _, h := range []http.Header{
		header("Authorization", "Bearer "+good),
		header("Authorization", "bearer "+good),
		header("X-Api-Key", "mq_good"),
		header("Authorization", "Bearer mq_good"),
	} {
		if r := g.do(t, http.MethodGet, "/api/v1/account", h, nil); r.status != http.StatusOK {
			t.Errorf("GET /api/v1/account with %v = %s, want 200", h, describe(r))
		}
	}
	admin := u.bearer(t, "acc-admin", "viewer", "admin")
	if r := g.do(t, http.MethodPost, "/api/v1/admin/signing-keys/rotate", header("Authorization", admin), strings.NewReader("{}")); r.status != http.StatusOK {
		t.Errorf("POST rotate as admin = %s, want 200", describe(r))
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAPIKeyCache checks that an API key is verified by identity once and
// then served from the cache, and that an unusable identity answers 503.
func TestAPIKeyCache(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{}, nil)
	u.identity.mu.Lock()
	u.identity.apiKeys["mq_k1"] = &identityv1.VerifyAPIKeyResponse{AccountId: "acc-k", KeyId: "key-1", Roles: []string{"viewer"}}
	u.identity.mu.Unlock()
	for range 5 {
		if r := g.do(t, http.MethodGet, "/api/v1/account", header("X-Api-Key", "mq_k1"), nil); r.status != http.StatusOK {
			t.Fatalf("GET /api/v1/account with an API key = %s, want 200", describe(r))
		}
	}
	u.mu.Lock()
	verifies := u.served["/marquee.identity.v1.IdentityService/VerifyAPIKey"]
	u.mu.Unlock()
	if verifies != 1 {
		t.Errorf("VerifyAPIKey calls for 5 requests = %d, want 1 (cached)", verifies)
	}
	u.server.Stop()
	r := g.do(t, http.MethodGet, "/api/v1/account", header("X-Api-Key", "mq_other"), nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /api/v1/account with identity down = %s, want 503", describe(r))
	}
}

// TestKeyRotation rotates identity's signing key while requests flow: the
// new key is published at the very moment it starts signing, so tokens
// signed by it name a kid the gateway has not seen and make it refetch the
// JWKS. No request with a valid token may be refused.
func TestKeyRotation(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{JWKSMinRefreshInterval: 100 * time.Millisecond, Routes: generousRoutes(t)}, nil)

	var mu sync.Mutex
	signer := u.identity.key()
	current := func() *signingKey {
		mu.Lock()
		defer mu.Unlock()
		return signer
	}
	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := current().sign(t, claims("acc-rot"))
				r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", "Bearer "+tok), nil)
				if r.status == http.StatusOK {
					ok.Add(1)
				} else {
					failed.Add(1)
					failures.Store(w*1000000+i, describe(r))
				}
			}
		})
	}
	fetchesBefore := u.identity.jwksCalls.Load()
	keys := []*signingKey{signer}
	for range 3 {
		time.Sleep(150 * time.Millisecond)
		next := newSigningKey(t)
		keys = append(keys, next)
		u.identity.publish(keys...) // the old keys stay: their tokens are valid
		mu.Lock()
		signer = next
		mu.Unlock()
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	failures.Range(func(_, v any) bool {
		t.Errorf("refused during rotation: %v", v)
		return true
	})
	if ok.Load() < 20 || failed.Load() != 0 {
		t.Errorf("during rotation: %d requests served, %d refused; want many served, none refused", ok.Load(), failed.Load())
	}
	if n := u.identity.jwksCalls.Load() - fetchesBefore; n < 3 {
		t.Errorf("JWKS fetches during 3 rotations = %d, want at least 3 (tokens with new kids refetch)", n)
	}

	// A key withdrawn from the JWKS stops working once refetched, even for
	// a token verified (and cached) before.
	old := keys[0].sign(t, claims("acc-old"))
	if r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", "Bearer "+old), nil); r.status != http.StatusOK {
		t.Fatalf("token of a published key = %s, want 200", describe(r))
	}
	u.identity.publish(keys[1:]...)
	if err := g.auth.Keys().Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", "Bearer "+old), nil); r.status != http.StatusUnauthorized {
		t.Errorf("cached token of a withdrawn key = %s, want 401", describe(r))
	}
}

// TestUnknownKidRefetchLimit sends many tokens with made-up kids: identity
// is asked for the JWKS at most about once per MinRefreshInterval.
func TestUnknownKidRefetchLimit(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{JWKSMinRefreshInterval: 200 * time.Millisecond}, nil)
	if r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", u.bearer(t, "acc-1")), nil); r.status != 200 {
		t.Fatalf("good token = %s", describe(r))
	}
	before := u.identity.jwksCalls.Load()
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				bad := newSigningKey(t).sign(t, claims("acc-x"))
				if r := g.do(t, http.MethodGet, "/api/v1/account", header("Authorization", "Bearer "+bad), nil); r.status != 401 {
					t.Errorf("unknown kid = %s, want 401", describe(r))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := u.identity.jwksCalls.Load() - before
	if max := int64(elapsed/(200*time.Millisecond)) + 2; fetches > max {
		t.Errorf("40 unknown kids in %v made %d JWKS fetches, want at most %d", elapsed, fetches, max)
	}
}

// TestInvalidCredentialFlood sends many bad tokens from one address: past
// the burst, its requests with credentials are refused 429 without being
// verified; other addresses are not affected.
func TestInvalidCredentialFlood(t *testing.T) {
	u := startUpstream(t)
	g := newGateway(t, u.addr, Config{Routes: generousRoutes(t), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	bad := header("Authorization", "Bearer "+newSigningKey(t).sign(t, claims("x")), "X-Forwarded-For", "198.51.100.1")
	bad.Set("Authorization", strings.Replace(bad.Get("Authorization"), "Bearer ey", "Bearer eX", 1))
	limited := 0
	for range authFailureLimit.Burst + 20 {
		r := g.do(t, http.MethodGet, "/api/v1/account", bad, nil)
		switch r.status {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("bad token = %s", describe(r))
		}
	}
	if limited < 15 {
		t.Errorf("%d of %d bad tokens refused 429, want those past the burst of %d", limited, authFailureLimit.Burst+20, authFailureLimit.Burst)
	}
	good := header("Authorization", u.bearer(t, "acc-1"), "X-Forwarded-For", "198.51.100.2")
	if r := g.do(t, http.MethodGet, "/api/v1/account", good, nil); r.status != http.StatusOK {
		t.Errorf("good token from another address = %s, want 200", describe(r))
	}
}
