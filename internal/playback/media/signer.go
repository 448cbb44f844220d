package media

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Errors of signed URLs. The handler answers both with 403.
var (
	// ErrInvalidSignature means the URL is malformed, unsigned, or its
	// signature does not match (it was altered or signed with another key).
	ErrInvalidSignature = errors.New("media: invalid signature")
	// ErrExpired means the signature is valid but its expiry has passed.
	ErrExpired = errors.New("media: URL expired")
)

// PathPrefix starts every media path.
const PathPrefix = "/media/"

// Query parameters of a signed URL.
const (
	ParamExpires   = "exp"
	ParamSession   = "sid"
	ParamSignature = "sig"
)

const (
	// MinKeySize is the least signing key size accepted, in bytes.
	MinKeySize = 32
	// maxSessionLen bounds the session id in a URL.
	maxSessionLen = 128
	// maxExpiresLen bounds the digits of exp (Unix seconds until year
	// 33658).
	maxExpiresLen = 12
	sigLen        = sha256.Size
)

var sigEncoding = base64.RawURLEncoding

// Signer signs and verifies media URLs with one HMAC-SHA256 key.
type Signer struct {
	key []byte
}

// NewSigner returns a signer with key, which must be at least MinKeySize
// random bytes.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("media: signing key is %d bytes, want at least %d", len(key), MinKeySize)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

// Signed is what a media URL names and claims.
type Signed struct {
	Asset   string
	File    string
	Session string
	// Expires is Unix seconds.
	Expires int64
	// Sig is the HMAC the URL carries (empty before signing).
	Sig []byte
}

func (s *Signer) mac(x Signed) []byte {
	m := hmac.New(sha256.New, s.key)
	// Length-prefixed fields, so that no two different tuples share a
	// message.
	for _, f := range []string{"marquee-media-v1", x.Asset, x.File, x.Session, strconv.FormatInt(x.Expires, 10)} {
		fmt.Fprintf(m, "%d:%s\n", len(f), f)
	}
	return m.Sum(nil)
}

// URL returns the signed path and query of file of asset for session,
// valid until exp (rounded down to the second).
func (s *Signer) URL(asset, file, session string, exp time.Time) string {
	x := Signed{Asset: asset, File: file, Session: session, Expires: exp.Unix()}
	q := url.Values{}
	q.Set(ParamExpires, strconv.FormatInt(x.Expires, 10))
	q.Set(ParamSession, session)
	q.Set(ParamSignature, sigEncoding.EncodeToString(s.mac(x)))
	return PathPrefix + url.PathEscape(asset) + "/" + url.PathEscape(file) + "?" + q.Encode()
}

// Verify checks that x carries a valid signature and, if so, that it has
// not expired at now.
func (s *Signer) Verify(x Signed, now time.Time) error {
	if !hmac.Equal(x.Sig, s.mac(x)) {
		return ErrInvalidSignature
	}
	if now.Unix() >= x.Expires {
		return ErrExpired
	}
	return nil
}

// ErrBadPath means a request path is not /media/{asset}/{file} with valid
// names.
var ErrBadPath = errors.New("media: not a media path")

// ParsePath splits a request path into asset and file names. It accepts
// exactly /media/{asset}/{file} where both are valid names (letters,
// digits, '-', '_', '.', not starting with '.'), so "..", empty segments
// and further slashes are refused.
func ParsePath(p string) (asset, file string, err error) {
	rest, ok := strings.CutPrefix(p, PathPrefix)
	if !ok {
		return "", "", ErrBadPath
	}
	asset, file, ok = strings.Cut(rest, "/")
	if !ok || !validSegment(asset) || !validSegment(file) {
		return "", "", ErrBadPath
	}
	return asset, file, nil
}

// ParseQuery reads the signature claims of a raw query string: exactly one
// exp (decimal Unix seconds), sid and sig (unpadded base64url of 32
// bytes), and nothing else. Anything malformed is ErrInvalidSignature.
func ParseQuery(rawQuery string) (session string, expires int64, sig []byte, err error) {
	q, perr := url.ParseQuery(rawQuery)
	if perr != nil || len(q) != 3 {
		return "", 0, nil, ErrInvalidSignature
	}
	one := func(k string) (string, bool) {
		v := q[k]
		return firstOf(v), len(v) == 1
	}
	exp, ok1 := one(ParamExpires)
	session, ok2 := one(ParamSession)
	sigText, ok3 := one(ParamSignature)
	if !ok1 || !ok2 || !ok3 {
		return "", 0, nil, ErrInvalidSignature
	}
	if exp == "" || len(exp) > maxExpiresLen || strings.TrimLeft(exp, "0123456789") != "" {
		return "", 0, nil, ErrInvalidSignature
	}
	expires, perr = strconv.ParseInt(exp, 10, 64)
	if perr != nil {
		return "", 0, nil, ErrInvalidSignature
	}
	if session == "" || len(session) > maxSessionLen || !validSession(session) {
		return "", 0, nil, ErrInvalidSignature
	}
	if len(sigText) != sigEncoding.EncodedLen(sigLen) {
		return "", 0, nil, ErrInvalidSignature
	}
	sig, perr = sigEncoding.Strict().DecodeString(sigText)
	if perr != nil || len(sig) != sigLen {
		return "", 0, nil, ErrInvalidSignature
	}
	return session, expires, sig, nil
}

// Parse reads a request path and raw query into the claims to verify.
// A path that is not a media path is ErrBadPath; a malformed query is
// ErrInvalidSignature.
func Parse(path, rawQuery string) (Signed, error) {
	asset, file, err := ParsePath(path)
	if err != nil {
		return Signed{}, err
	}
	session, expires, sig, err := ParseQuery(rawQuery)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Asset: asset, File: file, Session: session, Expires: expires, Sig: sig}, nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// validSession reports whether s looks like a session id: letters, digits,
// '-', '_', '.', ':'.
func validSession(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
