package domain

import (
	"encoding/base64"
	"strings"
	"time"
)

// Page sizes of list requests.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// PageSize returns the page size a request asks for: 0 means the default.
func PageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, Invalid("page_size", "must be 0 to 100")
	}
	return int(n), nil
}

// PageToken is where a page of orders (newest first) continues: after the
// order created at CreatedAt with ID.
type PageToken struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns the opaque form of t.
func (t PageToken) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + t.ID))
}

// ParsePageToken reads a token made by Encode; an empty string is the
// first page (ok false).
func ParsePageToken(s string) (t PageToken, ok bool, err error) {
	if s == "" {
		return PageToken{}, false, nil
	}
	bad := Invalid("page_token", "is not a token this service issued")
	if len(s) > 400 {
		return PageToken{}, false, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return PageToken{}, false, bad
	}
	at, id, found := strings.Cut(string(b), "|")
	if !found || !idRE.MatchString(id) {
		return PageToken{}, false, bad
	}
	ts, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return PageToken{}, false, bad
	}
	return PageToken{CreatedAt: ts.UTC(), ID: id}, true, nil
}
