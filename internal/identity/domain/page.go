package domain

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// Paging of lists (API keys).
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
	maxPageToken    = 200
)

// Cursor is where a page of API keys, newest first, resumes: after the key
// created at CreatedAt with id ID.
type Cursor struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
}

// PageSize checks a requested page size; 0 means DefaultPageSize.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, Invalid("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return 0, Invalid("page_size", "must be at most %d", MaxPageSize)
	}
	return int(n), nil
}

// EncodeCursor returns the opaque page token of c.
func EncodeCursor(c Cursor) string {
	b, _ := json.Marshal(c) // a time and a string always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor reads a page token; "" is the first page (zero cursor).
func ParseCursor(token string) (Cursor, error) {
	var c Cursor
	if token == "" {
		return c, nil
	}
	bad := Invalid("page_token", "is not a token from a previous page")
	if len(token) > maxPageToken {
		return c, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || base64.RawURLEncoding.EncodeToString(b) != token || json.Unmarshal(b, &c) != nil || c.CreatedAt.IsZero() || !ValidAPIKeyID(c.ID) {
		return Cursor{}, bad
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}
