// Package auth authenticates the gateway's callers: access tokens (ES256
// JWTs verified locally with identity's token.Verify, the one verifier,
// against identity's JWKS held in a KeyCache)
// and API keys (verified by identity, cached briefly), and refuses tokens of
// revoked sessions (Revocations, fed by identity's session_revoked events).
//
// Verified tokens are cached by their exact string until they expire, so a
// client reusing its token costs a map lookup, not an ECDSA verification;
// every use still checks the time claims, the revocation set and that the
// signing key is still published.
package auth

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// Defaults for the zero values of Config.
const (
	DefaultMinRefreshInterval = 5 * time.Second
	DefaultAPIKeyTTL          = 30 * time.Second
	DefaultAPIKeyNegativeTTL  = 5 * time.Second
	DefaultAPIKeyCacheSize    = 10000
	DefaultTokenCacheSize     = 50000
	// DefaultRevocationTTL is how long a revoked session is remembered: the
	// access-token lifetime (15 minutes) plus the skew, with a margin.
	DefaultRevocationTTL = 20 * time.Minute
)

// Config tunes an Authenticator; zero values take the defaults. Issuer,
// audience and clock skew are token's (token.Issuer, token.Audience,
// token.Leeway).
type Config struct {
	// MinRefreshInterval spaces JWKS refetches caused by unknown kids.
	MinRefreshInterval time.Duration
	APIKeyTTL          time.Duration
	APIKeyNegativeTTL  time.Duration
	APIKeyCacheSize    int
	TokenCacheSize     int
	RevocationTTL      time.Duration
	// OnKeyFetch, when set, is told of every JWKS fetch's outcome.
	OnKeyFetch func(error)
}

// Failure kinds of Authenticate.
var (
	// ErrNoCredentials: the request carries none (401 without error
	// details).
	ErrNoCredentials = errors.New("no credentials")
	// ErrInvalid: credentials that do not work (401 invalid_token).
	ErrInvalid = errors.New("invalid credentials")
	// ErrUnavailable: identity could not be asked (503).
	ErrUnavailable = errors.New("authentication unavailable")
)

// Error is an authentication failure: Kind is one of the three above, and
// Detail says why, safe to show the caller.
type Error struct {
	Kind   error
	Detail string
	Err    error // the cause, for logs
}

// Error says what failed and why.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Kind.Error() + ": " + e.Detail + ": " + e.Err.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Unwrap lets errors.Is find Kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

func invalid(detail string, err error) *Error {
	return &Error{Kind: ErrInvalid, Detail: detail, Err: err}
}

// Authenticator verifies credentials. It is safe for concurrent use.
type Authenticator struct {
	cfg     Config
	keys    *KeyCache
	apiKeys APIKeyVerifier
	akCache *apiKeyCache
	revoked *Revocations
	log     *slog.Logger

	tokens     sync.Map // token string → *verified
	tokenCount atomic.Int64
}

// verified is a token that token.Verify accepted with keyset ks.
type verified struct {
	claims token.Claims
	ks     *token.Keyset
	key    *ecdsa.PublicKey
	p      principal.Principal
}

// New returns an Authenticator fetching keys from keys and asking apiKeys
// about API keys. Either may be nil, which refuses that kind of credential
// as unavailable.
func New(cfg Config, keys KeySource, apiKeys APIKeyVerifier, log *slog.Logger) *Authenticator {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MinRefreshInterval, DefaultMinRefreshInterval)
	def(&cfg.APIKeyTTL, DefaultAPIKeyTTL)
	def(&cfg.APIKeyNegativeTTL, DefaultAPIKeyNegativeTTL)
	def(&cfg.RevocationTTL, DefaultRevocationTTL)
	if cfg.APIKeyCacheSize <= 0 {
		cfg.APIKeyCacheSize = DefaultAPIKeyCacheSize
	}
	if cfg.TokenCacheSize <= 0 {
		cfg.TokenCacheSize = DefaultTokenCacheSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		cfg:     cfg,
		apiKeys: apiKeys,
		akCache: newAPIKeyCache(cfg.APIKeyTTL, cfg.APIKeyNegativeTTL, cfg.APIKeyCacheSize),
		revoked: NewRevocations(),
		log:     log,
	}
	if keys != nil {
		a.keys = NewKeyCache(keys, cfg.MinRefreshInterval, log, cfg.OnKeyFetch)
	}
	return a
}

// Keys is the JWKS cache, nil without a KeySource.
func (a *Authenticator) Keys() *KeyCache { return a.keys }

// Revocations is the set of revoked sessions.
func (a *Authenticator) Revocations() *Revocations { return a.revoked }

// RevokeSession refuses the tokens of session sid from now on, until they
// would all have expired (counted from at, or now when at is zero).
func (a *Authenticator) RevokeSession(sid string, at time.Time) {
	if at.IsZero() || at.After(time.Now()) {
		at = time.Now()
	}
	a.revoked.Revoke(sid, at.Add(a.cfg.RevocationTTL))
}

// Credentials extracts the credential of a request from its Authorization
// and X-API-Key header values: a bearer token (JWT, or an API key when it
// starts with "mq_") or an X-API-Key. It returns ErrNoCredentials when there
// is none, and an *Error when they are unusable (another scheme, two
// credentials).
func Credentials(authorization []string, xAPIKey []string) (token string, isAPIKey bool, err error) {
	if len(authorization)+len(xAPIKey) == 0 {
		return "", false, ErrNoCredentials
	}
	if len(authorization)+len(xAPIKey) > 1 {
		return "", false, invalid("send one credential, in Authorization or X-API-Key", nil)
	}
	if len(xAPIKey) == 1 {
		k := strings.TrimSpace(xAPIKey[0])
		if !strings.HasPrefix(k, APIKeyPrefix) {
			return "", false, invalid("X-API-Key is not a Marquee API key", nil)
		}
		return k, true, nil
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false, invalid("use the Bearer scheme", nil)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", false, invalid("empty bearer token", nil)
	}
	return tok, strings.HasPrefix(tok, APIKeyPrefix), nil
}

