package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
)

var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newKey(t testing.TB) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid, priv}
}

func (k testKey) jwk(t testing.TB) JWK {
	t.Helper()
	j, err := PublicJWK(k.kid, &k.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func keyset(t testing.TB, keys ...testKey) *Keyset {
	t.Helper()
	var jwks []JWK
	for _, k := range keys {
		jwks = append(jwks, k.jwk(t))
	}
	ks, err := NewKeyset(jwks)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func claimsAt(iat time.Time) Claims {
	return Claims{AccountID: "acc-1", Roles: []string{"viewer"}, SessionID: "sid-1", ID: "jti-1",
		IssuedAt: iat, NotBefore: iat, ExpiresAt: iat.Add(TTL)}
}

func sign(t testing.TB, c Claims, k testKey) string {
	t.Helper()
	s, err := Sign(c, k.kid, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var b64 = base64.RawURLEncoding

// craft builds a compact JWS from a header and payload, signed by sig over
// the signing input.
func craft(t testing.TB, header, payload map[string]any, sig func(input string) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	return input + "." + b64.EncodeToString(sig(input))
}

// es256 signs input the JWS way: r||s, 32 bytes each.
func es256(t testing.TB, priv *ecdsa.PrivateKey) func(string) []byte {
	return func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func payload(iat time.Time) map[string]any {
	return map[string]any{
		"iss": Issuer, "aud": []string{Audience}, "sub": "acc-1", "sid": "sid-1", "roles": []string{"viewer"},
		"iat": iat.Unix(), "nbf": iat.Unix(), "exp": iat.Add(TTL).Unix(), "jti": "j",
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	k := newKey(t)
	tok := sign(t, claimsAt(now), k)
	got, err := Verify(tok, keyset(t, newKey(t), k), now.Add(time.Minute))
	if err != nil {
		t.Fatalf("Verify(valid) = %v", err)
	}
	want := claimsAt(now)
	want.KeyID = k.kid
	if got.AccountID != want.AccountID || got.SessionID != want.SessionID || got.ID != want.ID || got.KeyID != k.kid ||
		len(got.Roles) != 1 || got.Roles[0] != "viewer" || !got.IssuedAt.Equal(now) || !got.ExpiresAt.Equal(now.Add(TTL)) || !got.NotBefore.Equal(now) {
		t.Errorf("Verify(valid) = %+v, want %+v", got, want)
	}
	hdr, _ := b64.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil || h["alg"] != "ES256" || h["kid"] != k.kid {
		t.Errorf("header = %s, want alg ES256 and kid %s", hdr, k.kid)
	}
}

// TestVerifyRefusesAttacks is the catalogue of forgeries and mistakes a
// verifier must refuse, each with the error it must give.
func TestVerifyRefusesAttacks(t *testing.T) {
	k := newKey(t)
	other := newKey(t)
	ks := keyset(t, k)
	valid := sign(t, claimsAt(now), k)
	parts := strings.Split(valid, ".")
	hdr := func(alg string) map[string]any { return map[string]any{"alg": alg, "typ": "JWT", "kid": k.kid} }

	pubDER, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwkJSON, _ := json.Marshal(k.jwk(t))
	point, _ := k.priv.PublicKey.Bytes()
	hmacWith := func(secret []byte) func(string) []byte {
		return func(input string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(input))
			return m.Sum(nil)
		}
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256 := func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, 5 /* crypto.SHA256 */, sum[:])
		if err != nil {
			return []byte("x")
		}
		return sig
	}
	// Flip a bit in the middle of the signature (the last character may
	// only carry padding bits).
	sig, _ := b64.DecodeString(parts[2])
	sig[10] ^= 1
	tampered := parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig)
	// Same header, other payload, original signature.
	p2 := payload(now)
	p2["sub"] = "admin"
	p2["roles"] = []string{"admin", "viewer"}
	p2json, _ := json.Marshal(p2)
	swapped := parts[0] + "." + b64.EncodeToString(p2json) + "." + parts[2]
	// The negated-s twin of a signature is also valid ECDSA; check only that
	// it does not change what the token says (it must verify to the same claims
	// or be refused) below, not here.
	asn1Sig := func(input string) []byte {
		sum := sha256.Sum256([]byte(input))
		der, _ := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
		return der
	}

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"garbage", "not a token", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", valid + ".x", ErrMalformed},
		{"dots", "...", ErrMalformed},
		{"line break in the signature", valid[:len(valid)-5] + "\n" + valid[len(valid)-5:], ErrMalformed},
		{"padding", valid + "=", ErrMalformed},
		{"bad base64", parts[0] + ".%%%." + parts[2], ErrMalformed},
		{"huge", strings.Repeat("a", MaxLength+1), ErrMalformed},
		{"header not JSON", b64.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"forged signature", tampered, ErrSignature},
		{"payload swapped", swapped, ErrSignature},
		{"signed by another key under our kid", craft(t, hdr("ES256"), payload(now), es256(t, other.priv)), ErrSignature},
		{"zero signature", craft(t, hdr("ES256"), payload(now), func(string) []byte { return make([]byte, 64) }), ErrSignature},
		{"DER signature", craft(t, hdr("ES256"), payload(now), asn1Sig), ErrSignature},
		{"embedded jwk header", craft(t, map[string]any{"alg": "ES256", "kid": k.kid, "jwk": other.jwk(t)}, payload(now), es256(t, other.priv)), ErrSignature},
		{"alg none", craft(t, hdr("none"), payload(now), func(string) []byte { return nil }), ErrAlgorithm},
		{"alg None", craft(t, hdr("None"), payload(now), func(string) []byte { return nil }), ErrAlgorithm},
		{"alg none with signature", craft(t, hdr("none"), payload(now), es256(t, k.priv)), ErrAlgorithm},
		{"HS256 with the PEM public key", craft(t, hdr("HS256"), payload(now), hmacWith(pubPEM)), ErrAlgorithm},
		{"HS256 with the DER public key", craft(t, hdr("HS256"), payload(now), hmacWith(pubDER)), ErrAlgorithm},
		{"HS256 with the JWK", craft(t, hdr("HS256"), payload(now), hmacWith(jwkJSON)), ErrAlgorithm},
		{"HS256 with the point", craft(t, hdr("HS256"), payload(now), hmacWith(point)), ErrAlgorithm},
		{"RS256", craft(t, hdr("RS256"), payload(now), rs256), ErrAlgorithm},
		{"ES384", craft(t, hdr("ES384"), payload(now), es256(t, k.priv)), ErrAlgorithm},
		{"unknown alg", craft(t, hdr("XX999"), payload(now), es256(t, k.priv)), ErrAlgorithm},
		{"no alg", craft(t, map[string]any{"kid": k.kid}, payload(now), es256(t, k.priv)), ErrAlgorithm},
		{"unknown kid", sign(t, claimsAt(now), other), ErrUnknownKey},
		{"no kid", craft(t, map[string]any{"alg": "ES256"}, payload(now), es256(t, k.priv)), ErrUnknownKey},
		{"numeric kid", craft(t, map[string]any{"alg": "ES256", "kid": 7}, payload(now), es256(t, k.priv)), ErrUnknownKey},
		{"expired", sign(t, claimsAt(now.Add(-TTL-Leeway-time.Second)), k), ErrExpired},
		{"not yet valid", craft(t, hdr("ES256"), func() map[string]any {
			p := payload(now)
			p["nbf"] = now.Add(Leeway + time.Second).Unix()
			return p
		}(), es256(t, k.priv)), ErrNotYetValid},
		{"issued in the future", sign(t, claimsAt(now.Add(Leeway+time.Second)), k), ErrNotYetValid},
		{"wrong issuer", craft(t, hdr("ES256"), with(payload(now), "iss", "evil"), es256(t, k.priv)), ErrIssuer},
		{"wrong audience", craft(t, hdr("ES256"), with(payload(now), "aud", "other-api"), es256(t, k.priv)), ErrAudience},
		{"no audience", craft(t, hdr("ES256"), without(payload(now), "aud"), es256(t, k.priv)), ErrClaims},
		{"no issuer", craft(t, hdr("ES256"), without(payload(now), "iss"), es256(t, k.priv)), ErrClaims},
		{"no exp", craft(t, hdr("ES256"), without(payload(now), "exp"), es256(t, k.priv)), ErrClaims},
		{"no iat", craft(t, hdr("ES256"), without(payload(now), "iat"), es256(t, k.priv)), ErrClaims},
		{"no sub", craft(t, hdr("ES256"), without(payload(now), "sub"), es256(t, k.priv)), ErrClaims},
		{"no sid", craft(t, hdr("ES256"), without(payload(now), "sid"), es256(t, k.priv)), ErrClaims},
		{"lifetime too long", craft(t, hdr("ES256"), with(payload(now), "exp", now.Add(24*time.Hour).Unix()), es256(t, k.priv)), ErrClaims},
		{"roles not a list", craft(t, hdr("ES256"), with(payload(now), "roles", "admin"), es256(t, k.priv)), ErrMalformed},
		{"exp a string", craft(t, hdr("ES256"), with(payload(now), "exp", "never"), es256(t, k.priv)), ErrMalformed},
	}
	for _, tt := range tests {
		_, err := Verify(tt.tok, ks, now)
		if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := Verify(valid, nil, now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify with no keyset = %v, want ErrUnknownKey", err)
	}
}

// TestVerifyLeeway checks the 30 s clock-skew allowance on both sides.
func TestVerifyLeeway(t *testing.T) {
	k := newKey(t)
	ks := keyset(t, k)
	tests := []struct {
		name string
		iat  time.Time
		at   time.Time
		want error
	}{
		{"just issued", now, now, nil},
		{"expired within leeway", now, now.Add(TTL + Leeway - time.Second), nil},
		{"expired beyond leeway", now, now.Add(TTL + Leeway), ErrExpired},
		{"issued slightly ahead of our clock", now.Add(Leeway - time.Second), now, nil},
		{"issued too far ahead", now.Add(Leeway + time.Second), now, ErrNotYetValid},
	}
	for _, tt := range tests {
		_, err := Verify(sign(t, claimsAt(tt.iat), k), ks, tt.at)
		if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestMalleableSignatureSaysTheSame: (r, n-s) is also a valid ECDSA
// signature; accepting it is harmless only if it cannot change what the
// token says, which holds because the signature covers header and payload.
func TestMalleableSignatureSaysTheSame(t *testing.T) {
	k := newKey(t)
	tok := sign(t, claimsAt(now), k)
	parts := strings.Split(tok, ".")
	sig, _ := b64.DecodeString(parts[2])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	s.FillBytes(sig[32:])
	twin := parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig)
	a, errA := Verify(tok, keyset(t, k), now)
	b, errB := Verify(twin, keyset(t, k), now)
	if errA != nil || (errB == nil && (a.AccountID != b.AccountID || a.SessionID != b.SessionID || !a.ExpiresAt.Equal(b.ExpiresAt))) {
		t.Errorf("twin signature: %v / %v; claims %+v vs %+v", errA, errB, a, b)
	}
}

func with(p map[string]any, k string, v any) map[string]any { p[k] = v; return p }
func without(p map[string]any, k string) map[string]any     { delete(p, k); return p }

func TestKeyset(t *testing.T) {
	k := newKey(t)
	j := k.jwk(t)
	if j.Kty != "EC" || j.Crv != "P-256" || j.Alg != "ES256" || j.Use != "sig" || len(j.X) != 43 || len(j.Y) != 43 {
		t.Errorf("PublicJWK = %+v", j)
	}
	doc, _ := json.Marshal(map[string]any{"keys": []JWK{j}})
	ks, err := ParseJWKS(doc)
	if err != nil || ks.Len() != 1 {
		t.Fatalf("ParseJWKS = %v, %v", ks, err)
	}
	pub, ok := ks.Lookup(k.kid)
	if !ok || !pub.Equal(&k.priv.PublicKey) {
		t.Errorf("Lookup(%s) = %v, %v; want the key", k.kid, pub, ok)
	}
	fromProto, err := KeysetFromProto(&identityv1.ListSigningKeysResponse{Keys: []*identityv1.JSONWebKey{{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y, Kid: j.Kid, Alg: j.Alg, Use: j.Use}}})
	if err != nil || fromProto.Len() != 1 {
		t.Errorf("KeysetFromProto = %v, %v", fromProto, err)
	}
	mod := func(f func(*JWK)) JWK { c := j; f(&c); return c }
	offCurve := mod(func(c *JWK) {
		y, _ := b64.DecodeString(c.Y)
		y[31] ^= 1
		c.Y = b64.EncodeToString(y)
	})
	bad := []struct {
		name string
		keys []JWK
	}{
		{"RSA", []JWK{mod(func(c *JWK) { c.Kty = "RSA" })}},
		{"P-384", []JWK{mod(func(c *JWK) { c.Crv = "P-384" })}},
		{"HS256", []JWK{mod(func(c *JWK) { c.Alg = "HS256" })}},
		{"enc", []JWK{mod(func(c *JWK) { c.Use = "enc" })}},
		{"no kid", []JWK{mod(func(c *JWK) { c.Kid = "" })}},
		{"short x", []JWK{mod(func(c *JWK) { c.X = c.X[:20] })}},
		{"off curve", []JWK{offCurve}},
		{"duplicate", []JWK{j, j}},
	}
	for _, tt := range bad {
		if _, err := NewKeyset(tt.keys); err == nil {
			t.Errorf("NewKeyset(%s) = nil error, want refused", tt.name)
		}
	}
	if _, err := ParseJWKS([]byte("{")); err == nil {
		t.Error("ParseJWKS({) = nil error")
	}
	// The thumbprint is stable and tied to the key.
	again, _ := Thumbprint(&k.priv.PublicKey)
	if again != k.kid || k.kid == newKey(t).kid || len(k.kid) != 43 {
		t.Errorf("Thumbprint = %q then %q", k.kid, again)
	}
}

// fakeSource is a JWKS source that counts its calls.
type fakeSource struct {
	ks    atomic.Pointer[Keyset]
	calls atomic.Int32
	fail  atomic.Bool
}

func (f *fakeSource) fetch(context.Context) (*Keyset, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, errors.New("identity unavailable")
	}
	return f.ks.Load(), nil
}

func TestCacheRefetchesOnUnknownKid(t *testing.T) {
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	src := &fakeSource{}
	src.ks.Store(keyset(t, k1))
	clock := now
	c := NewCache(src.fetch, CacheOptions{MaxAge: time.Minute, MinRefetch: 5 * time.Second, Now: func() time.Time { return clock }})

	if _, err := c.Verify(ctx, sign(t, claimsAt(now), k1), now); err != nil || src.calls.Load() != 1 {
		t.Fatalf("first Verify = %v after %d fetches; want nil after 1", err, src.calls.Load())
	}
	if _, err := c.Verify(ctx, sign(t, claimsAt(now), k1), now); err != nil || src.calls.Load() != 1 {
		t.Fatalf("cached Verify = %v after %d fetches; want nil after 1", err, src.calls.Load())
	}
	// A rotation published k2: the first token naming it makes the cache
	// refetch.
	src.ks.Store(keyset(t, k1, k2))
	clock = clock.Add(10 * time.Second)
	if _, err := c.Verify(ctx, sign(t, claimsAt(now), k2), now); err != nil || src.calls.Load() != 2 {
		t.Fatalf("Verify with a new kid = %v after %d fetches; want nil after 2", err, src.calls.Load())
	}
	// Forged kids cannot make it fetch more than once per MinRefetch.
	stranger := newKey(t)
	for range 10 {
		if _, err := c.Verify(ctx, sign(t, claimsAt(now), stranger), now); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Verify with an unknown kid = %v, want ErrUnknownKey", err)
		}
	}
	if got := src.calls.Load(); got != 2 {
		t.Errorf("fetches after 10 unknown kids within MinRefetch = %d, want 2", got)
	}
	clock = clock.Add(6 * time.Second)
	if _, err := c.Verify(ctx, sign(t, claimsAt(now), stranger), now); !errors.Is(err, ErrUnknownKey) || src.calls.Load() != 3 {
		t.Errorf("unknown kid after MinRefetch = %v after %d fetches; want ErrUnknownKey after 3", err, src.calls.Load())
	}
	// After MaxAge it refetches; when that fails it keeps the old keyset.
	src.fail.Store(true)
	clock = clock.Add(2 * time.Minute)
	if _, err := c.Verify(ctx, sign(t, claimsAt(now), k1), now); err != nil {
		t.Errorf("Verify while the source fails = %v, want the old keyset used", err)
	}
	// With no keyset at all, a failing source is an error that is not a
	// token error.
	empty := NewCache(src.fetch, CacheOptions{})
	if _, err := empty.Verify(ctx, sign(t, claimsAt(now), k1), now); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("Verify with no keyset and a failing source = %v, want an availability error", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := newKey(b)
	ks := keyset(b, k)
	tok := sign(b, claimsAt(now), k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, ks, now); err != nil {
			b.Fatal(err)
		}
	}
}
