package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"
)

// Refresh tokens are 32 random bytes, base64url without padding. Only their
// SHA-256 is stored: they carry enough entropy that a fast hash is safe.
const (
	refreshTokenBytes = 32
	// RefreshTokenLength is the length of a refresh token string.
	RefreshTokenLength = 43
	// RefreshTokenTTL is how long a refresh token can be used.
	RefreshTokenTTL = 30 * 24 * time.Hour
)

// NewRefreshToken returns a fresh refresh token and its hash.
func NewRefreshToken() (token, hash string) {
	b := make([]byte, refreshTokenBytes)
	rand.Read(b) // never fails (crypto/rand panics instead)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashSecret(token)
}

// RefreshTokenHash checks the shape of a presented refresh token and
// returns its hash; ok is false for anything that cannot be a refresh
// token.
func RefreshTokenHash(token string) (hash string, ok bool) {
	if len(token) != RefreshTokenLength || !isBase64URL(token) {
		return "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil {
		return "", false
	}
	return HashSecret(token), true
}

// HashSecret is the SHA-256 of a high-entropy secret, hex-encoded: how
// refresh tokens and API keys are stored.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SameHash compares two hex hashes in constant time.
func SameHash(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// API keys look like mq_<id>_<secret>: the prefix "mq_", a 20-character
// id (base32, lower case), an underscore, and a 43-character secret (32
// random bytes, base64url). The id names the key in the API; the whole key
// is stored as its SHA-256 and compared in constant time.
const (
	APIKeyPrefix   = "mq_"
	apiKeyIDBytes  = 12
	apiKeyIDLength = 20
	apiKeySecret   = 32
	// APIKeyLength is the length of a whole API key string.
	APIKeyLength = len(APIKeyPrefix) + apiKeyIDLength + 1 + RefreshTokenLength
	// MaxActiveAPIKeys bounds the unrevoked, unexpired keys of an account.
	MaxActiveAPIKeys = 50
	// MaxAPIKeyNameLength bounds an API key's name, in characters.
	MaxAPIKeyNameLength = 100
)

var apiKeyIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// APIKey is an API key of an account, without its secret.
type APIKey struct {
	ID         string
	AccountID  string
	Name       string
	Roles      []string
	Hash       string // HashSecret of the whole key
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: active
}

// Prefix is the start of the key shown to recognise it: mq_<id>.
func (k APIKey) Prefix() string { return APIKeyPrefix + k.ID }

// Active reports whether the key works at now.
func (k APIKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// NewAPIKeySecret returns a fresh key id, the whole key string to show
// once, and its hash to store.
func NewAPIKeySecret() (id, key, hash string) {
	idb := make([]byte, apiKeyIDBytes)
	rand.Read(idb)
	sec := make([]byte, apiKeySecret)
	rand.Read(sec)
	id = apiKeyIDEncoding.EncodeToString(idb)
	key = APIKeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(sec)
	return id, key, HashSecret(key)
}

// ParseAPIKey checks the shape of a presented API key and returns its id
// and hash; ok is false for anything that cannot be an API key.
func ParseAPIKey(key string) (id, hash string, ok bool) {
	if len(key) != APIKeyLength || !strings.HasPrefix(key, APIKeyPrefix) {
		return "", "", false
	}
	rest := key[len(APIKeyPrefix):]
	id, secret := rest[:apiKeyIDLength], rest[apiKeyIDLength:]
	if !ValidAPIKeyID(id) || secret[0] != '_' {
		return "", "", false
	}
	secret = secret[1:]
	if !isBase64URL(secret) {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return "", "", false
	}
	return id, HashSecret(key), true
}

// ValidAPIKeyID reports whether id has the shape of an API key id.
func ValidAPIKeyID(id string) bool {
	if len(id) != apiKeyIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	b, err := apiKeyIDEncoding.DecodeString(id)
	return err == nil && apiKeyIDEncoding.EncodeToString(b) == id
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewAPIKeyInput validates what CreateAPIKey asks for, given the roles the
// account holds: a name, roles (default viewer) the account holds, and an
// optional expiry in the future.
func NewAPIKeyInput(name string, roles, accountRoles []string, expiresAt, now time.Time) (APIKey, error) {
	n, errName := NormalizeName("name", name)
	if len(roles) == 0 {
		roles = []string{RoleViewer}
	}
	rs, errRoles := NormalizeRoles("roles", roles)
	var errExpiry error
	if !expiresAt.IsZero() && !expiresAt.After(now.Add(time.Minute)) {
		errExpiry = Invalid("expires_at", "must be at least a minute in the future")
	} else if expiresAt.After(now.AddDate(10, 0, 0)) {
		errExpiry = Invalid("expires_at", "must be within ten years")
	}
	if err := errors.Join(errName, errRoles, errExpiry); err != nil {
		return APIKey{}, err
	}
	for _, r := range rs {
		if !slices.Contains(accountRoles, r) {
			return APIKey{}, ErrForbidden
		}
	}
	return APIKey{Name: n, Roles: rs, ExpiresAt: expiresAt}, nil
}

// KeyRoles returns the roles an API key acts with now: its own roles that
// its account still holds.
func KeyRoles(keyRoles, accountRoles []string) []string {
	var out []string
	for _, r := range keyRoles {
		if slices.Contains(accountRoles, r) {
			out = append(out, r)
		}
	}
	return out
}
