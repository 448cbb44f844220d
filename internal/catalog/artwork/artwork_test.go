package artwork_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/marquee-tv/marquee/internal/catalog/artwork"
	"github.com/marquee-tv/marquee/internal/catalog/demo"
	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

// wellFormed returns the text of the SVG's <title> and an error unless svg
// is well-formed XML rooted at a 600x900 <svg>.
func wellFormed(svg []byte) (title string, err error) {
	dec := xml.NewDecoder(bytes.NewReader(svg))
	depth := 0
	inTitle := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return title, nil
		}
		if err != nil {
			return "", err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				attrs := map[string]string{}
				for _, a := range tok.Attr {
					attrs[a.Name.Local] = a.Value
				}
				if tok.Name.Local != "svg" || attrs["width"] != "600" || attrs["height"] != "900" {
					return "", &xml.SyntaxError{Msg: "root is not a 600x900 svg"}
				}
			}
			inTitle = tok.Name.Local == "title"
			depth++
		case xml.EndElement:
			inTitle = false
			depth--
		case xml.CharData:
			if inTitle {
				title += string(tok)
			}
		}
	}
}

func TestPosterOfEveryDemoTitle(t *testing.T) {
	seen := map[string]bool{}
	for _, title := range demo.Titles() {
		svg := artwork.Poster(title)
		got, err := wellFormed(svg)
		if err != nil {
			t.Errorf("Poster(%s) is not a well-formed poster: %v", title.ID, err)
		}
		if got != title.Name {
			t.Errorf("Poster(%s) title = %q, want %q", title.ID, got, title.Name)
		}
		if !bytes.Equal(svg, artwork.Poster(title)) {
			t.Errorf("Poster(%s) differs between calls", title.ID)
		}
		seen[string(svg)] = true
	}
	if len(seen) != len(demo.Titles()) {
		t.Errorf("%d distinct posters for %d titles", len(seen), len(demo.Titles()))
	}
}

func TestPosterEscapesText(t *testing.T) {
	title := domain.Title{ID: "t-x", Name: `<script>alert("x")</script> & "Friends"`, Kind: domain.KindMovie, Year: 2001, Rating: domain.RatingPG13}
	svg := artwork.Poster(title)
	if bytes.Contains(svg, []byte("<script")) {
		t.Errorf("Poster(%q) contains raw markup", title.Name)
	}
	if got, err := wellFormed(svg); err != nil || got != title.Name {
		t.Errorf("Poster(%q) title = %q, %v; want the name back", title.Name, got, err)
	}
}

func TestPosterWrapsLongNames(t *testing.T) {
	long := domain.Title{ID: "t-y", Name: strings.Repeat("Supercalifragilistic ", 12), Kind: domain.KindSeries}
	svg := artwork.Poster(long)
	if n := bytes.Count(svg, []byte("<tspan")); n < 2 || n > 4 {
		t.Errorf("Poster(long name) has %d lines, want 2 to 4", n)
	}
	if _, err := wellFormed(svg); err != nil {
		t.Errorf("Poster(long name): %v", err)
	}
}

// FuzzPoster checks that any name and id make a well-formed poster that
// shows the name (with characters XML cannot carry replaced).
func FuzzPoster(f *testing.F) {
	f.Add("t-1", "The Silent Harbor", 1999)
	f.Add("x", "<a href='&'>]]>", 0)
	f.Add("", "\x00\xff\ufffe", -5)
	f.Fuzz(func(t *testing.T, id, name string, year int) {
		svg := artwork.Poster(domain.Title{ID: id, Name: name, Kind: domain.KindMovie, Year: year, Rating: domain.RatingR})
		if _, err := wellFormed(svg); err != nil {
			t.Fatalf("Poster(%q, %q) is not well-formed: %v", id, name, err)
		}
	})
}

func TestHSL(t *testing.T) {
	tests := []struct {
		h, s, l int
		want    string
	}{
		{0, 100, 50, "#ff0000"},
		{120, 100, 50, "#00ff00"},
		{240, 100, 50, "#0000ff"},
		{60, 100, 25, "#808000"},
		{0, 0, 100, "#ffffff"},
		{300, 50, 0, "#000000"},
	}
	for _, tt := range tests {
		if got := artwork.HSL(tt.h, tt.s, tt.l); got != tt.want {
			t.Errorf("hsl(%d, %d, %d) = %s, want %s", tt.h, tt.s, tt.l, got, tt.want)
		}
	}
}
