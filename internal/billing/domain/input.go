package domain

import "unicode/utf8"

// Input bounds.
const (
	// MaxKeyLen bounds idempotency keys.
	MaxKeyLen = 200
	// MaxIDLen bounds ids (accounts, orders, sagas, charges).
	MaxIDLen = 128
	// MaxDescriptionLen bounds a charge's description, in bytes.
	MaxDescriptionLen = 500
	// MaxReasonLen bounds a refund's reason, in bytes.
	MaxReasonLen = 500
	// DefaultPageSize is the page size when a request asks for 0.
	DefaultPageSize = 20
	// MaxPageSize is the largest page size.
	MaxPageSize = 100
)

// printableToken reports whether s is 1..max visible ASCII characters
// (no spaces or control characters).
func printableToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// CheckID validates a required id: 1 to MaxIDLen visible ASCII characters.
func CheckID(field, s string) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if !printableToken(s, MaxIDLen) {
		return Invalid(field, "must be 1 to %d visible ASCII characters", MaxIDLen)
	}
	return nil
}

// CheckKey validates a required idempotency key: 1 to MaxKeyLen visible
// ASCII characters.
func CheckKey(field, s string) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if !printableToken(s, MaxKeyLen) {
		return Invalid(field, "must be 1 to %d visible ASCII characters", MaxKeyLen)
	}
	return nil
}

// CheckText validates free text: valid UTF-8 without control characters
// other than tab, at most max bytes.
func CheckText(field, s string, max int) error {
	if len(s) > max {
		return Invalid(field, "at most %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return Invalid(field, "must be UTF-8")
	}
	for _, r := range s {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return Invalid(field, "must not hold control characters")
		}
	}
	return nil
}

// PageSize returns the page size for a requested n: DefaultPageSize for 0,
// n for 1..MaxPageSize, an invalid page_size otherwise.
func PageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return DefaultPageSize, nil
	case n < 0 || n > MaxPageSize:
		return 0, Invalid("page_size", "must be 0 to %d", MaxPageSize)
	}
	return int(n), nil
}
