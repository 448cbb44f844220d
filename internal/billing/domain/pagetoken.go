package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Cursor is a position in a list ordered newest first: the time and id of
// the last item of the previous page.
type Cursor struct {
	Time time.Time
	ID   string
}

// Page tokens are opaque to clients: URL-safe base64 (no padding) of
//
//	version(1) fingerprint(8) unix-micro(8, big-endian) id-length(uvarint) id checksum(4)
//
// where fingerprint is a hash of the list and its filters (a token only
// continues the list that made it), and checksum is the first 4 bytes of
// the SHA-256 of everything before it. The checksum catches corruption and
// casual edits; a forged token only moves a caller within a list its
// filters already allow, so no secret is needed.
const (
	pageTokenVersion = 1
	// MaxPageTokenLen bounds a page token, in base64 characters.
	MaxPageTokenLen = 512
	fpLen           = 8
	sumLen          = 4
)

var tokenEncoding = base64.RawURLEncoding

var (
	errBadToken     = Invalid("page_token", "malformed page token")
	errForeignToken = Invalid("page_token", "page token belongs to another list")
)

func scopeFingerprint(scope []string) [fpLen]byte {
	h := sha256.New()
	for _, p := range scope {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var out [fpLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// EncodePageToken returns the token continuing after c in the list named
// by scope (the list's name and its filters).
func EncodePageToken(c Cursor, scope ...string) string {
	fp := scopeFingerprint(scope)
	b := []byte{pageTokenVersion}
	b = append(b, fp[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixMicro()))
	b = binary.AppendUvarint(b, uint64(len(c.ID)))
	b = append(b, c.ID...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:sumLen]...)
	return tokenEncoding.EncodeToString(b)
}

// DecodePageToken checks a token made by EncodePageToken for the same
// scope and returns its cursor. Any failure is an invalid page_token.
func DecodePageToken(token string, scope ...string) (Cursor, error) {
	if len(token) > MaxPageTokenLen {
		return Cursor{}, errBadToken
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 1+fpLen+8+1+sumLen {
		return Cursor{}, errBadToken
	}
	body, sum := b[:len(b)-sumLen], b[len(b)-sumLen:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:sumLen]) || body[0] != pageTokenVersion {
		return Cursor{}, errBadToken
	}
	fp := scopeFingerprint(scope)
	if !bytes.Equal(body[1:1+fpLen], fp[:]) {
		return Cursor{}, errForeignToken
	}
	rest := body[1+fpLen:]
	micros := int64(binary.BigEndian.Uint64(rest))
	rest = rest[8:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > MaxIDLen || n != uint64(len(rest)-k) {
		return Cursor{}, errBadToken
	}
	id := string(rest[k:])
	if !printableToken(id, MaxIDLen) {
		return Cursor{}, errBadToken
	}
	c := Cursor{Time: time.UnixMicro(micros).UTC(), ID: id}
	// Only the canonical spelling is accepted, so a position has one token.
	if EncodePageToken(c, scope...) != token {
		return Cursor{}, errBadToken
	}
	return c, nil
}
