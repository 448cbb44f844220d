package domain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// Page tokens are opaque to clients: URL-safe base64 (no padding) of
//
//	version(1) mode(1) fingerprint(8) position checksum(4)
//
// where mode says which order the token walks (list or search), fingerprint
// is a hash of the query's filters and words (a token only continues the
// query that made it), position is the cursor (list: sort key and id as
// uvarint-length-prefixed strings; search: the score as 8 big-endian bytes
// of its IEEE 754 bits, then the id), and checksum is the first 4 bytes of
// the SHA-256 of everything before it. A token that fails any check is an
// invalid page_token. The checksum catches corruption and casual edits; a
// token forged with a valid checksum only moves the caller to another
// position of a result it may see anyway, so no secret is needed.
const (
	pageTokenVersion = 1
	// MaxPageTokenLen bounds the length of a page token (base64 characters).
	MaxPageTokenLen = 1024

	modeList   byte = 'l'
	modeSearch byte = 's'

	fingerprintLen = 8
	checksumLen    = 4
	headerLen      = 2 + fingerprintLen
	maxKeyLen      = 2 * MaxNameLen // SortKey may grow a name a little
)

var tokenEncoding = base64.RawURLEncoding

func fingerprint(parts ...string) [fingerprintLen]byte {
	h := sha256.New()
	for _, p := range parts {
		// Length-prefixed so that ("ab", "c") and ("a", "bc") differ.
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var out [fingerprintLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

func checksum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:checksumLen]
}

func encodePageToken(mode byte, fp [fingerprintLen]byte, c Cursor) string {
	b := []byte{pageTokenVersion, mode}
	b = append(b, fp[:]...)
	if mode == modeList {
		b = appendString(b, c.SortKey)
	} else {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.Score))
	}
	b = appendString(b, c.ID)
	b = append(b, checksum(b)...)
	return tokenEncoding.EncodeToString(b)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadToken and errForeignToken are the two ways a page token is refused.
var (
	errBadToken     = Invalid("page_token", "malformed page token")
	errForeignToken = Invalid("page_token", "page token belongs to another query")
)

// decodePageToken checks and decodes a token made by encodePageToken for
// mode and the query with fingerprint fp.
func decodePageToken(token string, mode byte, fp [fingerprintLen]byte) (Cursor, error) {
	c, gotMode, gotFP, err := parsePageToken(token)
	if err != nil {
		return Cursor{}, err
	}
	if gotMode != mode || gotFP != fp {
		return Cursor{}, errForeignToken
	}
	return c, nil
}

// parsePageToken decodes a token without knowing its query.
func parsePageToken(token string) (c Cursor, mode byte, fp [fingerprintLen]byte, err error) {
	if len(token) > MaxPageTokenLen {
		return Cursor{}, 0, fp, errBadToken
	}
	b, err := tokenEncoding.DecodeString(token)
	if err != nil || len(b) < headerLen+checksumLen {
		return Cursor{}, 0, fp, errBadToken
	}
	body, sum := b[:len(b)-checksumLen], b[len(b)-checksumLen:]
	if !bytes.Equal(sum, checksum(body)) || body[0] != pageTokenVersion {
		return Cursor{}, 0, fp, errBadToken
	}
	mode = body[1]
	copy(fp[:], body[2:headerLen])
	rest := body[headerLen:]
	switch mode {
	case modeList:
		var ok bool
		if c.SortKey, rest, ok = readString(rest, maxKeyLen); !ok || !utf8.ValidString(c.SortKey) {
			return Cursor{}, 0, fp, errBadToken
		}
	case modeSearch:
		if len(rest) < 8 {
			return Cursor{}, 0, fp, errBadToken
		}
		c.Score = math.Float64frombits(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
		if math.IsNaN(c.Score) || math.IsInf(c.Score, 0) {
			return Cursor{}, 0, fp, errBadToken
		}
	default:
		return Cursor{}, 0, fp, errBadToken
	}
	var ok bool
	if c.ID, rest, ok = readString(rest, MaxIDLen); !ok || !ValidID(c.ID) || len(rest) != 0 {
		return Cursor{}, 0, fp, errBadToken
	}
	// Only the canonical spelling is accepted (no over-long varints or
	// stray base64 bits), so a position has exactly one token.
	if encodePageToken(mode, fp, c) != token {
		return Cursor{}, 0, fp, errBadToken
	}
	return c, mode, fp, nil
}

func readString(b []byte, max int) (s string, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(max) || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}
