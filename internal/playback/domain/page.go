package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Paging of lists.
const (
	// DefaultPageSize is the page size when a request leaves it 0.
	DefaultPageSize = 20
	// MaxPageSize is the largest page size accepted.
	MaxPageSize = 100
	// MaxPageTokenLen bounds the length of a page token (base64 characters).
	MaxPageTokenLen = 256
)

// PageSize returns the effective page size of a request's page_size.
func PageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, Invalid("page_size", "must be 1 to %d (0 for %d)", MaxPageSize, DefaultPageSize)
	}
	return int(n), nil
}

// List names the list a page token walks, so that a token of one list is
// refused by another.
type List byte

// The paged lists.
const (
	ListContinueWatching List = 'c'
	ListEntitlements     List = 'e'
)

// Cursor is a position in a list ordered newest first: the time and id of
// the last item of the previous page.
type Cursor struct {
	At time.Time
	ID string
}

// Page tokens are opaque to clients: URL-safe base64 (no padding) of
//
//	version(1) list(1) unix-microseconds(8, big-endian) id checksum(4)
//
// where checksum is the first 4 bytes of the SHA-256 of what precedes it.
// The checksum catches corruption and casual edits; a forged token only
// moves the caller within a list it may read anyway.
const pageTokenVersion = 1

var tokenEncoding = base64.RawURLEncoding

// EncodePageToken returns the token of c in list l.
func EncodePageToken(l List, c Cursor) string {
	b := make([]byte, 0, 2+8+len(c.ID)+4)
	b = append(b, pageTokenVersion, byte(l))
	b = binary.BigEndian.AppendUint64(b, uint64(c.At.UnixMicro()))
	b = append(b, c.ID...)
	sum := sha256.Sum256(b)
	return tokenEncoding.EncodeToString(append(b, sum[:4]...))
}

// ParsePageToken returns the cursor of a token of list l; the empty token
// is the start of the list (ok false).
func ParsePageToken(l List, token string) (c Cursor, ok bool, err error) {
	if token == "" {
		return Cursor{}, false, nil
	}
	bad := Invalid("page_token", "is not a token of this list")
	if len(token) > MaxPageTokenLen {
		return Cursor{}, false, bad
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 2+8+1+4 || b[0] != pageTokenVersion || b[1] != byte(l) {
		return Cursor{}, false, bad
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:4]) {
		return Cursor{}, false, bad
	}
	micros := int64(binary.BigEndian.Uint64(body[2:10]))
	id := string(body[10:])
	if !ValidID(id) || micros < 0 {
		return Cursor{}, false, bad
	}
	return Cursor{At: time.UnixMicro(micros).UTC(), ID: id}, true, nil
}
