package domain_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// FuzzNewFields feeds arbitrary create input to the validator: it either
// refuses with field errors naming request fields, or returns fields that
// meet every rule and that validate again to themselves.
func FuzzNewFields(f *testing.F) {
	f.Add("Alex", "adult", "en", "")
	f.Add(" Kids ", "kids", "pt-br", "fox")
	f.Add("", "toddler", "en_US", "Fox!")
	f.Add("👨‍👩‍👧", "teen", "zh-hant-tw", "robot-2")
	f.Add("a\x00b", "", "", "-")
	f.Fuzz(func(t *testing.T, name, maturity, language, avatar string) {
		got, err := domain.NewFields(name, maturity, language, avatar)
		if err != nil {
			fields := domain.FieldErrors(err)
			if !errors.Is(err, domain.ErrInvalidArgument) || len(fields) == 0 {
				t.Fatalf("NewFields(%q, %q, %q, %q) error = %v, want field errors", name, maturity, language, avatar, err)
			}
			for _, fe := range fields {
				switch fe.Field {
				case "name", "maturity_level", "language", "avatar":
				default:
					t.Fatalf("NewFields error names field %q", fe.Field)
				}
			}
			return
		}
		n := utf8.RuneCountInString(got.Name)
		if n < 1 || n > domain.MaxNameLen || strings.TrimSpace(got.Name) != got.Name || !utf8.ValidString(got.Name) {
			t.Fatalf("NewFields(%q) accepted name %q", name, got.Name)
		}
		if !got.Maturity.Valid() || len(got.Language) > 12 || len(got.Avatar) > domain.MaxAvatarLen {
			t.Fatalf("NewFields(%q, %q, %q, %q) = %+v", name, maturity, language, avatar, got)
		}
		again, err := domain.NewFields(got.Name, string(got.Maturity), got.Language, got.Avatar)
		if err != nil || again != got {
			t.Fatalf("NewFields is not idempotent: %+v, then %+v, %v", got, again, err)
		}
	})
}

// FuzzParseLanguage checks every accepted tag is canonical, short and made
// of letters, digits and '-'.
func FuzzParseLanguage(f *testing.F) {
	for _, s := range []string{"en", "pt-BR", "zh-Hant-TW", "es-419", "en_US", "x-priv", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := domain.ParseLanguage(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(got, s) || len(got) > 12 {
			t.Fatalf("ParseLanguage(%q) = %q", s, got)
		}
		if again, err := domain.ParseLanguage(got); err != nil || again != got {
			t.Fatalf("ParseLanguage(%q) = %q, %v; want itself", got, again, err)
		}
		for _, r := range got {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				t.Fatalf("ParseLanguage(%q) = %q has %q", s, got, r)
			}
		}
	})
}

// FuzzPageToken checks the parser never panics, refuses with an invalid
// page_token, and accepts only the canonical encoding of a position.
func FuzzPageToken(f *testing.F) {
	f.Add(domain.EncodePageToken(domain.ListProfiles, 1))
	f.Add(domain.EncodePageToken(domain.ListMyList, 1<<40))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, token string) {
		for _, list := range []domain.List{domain.ListProfiles, domain.ListMyList} {
			seq, err := domain.ParsePageToken(list, token)
			if err != nil {
				if fe := domain.FieldErrors(err); len(fe) != 1 || fe[0].Field != "page_token" {
					t.Fatalf("ParsePageToken(%q) = %v, want an invalid page_token", token, err)
				}
				continue
			}
			if token == "" {
				if seq != 0 {
					t.Fatalf(`ParsePageToken("") = %d`, seq)
				}
				continue
			}
			if seq <= 0 || domain.EncodePageToken(list, seq) != token {
				t.Fatalf("ParsePageToken(%q) = %d, which encodes differently", token, seq)
			}
		}
	})
}