// Authenticate verifies a credential and returns the caller (without
// ClientAddr). Failures are *Error.
func (a *Authenticator) Authenticate(ctx context.Context, token string, isAPIKey bool) (principal.Principal, error) {
	now := time.Now()
	if isAPIKey {
		return a.apiKey(ctx, token, now)
	}
	return a.jwt(ctx, token, now)
}

func (a *Authenticator) apiKey(ctx context.Context, key string, now time.Time) (principal.Principal, error) {
	if a.apiKeys == nil {
		return principal.Principal{}, &Error{Kind: ErrUnavailable, Detail: "API keys are not accepted here"}
	}
	if len(key) > 512 {
		return principal.Principal{}, invalid("API key too long", nil)
	}
	owner, err := a.akCache.lookup(ctx, a.apiKeys, key, now)
	switch {
	case errors.Is(err, ErrInvalidAPIKey):
		return principal.Principal{}, invalid("unknown, revoked or expired API key", nil)
	case err != nil:
		return principal.Principal{}, &Error{Kind: ErrUnavailable, Detail: "could not verify the API key", Err: err}
	}
	return principal.Principal{AccountID: owner.AccountID, Roles: owner.Roles, APIKeyID: owner.KeyID}, nil
}

func (a *Authenticator) jwt(ctx context.Context, tok string, now time.Time) (principal.Principal, error) {
	if a.keys == nil {
		return principal.Principal{}, &Error{Kind: ErrUnavailable, Detail: "access tokens are not accepted here"}
	}
	ks := a.keys.Keys()
	if v, ok := a.tokens.Load(tok); ok {
		e := v.(*verified)
		if e.ks == ks {
			return a.check(e, now)
		}
		// The keyset changed since: the token stays good while its key is
		// still published.
		if cur, ok := ks.Lookup(e.claims.KeyID); ok && cur.Equal(e.key) {
			a.tokens.Store(tok, &verified{claims: e.claims, ks: ks, key: cur, p: e.p})
			return a.check(e, now)
		}
		a.tokens.Delete(tok)
		a.tokenCount.Add(-1)
	}
	if ks == nil {
		if err := a.keys.Load(ctx); err != nil || !a.keys.Loaded() {
			return principal.Principal{}, &Error{Kind: ErrUnavailable, Detail: "signing keys unavailable", Err: err}
		}
		ks = a.keys.Keys()
	}
	c, err := token.Verify(tok, ks, now)
	if errors.Is(err, token.ErrUnknownKey) {
		// Perhaps a key published since the last fetch: wait for a fetch
		// that starts now (see KeyCache), then try once more.
		if rerr := a.keys.Refresh(ctx); rerr == nil {
			ks = a.keys.Keys()
			c, err = token.Verify(tok, ks, now)
		}
	}
	if err != nil {
		return principal.Principal{}, invalid(describe(err), err)
	}
	key, _ := ks.Lookup(c.KeyID)
	e := &verified{claims: c, ks: ks, key: key,
		p: principal.Principal{AccountID: c.AccountID, Roles: c.Roles, SessionID: c.SessionID}}
	a.remember(tok, e, now)
	return a.check(e, now)
}

// check runs the per-use checks of a verified token: its time window
// (token.Verify's, with token.Leeway) and its session.
func (a *Authenticator) check(e *verified, now time.Time) (principal.Principal, error) {
	if !now.Before(e.claims.ExpiresAt.Add(token.Leeway)) {
		return principal.Principal{}, invalid(describe(token.ErrExpired), token.ErrExpired)
	}
	if now.Add(token.Leeway).Before(e.claims.NotBefore) {
		return principal.Principal{}, invalid(describe(token.ErrNotYetValid), token.ErrNotYetValid)
	}
	if a.revoked.Revoked(e.claims.SessionID, now) {
		return principal.Principal{}, invalid("session revoked", nil)
	}
	return e.p, nil
}

// remember caches a verified token; past the cache size, expired tokens
// are dropped, and if that is not enough the whole cache.
func (a *Authenticator) remember(tok string, e *verified, now time.Time) {
	if _, loaded := a.tokens.LoadOrStore(tok, e); loaded {
		return
	}
	if a.tokenCount.Add(1) <= int64(a.cfg.TokenCacheSize) {
		return
	}
	a.tokens.Range(func(k, v any) bool {
		if !now.Before(v.(*verified).claims.ExpiresAt.Add(token.Leeway)) {
			a.tokens.Delete(k)
			a.tokenCount.Add(-1)
		}
		return true
	})
	if a.tokenCount.Load() > int64(a.cfg.TokenCacheSize) {
		a.tokens.Clear()
		a.tokenCount.Store(0)
	}
}

// describe is the caller-facing reason of a Verify error.
func describe(err error) string {
	for _, e := range []struct {
		err  error
		desc string
	}{
		{token.ErrExpired, "token expired"},
		{token.ErrNotYetValid, "token not valid yet"},
		{token.ErrAlgorithm, "algorithm not accepted"},
		{token.ErrUnknownKey, "unknown signing key"},
		{token.ErrSignature, "bad signature"},
		{token.ErrIssuer, "wrong issuer"},
		{token.ErrAudience, "wrong audience"},
		{token.ErrClaims, "missing or bad claims"},
	} {
		if errors.Is(err, e.err) {
			return e.desc
		}
	}
	return "malformed token"
}
