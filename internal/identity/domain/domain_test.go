package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"Ann@Example.COM", "ann@example.com", true},
		{"  bob@example.com  ", "bob@example.com", true},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org", true},
		{"", "", false},
		{"no-at-sign", "", false},
		{"@example.com", "", false},
		{"ann@", "", false},
		{"Ann <ann@example.com>", "", false},
		{"ann@example.com (comment)", "", false},
		{"an n@example.com", "", false},
		{"ann@exa\x00mple.com", "", false},
		{"ann@[127.0.0.1]", "", false},
		{strings.Repeat("a", 65) + "@example.com", "", false},
		{"a@" + strings.Repeat("b", 250) + ".com", "", false},
		{"\xff@example.com", "", false},
	}
	for _, tt := range tests {
		got, err := NormalizeEmail("email", tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("NormalizeEmail(%q) error %v does not match ErrInvalidArgument", tt.in, err)
		}
	}
}

func TestCheckNewPassword(t *testing.T) {
	tests := []struct {
		pw, email string
		want      string // substring of the reason; "" means accepted
	}{
		{"correct horse battery", "ann@example.com", ""},
		{"0123456789", "ann@example.com", ""},
		{"ééééééééé1", "", ""},
		{"short", "", "at least 10"},
		{"123456789", "", "at least 10"},
		{"ééééééééé", "", "at least 10"}, // 9 characters, 18 bytes
		{"", "", "required"},
		{"aaaaaaaaaaaa", "", "one character repeated"},
		{"ééééééééééé", "", "one character repeated"},
		{"ann@example.com", "ann@example.com", "email"},
		{"ANN@EXAMPLE.COM", "ann@example.com", "email"},
		{strings.Repeat("ab", MaxPasswordBytes), "", "longer than"},
		{"valid-pass\xff", "", "UTF-8"},
	}
	for _, tt := range tests {
		err := CheckNewPassword("password", tt.pw, tt.email)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckNewPassword(%.20q) = %v, want nil", tt.pw, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckNewPassword(%.20q) = %v, want an error about %q", tt.pw, err, tt.want)
		}
	}
}

func TestNewAccountReportsEveryField(t *testing.T) {
	_, err := NewAccount("not an email", "short", "")
	var fields []string
	for _, f := range FieldErrors(err) {
		fields = append(fields, f.Field)
	}
	if want := []string{"email", "password", "name"}; !slices.Equal(fields, want) {
		t.Errorf("NewAccount(bad, bad, bad) fields = %v, want %v", fields, want)
	}
	a, err := NewAccount(" Ann@Example.com ", "a good password", "  Ann  ")
	if err != nil || a.Email != "ann@example.com" || a.Name != "Ann" || !slices.Equal(a.Roles, []string{RoleViewer}) {
		t.Errorf("NewAccount(good) = %+v, %v; want ann@example.com, Ann, [viewer]", a, err)
	}
}

func TestNormalizeRoles(t *testing.T) {
	got, err := NormalizeRoles("roles", []string{"viewer", "admin", "viewer"})
	if err != nil || !slices.Equal(got, []string{"admin", "viewer"}) {
		t.Errorf("NormalizeRoles(viewer, admin, viewer) = %v, %v; want [admin viewer]", got, err)
	}
	if _, err := NormalizeRoles("roles", []string{"root"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("NormalizeRoles(root) = %v, want ErrInvalidArgument", err)
	}
}

func TestAPIKeyRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		id, key, hash := NewAPIKeySecret()
		if len(key) != APIKeyLength || !strings.HasPrefix(key, APIKeyPrefix+id+"_") {
			t.Fatalf("NewAPIKeySecret key %q does not look like mq_<id>_<secret> with id %q", key, id)
		}
		gotID, gotHash, ok := ParseAPIKey(key)
		if !ok || gotID != id || gotHash != hash {
			t.Fatalf("ParseAPIKey(new key) = %q, %q, %v; want %q, %q, true", gotID, gotHash, ok, id, hash)
		}
		if seen[id] {
			t.Fatalf("NewAPIKeySecret repeated id %q", id)
		}
		seen[id] = true
	}
}

func TestParseAPIKeyRefuses(t *testing.T) {
	_, good, _ := NewAPIKeySecret()
	tests := []string{
		"",
		"mq_",
		good[:len(good)-1],
		good + "A",
		"xx" + good[2:],
		strings.Replace(good, "mq_", "MQ_", 1),
		good[:3] + "A" + good[4:], // upper case in the id
		good[:3] + "1" + good[4:], // '1' is not base32
		good[:3+apiKeyIDLength] + "-" + good[3+apiKeyIDLength+1:], // separator
		good[:len(good)-1] + "!",
		good[:len(good)-1] + "B", // non-zero padding bits: not strict base64url
	}
	for _, in := range tests {
		if id, _, ok := ParseAPIKey(in); ok {
			t.Errorf("ParseAPIKey(%q) = %q, true; want false", in, id)
		}
	}
}

