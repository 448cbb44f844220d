package domain

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseAPIKey(f *testing.F) {
	_, key, _ := NewAPIKeySecret()
	for _, s := range []string{key, "", "mq_", "mq_aaaaaaaaaaaaaaaaaaaa_", key[:40], strings.ToUpper(key)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id, hash, ok := ParseAPIKey(in)
		if !ok {
			if id != "" || hash != "" {
				t.Fatalf("ParseAPIKey(%q) refused but returned %q, %q", in, id, hash)
			}
			return
		}
		if len(in) != APIKeyLength || !strings.HasPrefix(in, APIKeyPrefix+id+"_") || !ValidAPIKeyID(id) {
			t.Fatalf("ParseAPIKey(%q) accepted id %q", in, id)
		}
		if hash != HashSecret(in) {
			t.Fatalf("ParseAPIKey(%q) hash is not HashSecret of the key", in)
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	id, _, _ := NewAPIKeySecret()
	f.Add(EncodeCursor(Cursor{CreatedAt: t0, ID: id}))
	f.Add("")
	f.Add("e30")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseCursor(in)
		if err != nil || in == "" {
			return
		}
		back, err := ParseCursor(EncodeCursor(c))
		if err != nil || !back.CreatedAt.Equal(c.CreatedAt) || back.ID != c.ID {
			t.Fatalf("cursor %q does not round-trip: %v, %v", in, back, err)
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ann@example.com", " A@B.C ", "a <b@c>", "\x00@x", "@", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeEmail("email", in)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || got != strings.ToLower(got) || strings.TrimSpace(got) != got || strings.Count(got, "@") < 1 {
			t.Fatalf("NormalizeEmail(%q) = %q, not a normalised address", in, got)
		}
		if again, err := NormalizeEmail("email", got); err != nil || again != got {
			t.Fatalf("NormalizeEmail is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

func FuzzClientKey(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "[::1]:80", "x", "", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := ClientKey(in)
		if strings.TrimSpace(in) == "" && got != "" {
			t.Fatalf("ClientKey(%q) = %q, want empty", in, got)
		}
		if len(got) > 110 {
			t.Fatalf("ClientKey(%q) = %q, longer than the bound", in, got)
		}
	})
}
