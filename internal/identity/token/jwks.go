package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
)

// JWK is a public signing key in JSON Web Key form (RFC 7517): always an
// EC P-256 key for ES256 signatures.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// MaxKeys bounds the keys of a keyset.
const MaxKeys = 32

// PublicJWK returns the JWK of pub with kid.
func PublicJWK(kid string, pub *ecdsa.PublicKey) (JWK, error) {
	b, err := pub.Bytes()
	if err != nil || pub.Curve != elliptic.P256() || len(b) != 65 {
		return JWK{}, errors.New("token: not an EC P-256 public key")
	}
	enc := base64.RawURLEncoding
	return JWK{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(b[1:33]), Y: enc.EncodeToString(b[33:]), Kid: kid, Alg: Algorithm, Use: "sig"}, nil
}

// Thumbprint returns the RFC 7638 thumbprint of an EC public key (SHA-256,
// base64url): the key id Marquee gives its signing keys.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	j, err := PublicJWK("", pub)
	if err != nil {
		return "", err
	}
	// The members required for EC keys, in lexicographic order, no spaces.
	canon := fmt.Sprintf(`{"crv":"%s","kty":"%s","x":"%s","y":"%s"}`, j.Crv, j.Kty, j.X, j.Y)
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// PublicKey decodes and checks j: kty EC, crv P-256, alg ES256 (or
// absent), use sig (or absent), a kid, and a point on the curve.
func (j JWK) PublicKey() (*ecdsa.PublicKey, error) {
	switch {
	case j.Kty != "EC" || j.Crv != "P-256":
		return nil, fmt.Errorf("token: key %.40q is not an EC P-256 key", j.Kid)
	case j.Alg != "" && j.Alg != Algorithm:
		return nil, fmt.Errorf("token: key %.40q is for alg %.20q, not %s", j.Kid, j.Alg, Algorithm)
	case j.Use != "" && j.Use != "sig":
		return nil, fmt.Errorf("token: key %.40q is for use %.20q, not sig", j.Kid, j.Use)
	case j.Kid == "" || len(j.Kid) > 128:
		return nil, errors.New("token: key without a usable kid")
	}
	enc := base64.RawURLEncoding.Strict()
	x, errX := enc.DecodeString(j.X)
	y, errY := enc.DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 || enc.EncodeToString(x) != j.X || enc.EncodeToString(y) != j.Y {
		return nil, fmt.Errorf("token: key %.40q has bad coordinates", j.Kid)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), slices.Concat([]byte{4}, x, y))
	if err != nil {
		return nil, fmt.Errorf("token: key %.40q: %w", j.Kid, err)
	}
	return pub, nil
}

// Keyset is an immutable set of verification keys by kid.
type Keyset struct {
	keys map[string]*ecdsa.PublicKey
	jwks []JWK
}

// NewKeyset checks every key and returns the set; kids must be unique.
func NewKeyset(keys []JWK) (*Keyset, error) {
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("token: %d keys, over %d", len(keys), MaxKeys)
	}
	ks := &Keyset{keys: make(map[string]*ecdsa.PublicKey, len(keys))}
	for _, j := range keys {
		pub, err := j.PublicKey()
		if err != nil {
			return nil, err
		}
		if _, dup := ks.keys[j.Kid]; dup {
			return nil, fmt.Errorf("token: kid %.40q appears twice", j.Kid)
		}
		ks.keys[j.Kid] = pub
		ks.jwks = append(ks.jwks, j)
	}
	return ks, nil
}

// ParseJWKS reads a JWKS document, {"keys":[...]}.
func ParseJWKS(data []byte) (*Keyset, error) {
	var doc struct {
		Keys []JWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("token: JWKS: %w", err)
	}
	return NewKeyset(doc.Keys)
}

// KeysetFromProto converts the answer of IdentityService.ListSigningKeys.
func KeysetFromProto(resp *identityv1.ListSigningKeysResponse) (*Keyset, error) {
	keys := make([]JWK, 0, len(resp.GetKeys()))
	for _, k := range resp.GetKeys() {
		keys = append(keys, JWK{Kty: k.GetKty(), Crv: k.GetCrv(), X: k.GetX(), Y: k.GetY(), Kid: k.GetKid(), Alg: k.GetAlg(), Use: k.GetUse()})
	}
	return NewKeyset(keys)
}

// Lookup returns the key with kid.
func (ks *Keyset) Lookup(kid string) (*ecdsa.PublicKey, bool) {
	if ks == nil {
		return nil, false
	}
	k, ok := ks.keys[kid]
	return k, ok
}

// Keys returns the keys in the order given.
func (ks *Keyset) Keys() []JWK {
	if ks == nil {
		return nil
	}
	return slices.Clone(ks.jwks)
}

// Len is the number of keys.
func (ks *Keyset) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}
