package domain

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzPageToken feeds arbitrary strings to the page-token parser: it must
// never panic, must refuse with an invalid page_token, and must accept only
// the canonical encoding of what it decodes.
func FuzzPageToken(f *testing.F) {
	f.Add(encodePageToken(modeList, fingerprint("list"), Cursor{SortKey: "the silent harbor", ID: "t-0001"}))
	f.Add(encodePageToken(modeSearch, fingerprint("search", "harbor"), Cursor{Score: 0.25, ID: "t-0002"}))
	f.Add(encodePageToken(modeList, fingerprint("list"), Cursor{SortKey: "", ID: "x"}))
	f.Add("")
	f.Add("AAAA")
	f.Add("not a token")
	f.Fuzz(func(t *testing.T, token string) {
		c, mode, fp, err := parsePageToken(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) || FieldErrors(err)[0].Field != "page_token" {
				t.Fatalf("parsePageToken(%q) error = %v, want invalid page_token", token, err)
			}
			return
		}
		if again := encodePageToken(mode, fp, c); again != token {
			t.Fatalf("encode(parsePageToken(%q)) = %q, want the input back", token, again)
		}
		if !ValidID(c.ID) {
			t.Fatalf("parsePageToken(%q) accepted id %q", token, c.ID)
		}
		if _, err := decodePageToken(token, mode, fp); err != nil {
			t.Fatalf("decodePageToken(%q) = %v after parse succeeded", token, err)
		}
	})
}

// FuzzPageTokenRoundTrip checks that every cursor survives encoding.
func FuzzPageTokenRoundTrip(f *testing.F) {
	f.Add("the silent harbor", 0.5, "t-0001", true)
	f.Add("", -1.0, "a", false)
	f.Fuzz(func(t *testing.T, key string, score float64, id string, list bool) {
		if !ValidID(id) || len(key) > maxKeyLen || !utf8.ValidString(key) || math.IsNaN(score) || math.IsInf(score, 0) {
			return // not a cursor the catalog makes
		}
		mode, c := modeSearch, Cursor{Score: score, ID: id}
		if list {
			mode, c = modeList, Cursor{SortKey: key, ID: id}
		}
		fp := fingerprint("q", key)
		got, err := decodePageToken(encodePageToken(mode, fp, c), mode, fp)
		if err != nil || got != c {
			t.Fatalf("round trip of %+v = %+v, %v", c, got, err)
		}
	})
}

// FuzzSearchTerms checks the search-text parser on arbitrary input: terms
// are lower-case letters and digits only (so they carry no query syntax to
// FTS5 or tsquery), unique, and at most MaxSearchTerms.
func FuzzSearchTerms(f *testing.F) {
	for _, s := range []string{"harbor", `"a" OR b* NEAR(c)`, "x:* & !y | (z)", "café", "sci-fi 2049", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		terms, err := SearchTerms(q)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("SearchTerms(%q) error = %v, want invalid argument", q, err)
			}
			return
		}
		if len(terms) == 0 || len(terms) > MaxSearchTerms {
			t.Fatalf("SearchTerms(%q) = %d terms, want 1..%d", q, len(terms), MaxSearchTerms)
		}
		seen := map[string]bool{}
		for _, term := range terms {
			if term == "" || seen[term] || strings.ContainsFunc(term, func(r rune) bool {
				return !unicode.IsLetter(r) && !unicode.IsDigit(r)
			}) {
				t.Fatalf("SearchTerms(%q) = %q: bad or repeated term %q", q, terms, term)
			}
			seen[term] = true
		}
	})
}

// FuzzCheckID checks that an accepted id is safe to put in a URL path and
// a log line.
func FuzzCheckID(f *testing.F) {
	f.Add("t-0001")
	f.Add("../etc")
	f.Fuzz(func(t *testing.T, id string) {
		if CheckID("id", id) != nil {
			return
		}
		if strings.ContainsAny(id, "/?#%. \n") || len(id) > MaxIDLen {
			t.Fatalf("CheckID accepted %q", id)
		}
	})
}
