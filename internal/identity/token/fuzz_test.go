package token

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzVerify(f *testing.F) {
	k := newKey(f)
	ks := keyset(f, k)
	valid := sign(f, claimsAt(now), k)
	parts := strings.Split(valid, ".")
	f.Add(valid)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	f.Add("a.b.c")
	f.Add(craft(f, map[string]any{"alg": "HS256", "kid": k.kid}, payload(now), func(string) []byte { return []byte("x") }))
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(tok, ks, now)
		if err != nil {
			if c.AccountID != "" || c.KeyID != "" {
				t.Fatalf("Verify(%q) failed but returned claims %+v", tok, c)
			}
			return
		}
		// Whatever is accepted was signed by our key over a header naming
		// it, and carries complete, current claims.
		if c.KeyID != k.kid || c.AccountID == "" || c.SessionID == "" || !now.Before(c.ExpiresAt.Add(Leeway)) ||
			c.ExpiresAt.Sub(c.IssuedAt) > TTL {
			t.Fatalf("Verify(%q) accepted claims %+v", tok, c)
		}
		hp := strings.Split(tok, ".")
		if len(hp) != 3 || hp[0] != parts[0] || hp[1] != parts[1] {
			t.Fatalf("Verify accepted %q, whose header or payload we never signed", tok)
		}
		if sig, err := b64.DecodeString(hp[2]); err != nil || b64.EncodeToString(sig) != hp[2] {
			t.Fatalf("Verify accepted %q, a non-canonical spelling of a signature", tok)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	k := newKey(f)
	doc, _ := json.Marshal(map[string]any{"keys": []JWK{k.jwk(f)}})
	f.Add(string(doc))
	f.Add(`{"keys":[]}`)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":"","kid":"a"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		ks, err := ParseJWKS([]byte(in))
		if err != nil {
			return
		}
		for _, j := range ks.Keys() {
			pub, ok := ks.Lookup(j.Kid)
			if !ok || pub == nil {
				t.Fatalf("ParseJWKS(%q): key %q listed but not found", in, j.Kid)
			}
		}
	})
}
