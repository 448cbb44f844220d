package ca

import (
	"errors"
	"strings"
	"testing"
)

func secret(t testing.TB) []byte {
	t.Helper()
	s, err := NewJoinSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 32 {
		t.Fatalf("len(NewJoinSecret()) = %d, want 32", len(s))
	}
	return s
}

func TestJoinTokenRoundTrip(t *testing.T) {
	s := secret(t)
	for _, svc := range []string{"catalog", "control-plane", "a"} {
		tok := JoinToken(s, svc)
		if !strings.HasPrefix(tok, svc+".") {
			t.Errorf("JoinToken(%s) = %q, want SERVICE.TOKEN", svc, tok)
		}
		got, err := CheckJoinToken(s, tok)
		if err != nil || got != svc {
			t.Errorf("CheckJoinToken(JoinToken(%s)) = %q, %v, want %s", svc, got, err, svc)
		}
	}
}

// TestJoinTokenFormat pins the format other tools compute.
func TestJoinTokenFormat(t *testing.T) {
	s := []byte("0123456789abcdef0123456789abcdef")
	// HMAC-SHA256("0123...", "marquee-join/v1/catalog"), base64url without padding.
	const want = "catalog.JehdN_ziTUqNSMSsca2ROb-gaWcEHn7QRaBzJH2nz54"
	if got := JoinToken(s, "catalog"); got != want {
		t.Errorf("JoinToken = %q, want %q", got, want)
	}
}

func TestCheckJoinTokenRefuses(t *testing.T) {
	s := secret(t)
	good := JoinToken(s, "catalog")
	svc, mac, _ := strings.Cut(good, ".")
	flipped := []byte(mac)
	if flipped[3] == 'A' {
		flipped[3] = 'B'
	} else {
		flipped[3] = 'A'
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"other service", "billing." + mac, ErrJoinTokenInvalid},
		{"tampered mac", svc + "." + string(flipped), ErrJoinTokenInvalid},
		{"other secret", JoinToken(secret(t), "catalog"), ErrJoinTokenInvalid},
		{"empty", "", ErrJoinTokenMalformed},
		{"no dot", "catalog" + mac, ErrJoinTokenMalformed},
		{"no mac", "catalog.", ErrJoinTokenMalformed},
		{"no service", "." + mac, ErrJoinTokenMalformed},
		{"bad service", "Catalog." + mac, ErrJoinTokenMalformed},
		{"padded", good + "=", ErrJoinTokenMalformed},
		{"short mac", svc + "." + mac[:20], ErrJoinTokenMalformed},
		{"long mac", good + "AAAA", ErrJoinTokenMalformed},
		{"std base64", svc + "." + strings.NewReplacer("-", "+", "_", "/").Replace(mac) + "+", ErrJoinTokenMalformed},
		{"two dots", good + ".x", ErrJoinTokenMalformed},
		{"garbage", "\x00\xff garbage", ErrJoinTokenMalformed},
		{"huge", strings.Repeat("a", 10000), ErrJoinTokenMalformed},
	}
	for _, tt := range tests {
		got, err := CheckJoinToken(s, tt.token)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: CheckJoinToken = %q, %v, want %v", tt.name, got, err, tt.want)
			continue
		}
		if len(mac) > 0 && strings.Contains(err.Error(), mac[:8]) {
			t.Errorf("%s: error %q echoes the token", tt.name, err)
		}
	}
	if _, err := CheckJoinToken(nil, good); err == nil {
		t.Error("CheckJoinToken with no secret succeeded")
	}
	if _, err := CheckJoinToken(s[:8], JoinToken(s[:8], "catalog")); err == nil {
		t.Error("CheckJoinToken with an 8-byte secret succeeded")
	}
}

func FuzzCheckJoinToken(f *testing.F) {
	s := []byte("0123456789abcdef0123456789abcdef")
	f.Add(JoinToken(s, "catalog"))
	f.Add("catalog.")
	f.Add(".")
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		svc, err := CheckJoinToken(s, token)
		if err != nil {
			if svc != "" {
				t.Fatalf("CheckJoinToken(%q) = %q with error %v", token, svc, err)
			}
			if len(token) > 12 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q echoes the token", err)
			}
			return
		}
		if JoinToken(s, svc) != token {
			t.Fatalf("CheckJoinToken(%q) accepted a token that is not JoinToken(%q)", token, svc)
		}
	})
}
