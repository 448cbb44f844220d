package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// Paging rules: page_size 0 means DefaultPageSize, larger than MaxPageSize
// is reduced to MaxPageSize, negative is an error.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageSize returns the page size a request asks for.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, Invalid("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(n), nil
}

// List names which list a page token walks, so that a token of one list
// is refused by the other.
type List byte

// The paged lists.
const (
	ListProfiles List = 'p'
	ListMyList   List = 'm'
)

// Page tokens are opaque to clients: URL-safe base64 (no padding) of
//
//	version(1) list(1) position(uvarint, > 0) checksum(4)
//
// where position is the Seq of the last entry of the previous page and
// checksum is the first 4 bytes of the SHA-256 of what precedes it. The
// checksum catches corruption and casual edits; a forged token only moves
// the caller within a list it may read anyway, so no secret is needed.
const (
	pageTokenVersion = 1
	// MaxPageTokenLen bounds the length of a page token.
	MaxPageTokenLen = 64
	checksumLen     = 4
)

var tokenEncoding = base64.RawURLEncoding

// EncodePageToken returns the token of the position after seq in list.
func EncodePageToken(list List, seq int64) string {
	b := []byte{pageTokenVersion, byte(list)}
	b = binary.AppendUvarint(b, uint64(seq))
	sum := sha256.Sum256(b)
	return tokenEncoding.EncodeToString(append(b, sum[:checksumLen]...))
}

// ParsePageToken returns the position a token of list names: 0 for the
// empty token (the first page), else a positive Seq. Any other token is an
// invalid page_token.
func ParsePageToken(list List, token string) (int64, error) {
	if token == "" {
		return 0, nil
	}
	bad := Invalid("page_token", "malformed page token")
	if len(token) > MaxPageTokenLen {
		return 0, bad
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < 2+1+checksumLen {
		return 0, bad
	}
	body, sum := b[:len(b)-checksumLen], b[len(b)-checksumLen:]
	want := sha256.Sum256(body)
	if !bytes.Equal(sum, want[:checksumLen]) || body[0] != pageTokenVersion {
		return 0, bad
	}
	if List(body[1]) != list {
		return 0, Invalid("page_token", "page token belongs to another list")
	}
	seq, n := binary.Uvarint(body[2:])
	if n <= 0 || 2+n != len(body) || seq == 0 || seq > 1<<62 {
		return 0, bad
	}
	// Only the canonical spelling is accepted (no over-long varints or
	// stray base64 bits), so a position has exactly one token.
	if EncodePageToken(list, int64(seq)) != token {
		return 0, bad
	}
	return int64(seq), nil
}
