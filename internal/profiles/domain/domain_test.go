package domain_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"Alex", "Alex", false},
		{"  Sam  ", "Sam", false},
		{"\tKids\n", "Kids", false},
		{"Zoë", "Zoë", false},
		{"山田", "山田", false},
		{"👨‍👩‍👧 Family", "👨‍👩‍👧 Family", false}, // zero width joiners
		{strings.Repeat("é", 40), strings.Repeat("é", 40), false},
		{strings.Repeat("é", 41), "", true},
		{"", "", true},
		{"   ", "", true},
		{"a\x00b", "", true},
		{"a\u200bb", "", true}, // zero width space
		{"a\u2028b", "", true}, // line separator
		{"a\ue000b", "", true}, // private use
		{"a\ufffeb", "", true}, // noncharacter
		{"\xff", "", true},
	}
	for _, tt := range tests {
		got, err := domain.ParseName(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseName(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && (!errors.Is(err, domain.ErrInvalidArgument) || domain.FieldErrors(err)[0].Field != "name") {
			t.Errorf("ParseName(%q) error = %v, want an invalid name", tt.in, err)
		}
	}
}

func TestNameKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"Alex", "alex", true},
		{"ALEX", "aLeX", true},
		{"Zoë", "ZOË", true},
		{"Kelvin", "\u212aelvin", true}, // Kelvin sign folds to k
		{"Σίσυφος", "ΣΊΣΥΦΟΣ", true},
		{"Alex", "Alexa", false},
		{"Alex", "Alex ", false}, // names are trimmed before; keys are not
		{"ä", "a", false},
	}
	for _, tt := range tests {
		if got := domain.NameKey(tt.a) == domain.NameKey(tt.b); got != tt.same {
			t.Errorf("NameKey(%q) == NameKey(%q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
		if got := strings.EqualFold(tt.a, tt.b); got != tt.same {
			t.Errorf("EqualFold(%q, %q) = %v; the table disagrees with it", tt.a, tt.b, got)
		}
	}
}

func TestParseLanguage(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"en", "en"},
		{"fr", "fr"},
		{"pt-BR", "pt-BR"},
		{"pt-br", "pt-BR"},
		{"EN-us", "en-US"},
		{"zh-hant-tw", "zh-Hant-TW"},
		{"sr-Latn", "sr-Latn"},
		{"es-419", "es-419"},
		{"fil", "fil"},
		{"", ""},
		{"e", ""},
		{"engl", ""},
		{"en_US", ""},
		{"en-", ""},
		{"-en", ""},
		{"en-USA", ""},
		{"en-1", ""},
		{"en-US-x", ""},
		{"en-Latn-US-fonipa", ""},
		{"x-private", ""},
		{"en-u-ca-gregory", ""},
		{"é", ""},
		{"en US", ""},
	}
	for _, tt := range tests {
		got, err := domain.ParseLanguage(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseLanguage(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseAvatar(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"fox", true},
		{"robot-2", true},
		{"a-b-c", true},
		{strings.Repeat("a", domain.MaxAvatarLen), true},
		{strings.Repeat("a", domain.MaxAvatarLen+1), false},
		{"Fox", false},
		{"-fox", false},
		{"fox-", false},
		{"fox--cub", false},
		{"fox cub", false},
		{"../fox", false},
		{"fox.png", false},
	}
	for _, tt := range tests {
		got, err := domain.ParseAvatar(tt.in)
		if (err == nil) != tt.want || (err == nil && got != tt.in) {
			t.Errorf("ParseAvatar(%q) = %q, %v; want ok %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMaturityUsesTheCatalogLevels(t *testing.T) {
	for _, in := range []string{"kids", "teen", "adult", "", "Kids", "child", " adult"} {
		got, err := domain.ParseMaturity(in)
		want, wantErr := catalog.ParseLevel(in)
		if got != want || (err != nil) != (wantErr != nil) {
			t.Errorf("ParseMaturity(%q) = %q, %v; want %q, %v", in, got, err, want, wantErr)
		}
		if err != nil && domain.FieldErrors(err)[0].Field != "maturity_level" {
			t.Errorf("ParseMaturity(%q) error = %v, want an invalid maturity_level", in, err)
		}
	}
}

func TestNewFields(t *testing.T) {
	tests := []struct {
		name, maturity, language, avatar string
		want                             domain.Fields
		wantFields                       []string
	}{
		{"Alex", "", "", "", domain.Fields{Name: "Alex", Maturity: catalog.LevelAdult, Language: "en"}, nil},
		{" Kids ", "kids", "pt-br", "fox", domain.Fields{Name: "Kids", Maturity: catalog.LevelKids, Language: "pt-BR", Avatar: "fox"}, nil},
		{"", "toddler", "english", "Fox!", domain.Fields{}, []string{"name", "maturity_level", "language", "avatar"}},
		{"Sam", "teen", "en_GB", "", domain.Fields{}, []string{"language"}},
	}
	for _, tt := range tests {
		got, err := domain.NewFields(tt.name, tt.maturity, tt.language, tt.avatar)
		var fields []string
		for _, f := range domain.FieldErrors(err) {
			fields = append(fields, f.Field)
		}
		if got != tt.want || !slices.Equal(fields, tt.wantFields) {
			t.Errorf("NewFields(%q, %q, %q, %q) = %+v, fields %v; want %+v, fields %v",
				tt.name, tt.maturity, tt.language, tt.avatar, got, fields, tt.want, tt.wantFields)
		}
	}
}

func ptr(s string) *string { return &s }

func TestChanges(t *testing.T) {
	base := domain.Profile{Name: "Alex", Maturity: catalog.LevelAdult, Language: "en", Avatar: "fox"}
	tests := []struct {
		what                             string
		name, maturity, language, avatar *string
		want                             domain.Profile
		changed                          bool
		wantFields                       []string
	}{
		{"nothing set", nil, nil, nil, nil, base, false, nil},
		{"same values", ptr("Alex"), ptr("adult"), ptr("en"), ptr("fox"), base, false, nil},
		{"name only", ptr(" Alexa "), nil, nil, nil, domain.Profile{Name: "Alexa", Maturity: catalog.LevelAdult, Language: "en", Avatar: "fox"}, true, nil},
		{"case of name", ptr("ALEX"), nil, nil, nil, domain.Profile{Name: "ALEX", Maturity: catalog.LevelAdult, Language: "en", Avatar: "fox"}, true, nil},
		{"maturity and language", nil, ptr("kids"), ptr("fr-ca"), nil, domain.Profile{Name: "Alex", Maturity: catalog.LevelKids, Language: "fr-CA", Avatar: "fox"}, true, nil},
		{"avatar cleared", nil, nil, nil, ptr(""), domain.Profile{Name: "Alex", Maturity: catalog.LevelAdult, Language: "en"}, true, nil},
		{"empty name, maturity, language", ptr(" "), ptr(""), ptr(""), nil, base, false, []string{"name", "maturity_level", "language"}},
	}
	for _, tt := range tests {
		c, err := domain.NewChanges(tt.name, tt.maturity, tt.language, tt.avatar)
		var fields []string
		for _, f := range domain.FieldErrors(err) {
			fields = append(fields, f.Field)
		}
		if !slices.Equal(fields, tt.wantFields) {
			t.Errorf("%s: NewChanges fields = %v, want %v", tt.what, fields, tt.wantFields)
			continue
		}
		p := base
		if changed := c.Apply(&p); changed != tt.changed || p != tt.want {
			t.Errorf("%s: Apply = %+v, %v; want %+v, %v", tt.what, p, changed, tt.want, tt.changed)
		}
	}
}

func TestCheckTitleAllowed(t *testing.T) {
	tests := []struct {
		level  catalog.Level
		rating catalog.Rating
		want   error
	}{
		{catalog.LevelKids, catalog.RatingG, nil},
		{catalog.LevelKids, catalog.RatingTVY7, nil},
		{catalog.LevelKids, catalog.RatingPG13, domain.ErrMaturityRestricted},
		{catalog.LevelTeen, catalog.RatingTV14, nil},
		{catalog.LevelTeen, catalog.RatingR, domain.ErrMaturityRestricted},
		{catalog.LevelAdult, catalog.RatingNC17, nil},
		{catalog.LevelAdult, "X", domain.ErrMaturityRestricted},
	}
	for _, tt := range tests {
		if got := domain.CheckTitleAllowed(tt.level, tt.rating); !errors.Is(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("CheckTitleAllowed(%s, %s) = %v, want %v", tt.level, tt.rating, got, tt.want)
		}
	}
}

func TestCheckID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"00000000-0000-4000-8000-0000000000a1", true},
		{"t-0001", true},
		{"", false},
		{"a/b", false},
		{"../x", false},
		{strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		if err := domain.CheckID("id", tt.id); (err == nil) != tt.ok {
			t.Errorf("CheckID(%q) = %v, want ok %v", tt.id, err, tt.ok)
		}
	}
}

func TestPageSize(t *testing.T) {
	tests := []struct {
		in      int32
		want    int
		wantErr bool
	}{
		{0, domain.DefaultPageSize, false},
		{1, 1, false},
		{100, 100, false},
		{101, domain.MaxPageSize, false},
		{-1, 0, true},
	}
	for _, tt := range tests {
		got, err := domain.PageSize(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("PageSize(%d) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPageTokens(t *testing.T) {
	for _, seq := range []int64{1, 2, 127, 128, 1 << 40} {
		tok := domain.EncodePageToken(domain.ListMyList, seq)
		if got, err := domain.ParsePageToken(domain.ListMyList, tok); got != seq || err != nil {
			t.Errorf("ParsePageToken(EncodePageToken(%d)) = %d, %v; want %d", seq, got, err, seq)
		}
		if _, err := domain.ParsePageToken(domain.ListProfiles, tok); err == nil {
			t.Errorf("a My List token for %d was accepted as a profiles token", seq)
		}
	}
	if got, err := domain.ParsePageToken(domain.ListProfiles, ""); got != 0 || err != nil {
		t.Errorf(`ParsePageToken("") = %d, %v; want 0, nil`, got, err)
	}
	good := domain.EncodePageToken(domain.ListProfiles, 3)
	for _, bad := range []string{"x", "AAAA", good[:len(good)-1], good + "A", strings.ToUpper(good), domain.EncodePageToken(domain.ListProfiles, 0), strings.Repeat("A", 100)} {
		_, err := domain.ParsePageToken(domain.ListProfiles, bad)
		if fe := domain.FieldErrors(err); len(fe) != 1 || fe[0].Field != "page_token" {
			t.Errorf("ParsePageToken(%q) = %v, want an invalid page_token", bad, err)
		}
	}
}
