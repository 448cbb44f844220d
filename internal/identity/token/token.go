// Package token signs and verifies Marquee access tokens: JWTs signed with
// ES256 (ECDSA P-256, SHA-256) whose header names the signing key ("kid").
// Claims:
//
//	iss    "marquee" (Issuer)
//	aud    "marquee-api" (Audience)
//	sub    the account id
//	roles  the account's roles ("viewer", "admin")
//	sid    the refresh-token family (session) the token belongs to
//	iat, nbf, exp  issued, valid from, expires (exp = iat + 15 minutes)
//	jti    a unique token id
//
// The gateway verifies tokens with Verify against the JWKS that the identity
// service publishes (ListSigningKeys, /.well-known/jwks.json), usually
// through a Cache that refetches the JWKS when a token names an unknown
// key. Nothing here touches identity's storage: a verifier needs only the
// public keys.
package token

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fixed values of every access token.
const (
	// Issuer is the "iss" claim.
	Issuer = "marquee"
	// Audience is the "aud" claim.
	Audience = "marquee-api"
	// Algorithm is the only accepted "alg".
	Algorithm = "ES256"
	// TTL is the lifetime of an access token.
	TTL = 15 * time.Minute
	// Leeway is the clock skew Verify tolerates on exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxLength bounds the token strings Verify reads.
	MaxLength = 8 << 10
)

// Errors Verify returns, wrapped; each wraps ErrInvalid too. A gateway
// answers all of them 401, and refetches the JWKS once on ErrUnknownKey.
var (
	// ErrInvalid is matched by every verification error.
	ErrInvalid = errors.New("invalid access token")
	// ErrMalformed: not three base64url parts of JSON, or claims of the
	// wrong type.
	ErrMalformed = fmt.Errorf("%w: malformed", ErrInvalid)
	// ErrAlgorithm: the header's alg is not ES256 (none, HS256, RS256...).
	ErrAlgorithm = fmt.Errorf("%w: algorithm not allowed", ErrInvalid)
	// ErrUnknownKey: the header has no kid, or one not in the keyset.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrInvalid)
	// ErrSignature: the signature does not verify with the named key.
	ErrSignature = fmt.Errorf("%w: bad signature", ErrInvalid)
	// ErrExpired: exp is past (beyond the leeway).
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)
	// ErrNotYetValid: nbf or iat is in the future (beyond the leeway).
	ErrNotYetValid = fmt.Errorf("%w: not valid yet", ErrInvalid)
	// ErrIssuer: iss is not Issuer.
	ErrIssuer = fmt.Errorf("%w: wrong issuer", ErrInvalid)
	// ErrAudience: aud does not include Audience.
	ErrAudience = fmt.Errorf("%w: wrong audience", ErrInvalid)
	// ErrClaims: a required claim is missing or out of range (exp, iss,
	// aud, sub, sid, iat; a lifetime longer than TTL).
	ErrClaims = fmt.Errorf("%w: bad claims", ErrInvalid)
)

// Claims are what an access token says.
type Claims struct {
	// AccountID is "sub".
	AccountID string
	// Roles are the account's roles.
	Roles []string
	// SessionID is "sid", the refresh-token family.
	SessionID string
	// ID is "jti".
	ID        string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// KeyID is the header's "kid" (filled by Verify; ignored by Sign).
	KeyID string
}

// jwtClaims is the JSON form of Claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	Roles     []string `json:"roles"`
	SessionID string   `json:"sid"`
}

// Sign returns c as a compact JWS signed with key, naming kid in the
// header. Issuer and Audience are set here; c's times are truncated to
// seconds (NumericDate).
func Sign(c Claims, kid string, key *ecdsa.PrivateKey) (string, error) {
	if kid == "" || key == nil {
		return "", errors.New("token: sign: a key and its id are required")
	}
	jc := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   c.AccountID,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
			NotBefore: jwt.NewNumericDate(c.NotBefore),
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ID:        c.ID,
		},
		Roles:     c.Roles,
		SessionID: c.SessionID,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jc)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return s, nil
}

// Verify checks an access token against keys at now and returns its claims.
// It accepts only alg ES256 with a kid present in keys, a valid signature,
// iss Issuer, aud including Audience, exp after now, nbf and iat not after
// now (each within Leeway), non-empty sub and sid, and a lifetime (exp -
// iat) of at most TTL. Every failure wraps ErrInvalid and one of the errors
// above.
func Verify(tokenString string, keys *Keyset, now time.Time) (Claims, error) {
	if len(tokenString) > MaxLength {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLength)
	}
	for i := 0; i < len(tokenString); i++ {
		if c := tokenString[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			// base64 decoders skip line breaks; one spelling per token.
			return Claims{}, fmt.Errorf("%w: character outside base64url", ErrMalformed)
		}
	}
	if keys == nil {
		return Claims{}, fmt.Errorf("%w: no keyset", ErrUnknownKey)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	var jc jwtClaims
	var kid string
	var keyErr error // the key function's own error, which carries detail
	t, err := p.ParseWithClaims(tokenString, &jc, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodES256 {
			keyErr = ErrAlgorithm
			return nil, keyErr
		}
		id, _ := t.Header["kid"].(string)
		if id == "" {
			keyErr = fmt.Errorf("%w: no kid in the header", ErrUnknownKey)
			return nil, keyErr
		}
		pub, ok := keys.Lookup(id)
		if !ok {
			keyErr = fmt.Errorf("%w: kid %.40q", ErrUnknownKey, id)
			return nil, keyErr
		}
		kid = id
		return pub, nil
	})
	if err != nil {
		if keyErr != nil {
			return Claims{}, keyErr
		}
		return Claims{}, classify(t, err)
	}
	c := Claims{
		AccountID: jc.Subject,
		Roles:     jc.Roles,
		SessionID: jc.SessionID,
		ID:        jc.ID,
		KeyID:     kid,
	}
	if jc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no iat", ErrClaims)
	}
	c.IssuedAt = jc.IssuedAt.Time.UTC()
	c.ExpiresAt = jc.ExpiresAt.Time.UTC()
	if jc.NotBefore != nil {
		c.NotBefore = jc.NotBefore.Time.UTC()
	}
	switch {
	case c.AccountID == "":
		return Claims{}, fmt.Errorf("%w: no sub", ErrClaims)
	case c.SessionID == "":
		return Claims{}, fmt.Errorf("%w: no sid", ErrClaims)
	case c.ExpiresAt.Sub(c.IssuedAt) > TTL:
		return Claims{}, fmt.Errorf("%w: lifetime over %s", ErrClaims, TTL)
	}
	return c, nil
}

// classify maps a jwt library error to this package's errors.
func classify(t *jwt.Token, err error) error {
	switch {
	case t != nil && t.Header != nil && t.Header["alg"] != Algorithm:
		return fmt.Errorf("%w: %.20q", ErrAlgorithm, fmt.Sprint(t.Header["alg"]))
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: %v", ErrClaims, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
