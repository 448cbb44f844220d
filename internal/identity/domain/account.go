package domain

import (
	"errors"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Roles an account may hold.
const (
	RoleViewer = "viewer"
	RoleAdmin  = "admin"
)

// Limits on account fields.
const (
	// MaxEmailLength is the longest email address accepted (RFC 5321).
	MaxEmailLength = 254
	// MaxNameLength is the longest display name, in characters.
	MaxNameLength = 100
	// MinPasswordLength is the shortest password accepted at sign-up, in
	// characters.
	MinPasswordLength = 10
	// MaxPasswordBytes bounds a password (and so the work of hashing it).
	MaxPasswordBytes = 1024
)

// Account is a Marquee user. PasswordHash is a PHC-format argon2id string
// (see package password); it never leaves the service.
type Account struct {
	ID           string
	Email        string
	Name         string
	Roles        []string
	PasswordHash string
	CreatedAt    time.Time
}

// HasRole reports whether the account holds role.
func (a Account) HasRole(role string) bool { return slices.Contains(a.Roles, role) }

// ValidRole reports whether role is one Marquee knows.
func ValidRole(role string) bool { return role == RoleViewer || role == RoleAdmin }

// NormalizeRoles checks roles (reporting field on error), removes
// duplicates and sorts them.
func NormalizeRoles(field string, roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !ValidRole(r) {
			return nil, Invalid(field, "unknown role %q (want viewer or admin)", clip(r))
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// NormalizeEmail checks an email address and returns its canonical form:
// trimmed and lower-cased. Only a bare address is accepted (no display
// name, no comments).
func NormalizeEmail(field, email string) (string, error) {
	e := strings.TrimSpace(email)
	switch {
	case e == "":
		return "", Invalid(field, "is required")
	case len(e) > MaxEmailLength:
		return "", Invalid(field, "is longer than %d bytes", MaxEmailLength)
	case !utf8.ValidString(e):
		return "", Invalid(field, "is not valid UTF-8")
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", Invalid(field, "must not contain spaces or control characters")
		}
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", Invalid(field, "is not an email address")
	}
	local, host, ok := strings.Cut(e, "@")
	if !ok || local == "" || len(local) > 64 || host == "" || strings.HasPrefix(host, "[") {
		return "", Invalid(field, "is not an email address")
	}
	return strings.ToLower(e), nil
}

// NormalizeName checks a display name and returns it trimmed.
func NormalizeName(field, name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return "", Invalid(field, "is required")
	case !utf8.ValidString(n):
		return "", Invalid(field, "is not valid UTF-8")
	case utf8.RuneCountInString(n) > MaxNameLength:
		return "", Invalid(field, "is longer than %d characters", MaxNameLength)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return "", Invalid(field, "must not contain control characters")
		}
	}
	return n, nil
}

// CheckNewPassword applies the password policy to a new password for the
// account with the (normalised) email: at least MinPasswordLength
// characters, at most MaxPasswordBytes bytes, not one character repeated,
// and not the email address itself.
func CheckNewPassword(field, password, email string) error {
	if err := CheckPasswordInput(field, password); err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return Invalid(field, "must have at least %d characters", MinPasswordLength)
	}
	first, _ := utf8.DecodeRuneInString(password)
	if strings.Trim(password, string(first)) == "" {
		return Invalid(field, "must not be one character repeated")
	}
	if email != "" && strings.EqualFold(strings.TrimSpace(password), email) {
		return Invalid(field, "must not be the email address")
	}
	return nil
}

// CheckPasswordInput checks a password presented at login: present, valid
// UTF-8 and bounded. Older passwords are not held to the current policy.
func CheckPasswordInput(field, password string) error {
	switch {
	case password == "":
		return Invalid(field, "is required")
	case len(password) > MaxPasswordBytes:
		return Invalid(field, "is longer than %d bytes", MaxPasswordBytes)
	case !utf8.ValidString(password):
		return Invalid(field, "is not valid UTF-8")
	}
	return nil
}

// CheckID checks an opaque id given by a caller.
func CheckID(field, id string) error {
	switch {
	case id == "":
		return Invalid(field, "is required")
	case len(id) > 100:
		return Invalid(field, "is longer than 100 bytes")
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return Invalid(field, "has a character outside printable ASCII")
		}
	}
	return nil
}

// clip shortens a caller's value for an error message.
func clip(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// NewAccount validates a sign-up and returns the account to create,
// without its id, hash and creation time; every invalid field is reported.
func NewAccount(email, password, name string) (Account, error) {
	e, errEmail := NormalizeEmail("email", email)
	n, errName := NormalizeName("name", name)
	errPassword := CheckNewPassword("password", password, e)
	if err := errors.Join(errEmail, errPassword, errName); err != nil {
		return Account{}, err
	}
	return Account{Email: e, Name: n, Roles: []string{RoleViewer}}, nil
}
