package domain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Paging rules: page_size 0 means DefaultPageSize, larger than MaxPageSize
// is reduced to MaxPageSize, negative is an error.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Search rules: q is at most MaxQueryLen bytes of UTF-8; it is split into
// words of letters and digits (lower-cased, duplicates dropped), of which the
// first MaxSearchTerms are used. Each word matches as a prefix, and a title
// must match every word.
const (
	MaxQueryLen    = 200
	MaxSearchTerms = 8
)

// PageSize applies the paging rules to a requested page size.
func PageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, Invalid("page_size", "must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(n), nil
}

// Filter narrows a browse or a search. Level is required: titles above it
// are left out. Genre "" and Kind "" mean any.
type Filter struct {
	Genre string
	Kind  Kind
	Level Level
}

// NewFilter validates the parts of a filter given as request strings.
func NewFilter(genre, kind string, level Level) (Filter, error) {
	f := Filter{Genre: genre, Level: level}
	var errs []error
	if genre != "" {
		errs = append(errs, CheckGenreID("genre", genre))
	}
	if kind != "" {
		k, err := ParseKind(kind)
		errs = append(errs, err)
		f.Kind = k
	}
	if !level.Valid() {
		errs = append(errs, Invalid("maturity_level", "%q is not a maturity level", level))
	}
	if err := joinErrors(errs); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// ListQuery browses titles ordered by SortKey(name), then id.
type ListQuery struct {
	Filter
	// Limit is the page size, 1..MaxPageSize.
	Limit int
	// After, when set, is the position of the last title of the previous
	// page: the page starts after it.
	After *Cursor
}

// SearchQuery searches titles by words, ordered by relevance (Score,
// highest first), then id.
type SearchQuery struct {
	Filter
	Terms []string
	Limit int
	After *Cursor
}

// Cursor is a position in a result order, carried by a page token.
type Cursor struct {
	// SortKey and ID place a title in browse order.
	SortKey string
	// Score and ID place a title in search order.
	Score float64
	ID    string
}

// Page is one page of titles and the token of the next page ("" at the
// end).
type Page struct {
	Titles        []Title
	NextPageToken string
}

// NewListQuery builds a browse query from a validated filter and the raw
// paging inputs; a page token from another query is refused.
func NewListQuery(f Filter, pageSize int32, pageToken string) (ListQuery, error) {
	n, err := PageSize(pageSize)
	if err != nil {
		return ListQuery{}, err
	}
	q := ListQuery{Filter: f, Limit: n}
	if pageToken != "" {
		c, err := decodePageToken(pageToken, modeList, q.fingerprint())
		if err != nil {
			return ListQuery{}, err
		}
		q.After = &c
	}
	return q, nil
}

// NextPageToken is the token of the page after one ending with last.
func (q ListQuery) NextPageToken(last Title) string {
	return encodePageToken(modeList, q.fingerprint(), Cursor{SortKey: SortKey(last.Name), ID: last.ID})
}

func (q ListQuery) fingerprint() [fingerprintLen]byte {
	return fingerprint("list", q.Genre, string(q.Kind), string(q.Level))
}

// NewSearchQuery builds a search query from text q, a validated filter and
// the raw paging inputs.
func NewSearchQuery(q string, f Filter, pageSize int32, pageToken string) (SearchQuery, error) {
	terms, termsErr := SearchTerms(q)
	n, sizeErr := PageSize(pageSize)
	if err := joinErrors([]error{termsErr, sizeErr}); err != nil {
		return SearchQuery{}, err
	}
	sq := SearchQuery{Filter: f, Terms: terms, Limit: n}
	if pageToken != "" {
		c, err := decodePageToken(pageToken, modeSearch, sq.fingerprint())
		if err != nil {
			return SearchQuery{}, err
		}
		sq.After = &c
	}
	return sq, nil
}

// NextPageToken is the token of the page after one ending with the title
// lastID scored lastScore.
func (q SearchQuery) NextPageToken(lastScore float64, lastID string) string {
	return encodePageToken(modeSearch, q.fingerprint(), Cursor{Score: lastScore, ID: lastID})
}

func (q SearchQuery) fingerprint() [fingerprintLen]byte {
	return fingerprint("search", strings.Join(q.Terms, " "), q.Genre, string(q.Kind), string(q.Level))
}

// NameKey is the key a search matches exactly when its words are those of
// the name: the name's search terms joined by spaces ("" when the name has
// no word).
func NameKey(name string) string {
	terms, err := SearchTerms(name)
	if err != nil {
		return ""
	}
	return strings.Join(terms, " ")
}

// NameKey is the NameKey of a title whose name is exactly what q searches
// for.
func (q SearchQuery) NameKey() string { return strings.Join(q.Terms, " ") }

// SearchTerms splits a search text into the words searched for (see
// MaxQueryLen and MaxSearchTerms). Single-letter words are dropped when
// there are longer ones. A text without any word is an error.
func SearchTerms(q string) ([]string, error) {
	if len(q) > MaxQueryLen {
		return nil, Invalid("q", "is longer than %d bytes", MaxQueryLen)
	}
	if !utf8.ValidString(q) {
		return nil, Invalid("q", "is not valid UTF-8")
	}
	words := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	var terms, short []string
	seen := map[string]bool{}
	for _, w := range words {
		if seen[w] {
			continue
		}
		seen[w] = true
		if utf8.RuneCountInString(w) == 1 {
			short = append(short, w)
			continue
		}
		terms = append(terms, w)
	}
	if len(terms) == 0 {
		terms = short
	}
	if len(terms) == 0 {
		return nil, Invalid("q", "has no words to search for")
	}
	if len(terms) > MaxSearchTerms {
		terms = terms[:MaxSearchTerms]
	}
	return terms, nil
}
