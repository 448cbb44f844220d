package ca

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// joinContext separates join-token MACs from any other use of the secret.
const joinContext = "marquee-join/v1/"

// MinJoinSecret is the shortest join secret CheckJoinToken accepts.
const MinJoinSecret = 16

// maxJoinToken bounds the input CheckJoinToken looks at: a service name,
// a dot and a base64 MAC fit easily.
const maxJoinToken = 256

// Errors of CheckJoinToken.
var (
	// ErrJoinTokenMalformed: the token is not SERVICE.TOKEN with a valid
	// service name and a base64url HMAC-SHA256.
	ErrJoinTokenMalformed = errors.New("ca: join token is malformed (want SERVICE.TOKEN)")
	// ErrJoinTokenInvalid: the token is well formed but was not made with
	// this secret for the service it names.
	ErrJoinTokenInvalid = errors.New("ca: join token is not valid")
)

// NewJoinSecret returns 32 random bytes for signing join tokens.
func NewJoinSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("ca: join secret: %w", err)
	}
	return b, nil
}

// JoinToken returns the join token that lets a sidecar obtain certificates
// for service: "SERVICE.TOKEN", TOKEN being the unpadded base64url
// HMAC-SHA256 of "marquee-join/v1/"+SERVICE under secret.
func JoinToken(secret []byte, service string) string {
	return service + "." + base64.RawURLEncoding.EncodeToString(joinMAC(secret, service))
}

func joinMAC(secret []byte, service string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(joinContext + service))
	return m.Sum(nil)
}

// CheckJoinToken returns the service a join token was made for, or an
// error wrapping ErrJoinTokenMalformed or ErrJoinTokenInvalid. Errors never
// quote the token.
func CheckJoinToken(secret []byte, token string) (service string, err error) {
	if len(secret) < MinJoinSecret {
		return "", fmt.Errorf("ca: join secret is %d bytes, want at least %d", len(secret), MinJoinSecret)
	}
	if token == "" {
		return "", fmt.Errorf("%w: empty", ErrJoinTokenMalformed)
	}
	if len(token) > maxJoinToken {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrJoinTokenMalformed, maxJoinToken)
	}
	service, mac, ok := strings.Cut(token, ".")
	if !ok {
		return "", fmt.Errorf("%w: no dot", ErrJoinTokenMalformed)
	}
	if !serviceName.MatchString(service) {
		return "", fmt.Errorf("%w: invalid service name", ErrJoinTokenMalformed)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(mac)
	if err != nil || len(got) != sha256.Size {
		return "", fmt.Errorf("%w: the part after the dot is not a base64url HMAC-SHA256", ErrJoinTokenMalformed)
	}
	if !hmac.Equal(got, joinMAC(secret, service)) {
		return "", fmt.Errorf("%w for service %q", ErrJoinTokenInvalid, service)
	}
	return service, nil
}