func TestRefreshToken(t *testing.T) {
	raw, hash := NewRefreshToken()
	if got, ok := RefreshTokenHash(raw); !ok || got != hash {
		t.Errorf("RefreshTokenHash(new) = %q, %v; want %q, true", got, ok, hash)
	}
	for _, bad := range []string{"", "abc", raw + "x", raw[:42] + "!", strings.Repeat("A", 42) + "B"} {
		if _, ok := RefreshTokenHash(bad); ok {
			t.Errorf("RefreshTokenHash(%q) ok, want refused", bad)
		}
	}
	if !SameHash(hash, HashSecret(raw)) || SameHash(hash, HashSecret(raw+"x")) {
		t.Error("SameHash does not tell equal from different hashes")
	}
}

func TestRetryAfter(t *testing.T) {
	k := ThrottleKey{ThrottleRule: ThrottleRule{Limit: 3, Window: 15 * time.Minute}}
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	tests := []struct {
		name     string
		failures []time.Time
		wait     time.Duration
		over     bool
	}{
		{"none", nil, 0, false},
		{"under the limit", []time.Time{ago(time.Minute), ago(2 * time.Minute)}, 0, false},
		{"at the limit", []time.Time{ago(time.Minute), ago(2 * time.Minute), ago(10 * time.Minute)}, 5 * time.Minute, true},
		{"rounded up", []time.Time{ago(time.Second), ago(time.Second), ago(15*time.Minute - 1500*time.Millisecond)}, 2 * time.Second, true},
		{"the oldest counted leaves", []time.Time{ago(time.Minute), ago(2 * time.Minute), ago(15 * time.Minute)}, 0, false},
	}
	for _, tt := range tests {
		wait, over := k.RetryAfter(tt.failures, t0)
		if wait != tt.wait || over != tt.over {
			t.Errorf("RetryAfter(%s) = %v, %v; want %v, %v", tt.name, wait, over, tt.wait, tt.over)
		}
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"203.0.113.7", "203.0.113.7"},
		{"203.0.113.7:5555", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an ip", "raw:not an ip"},
	}
	for _, tt := range tests {
		if got := ClientKey(tt.in); got != tt.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	keys := DefaultThrottle.Keys("ann@example.com", "")
	if len(keys) != 1 || keys[0].Limit != 5 {
		t.Errorf("Keys without an address = %+v, want the account key only", keys)
	}
	keys = DefaultThrottle.Keys("ann@example.com", "203.0.113.7")
	if len(keys) != 2 || keys[1].Limit != 20 || keys[0].Hash == keys[1].Hash {
		t.Errorf("Keys with an address = %+v, want account then address", keys)
	}
}

func TestPlanKeys(t *testing.T) {
	policy := KeyPolicy{Lifetime: 24 * time.Hour, Overlap: 16 * time.Minute}
	cur := SigningKey{ID: "cur", State: KeyCurrent, ActivatedAt: t0.Add(-time.Hour)}
	next := SigningKey{ID: "next", State: KeyNext}
	old := SigningKey{ID: "old", State: KeyRetired, RemoveAt: t0.Add(-time.Second)}
	young := SigningKey{ID: "young", State: KeyRetired, RemoveAt: t0.Add(time.Minute)}
	tests := []struct {
		name  string
		keys  []SigningKey
		force bool
		want  KeyPlan
	}{
		{"first start", nil, false, KeyPlan{NewCurrent: true, NewNext: true}},
		{"steady", []SigningKey{cur, next, young}, false, KeyPlan{}},
		{"missing next", []SigningKey{cur}, false, KeyPlan{NewNext: true}},
		{"forced", []SigningKey{cur, next}, true, KeyPlan{Retire: "cur", Promote: "next", NewNext: true}},
		{"lifetime over", []SigningKey{{ID: "cur", State: KeyCurrent, ActivatedAt: t0.Add(-24 * time.Hour)}, next}, false,
			KeyPlan{Retire: "cur", Promote: "next", NewNext: true}},
		{"remove expired retired", []SigningKey{cur, next, old, young}, false, KeyPlan{Remove: []string{"old"}}},
		{"no current", []SigningKey{next}, false, KeyPlan{Promote: "next", NewNext: true}},
		{"forced without next", []SigningKey{cur}, true, KeyPlan{Retire: "cur", NewCurrent: true, NewNext: true}},
	}
	for _, tt := range tests {
		got := PlanKeys(tt.keys, t0, policy, tt.force)
		if got.Retire != tt.want.Retire || got.Promote != tt.want.Promote || got.NewCurrent != tt.want.NewCurrent ||
			got.NewNext != tt.want.NewNext || !slices.Equal(got.Remove, tt.want.Remove) {
			t.Errorf("PlanKeys(%s) = %+v, want %+v", tt.name, got, tt.want)
		}
		if got.Empty() != (tt.want.Retire == "" && tt.want.Promote == "" && !tt.want.NewCurrent && !tt.want.NewNext && len(tt.want.Remove) == 0) {
			t.Errorf("PlanKeys(%s).Empty() = %v", tt.name, got.Empty())
		}
	}
}

func TestPublished(t *testing.T) {
	tests := []struct {
		k    SigningKey
		want bool
	}{
		{SigningKey{State: KeyNext}, true},
		{SigningKey{State: KeyCurrent}, true},
		{SigningKey{State: KeyRetired, RemoveAt: t0.Add(time.Second)}, true},
		{SigningKey{State: KeyRetired, RemoveAt: t0}, false},
		{SigningKey{State: KeyRemoved}, false},
	}
	for _, tt := range tests {
		if got := tt.k.Published(t0); got != tt.want {
			t.Errorf("Published(%s, remove at %v) = %v, want %v", tt.k.State, tt.k.RemoveAt, got, tt.want)
		}
	}
}

func TestCursor(t *testing.T) {
	id, _, _ := NewAPIKeySecret()
	c := Cursor{CreatedAt: t0.Add(123 * time.Microsecond), ID: id}
	got, err := ParseCursor(EncodeCursor(c))
	if err != nil || !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
		t.Errorf("ParseCursor(EncodeCursor(%v)) = %v, %v", c, got, err)
	}
	for _, bad := range []string{"x", "e30", EncodeCursor(Cursor{ID: id}), EncodeCursor(Cursor{CreatedAt: t0, ID: "bad id"}), strings.Repeat("A", 300)} {
		if _, err := ParseCursor(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseCursor(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	for _, tt := range []struct {
		in   int32
		want int
		ok   bool
	}{{0, DefaultPageSize, true}, {1, 1, true}, {100, 100, true}, {101, 0, false}, {-1, 0, false}} {
		got, err := PageSize(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("PageSize(%d) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestNewAPIKeyInput(t *testing.T) {
	viewer := []string{RoleViewer}
	tests := []struct {
		name    string
		keyName string
		roles   []string
		account []string
		expires time.Time
		want    error
		roleOut []string
	}{
		{"defaults to viewer", "ci", nil, viewer, time.Time{}, nil, []string{"viewer"}},
		{"admin for an admin", "ops", []string{"admin"}, []string{"admin", "viewer"}, t0.Add(time.Hour), nil, []string{"admin"}},
		{"admin for a viewer", "ops", []string{"admin"}, viewer, time.Time{}, ErrForbidden, nil},
		{"no name", " ", nil, viewer, time.Time{}, ErrInvalidArgument, nil},
		{"unknown role", "x", []string{"root"}, viewer, time.Time{}, ErrInvalidArgument, nil},
		{"expired", "x", nil, viewer, t0.Add(-time.Hour), ErrInvalidArgument, nil},
		{"far future", "x", nil, viewer, t0.AddDate(11, 0, 0), ErrInvalidArgument, nil},
	}
	for _, tt := range tests {
		k, err := NewAPIKeyInput(tt.keyName, tt.roles, tt.account, tt.expires, t0)
		if !errors.Is(err, tt.want) || (tt.want == nil && !slices.Equal(k.Roles, tt.roleOut)) {
			t.Errorf("NewAPIKeyInput(%s) = %+v, %v; want roles %v, error %v", tt.name, k, err, tt.roleOut, tt.want)
		}
	}
	if got := KeyRoles([]string{"admin", "viewer"}, viewer); !slices.Equal(got, viewer) {
		t.Errorf("KeyRoles(admin viewer; account viewer) = %v, want [viewer]", got)
	}
}

func TestAPIKeyActive(t *testing.T) {
	tests := []struct {
		k    APIKey
		want bool
	}{
		{APIKey{}, true},
		{APIKey{ExpiresAt: t0.Add(time.Second)}, true},
		{APIKey{ExpiresAt: t0}, false},
		{APIKey{RevokedAt: t0.Add(-time.Hour)}, false},
	}
	for _, tt := range tests {
		if got := tt.k.Active(t0); got != tt.want {
			t.Errorf("Active(expires %v, revoked %v) = %v, want %v", tt.k.ExpiresAt, tt.k.RevokedAt, got, tt.want)
		}
	}
}
