// Package domain holds the model of the profiles service and its rules:
// what a valid profile name, maturity level, language and avatar are, how
// many profiles an account may have, My List items, page tokens, the
// changes that become events, and the Repository the service stores them
// in. It imports no transport and no SQL.
//
// Maturity levels and ratings are the catalog's (package
// internal/catalog/domain): the rule of which level sees which rating lives
// there only.
package domain

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
)

// Limits and defaults of profiles.
const (
	// MaxProfiles is the most profiles an account may have.
	MaxProfiles = 5
	// MaxNameLen is the longest profile name, in characters (runes), after
	// trimming surrounding white space.
	MaxNameLen = 40
	// MaxAvatarLen is the longest avatar name, in bytes.
	MaxAvatarLen = 64
	// DefaultLanguage is the language of a profile created without one.
	DefaultLanguage = "en"
	// DefaultMaturity is the level of a profile created without one.
	DefaultMaturity = catalog.LevelAdult
)

// Profile is one viewer of an account.
type Profile struct {
	ID        string
	AccountID string
	// Name is trimmed, 1 to MaxNameLen characters, unique in the account
	// when compared with NameKey.
	Name     string
	Maturity catalog.Level
	// Language is a canonical language tag (see ParseLanguage).
	Language string
	// Avatar names a built-in avatar; empty means the default one.
	Avatar    string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Seq orders the account's profiles, oldest first; the repository
	// assigns it.
	Seq int64
}

// Item is a title on a profile's My List.
type Item struct {
	TitleID string
	// Rating is the title's maturity rating when it was added: ListMyList
	// leaves out items above the profile's current level.
	Rating  catalog.Rating
	AddedAt time.Time
	// Seq orders the list, newest first; the repository assigns it.
	Seq int64
}

// CheckID returns a *FieldError for field unless id is a well-formed
// profile or title id (the catalog's id syntax: 1 to 64 letters, digits,
// '-' or '_').
func CheckID(field, id string) error {
	switch {
	case id == "":
		return Invalid(field, "is required")
	case !catalog.ValidID(id):
		return Invalid(field, "must be 1 to %d letters, digits, '-' or '_'", catalog.MaxIDLen)
	}
	return nil
}

// ParseName trims s and checks it is a profile name: 1 to MaxNameLen
// characters of valid UTF-8 with no control, format (other than the zero
// width joiner of emoji sequences), private-use or line-separator
// characters.
func ParseName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", Invalid("name", "is not valid UTF-8")
	}
	name := strings.TrimSpace(s)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", Invalid("name", "is required")
	case n > MaxNameLen:
		return "", Invalid("name", "must be at most %d characters", MaxNameLen)
	}
	for _, r := range name {
		if !nameRune(r) {
			return "", Invalid("name", "must not contain the character %U", r)
		}
	}
	return name, nil
}

const zeroWidthJoiner = '\u200d'

func nameRune(r rune) bool {
	switch {
	case r == zeroWidthJoiner:
		return true
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp):
		return false
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe: // noncharacters
		return false
	}
	return true
}

// NameKey is the form of a name that uniqueness compares: two names clash
// exactly when strings.EqualFold says they are equal (each rune is
// replaced by the least rune of its simple case-folding orbit).
func NameKey(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// ParseMaturity returns the maturity level named s ("kids", "teen" or
// "adult"), by the catalog's rule.
func ParseMaturity(s string) (catalog.Level, error) {
	l, err := catalog.ParseLevel(s)
	if err != nil {
		return "", Invalid("maturity_level", "must be kids, teen or adult")
	}
	return l, nil
}

// ParseLanguage checks that s is a short BCP 47 language tag and returns it
// in canonical case: a 2 or 3 letter language subtag (lower case), an
// optional 4 letter script (title case) and an optional region of 2
// letters (upper case) or 3 digits, separated by '-'. Examples: "en",
// "fr", "pt-BR", "zh-Hant-TW", "es-419". Extensions and private-use
// subtags are refused.
func ParseLanguage(s string) (string, error) {
	bad := Invalid("language", "must be a language tag such as en, fr or pt-BR")
	if s == "" || len(s) > 2+3+5+4 {
		return "", bad
	}
	parts := strings.Split(s, "-")
	if len(parts) > 3 || !letters(parts[0]) || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return "", bad
	}
	out := []string{strings.ToLower(parts[0])}
	rest := parts[1:]
	if len(rest) > 0 && len(rest[0]) == 4 && letters(rest[0]) {
		out = append(out, strings.ToUpper(rest[0][:1])+strings.ToLower(rest[0][1:]))
		rest = rest[1:]
	}
	if len(rest) > 0 {
		region := rest[0]
		switch {
		case len(region) == 2 && letters(region):
			out = append(out, strings.ToUpper(region))
		case len(region) == 3 && digits(region):
			out = append(out, region)
		default:
			return "", bad
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return "", bad
	}
	return strings.Join(out, "-"), nil
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// ParseAvatar checks that s names an avatar: empty (the default), or up to
// MaxAvatarLen lower-case letters and digits in words joined by single
// '-' ("fox", "robot-2").
func ParseAvatar(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) > MaxAvatarLen {
		return "", Invalid("avatar", "must be at most %d characters", MaxAvatarLen)
	}
	prevDash := true // no leading dash
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevDash = false
		case c == '-' && !prevDash:
			prevDash = true
		default:
			return "", Invalid("avatar", "must be lower-case letters and digits, words joined by '-'")
		}
	}
	if prevDash {
		return "", Invalid("avatar", "must not end with '-'")
	}
	return s, nil
}
