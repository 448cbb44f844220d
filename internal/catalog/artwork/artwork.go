// Package artwork draws the catalog's generated artwork: a 2:3 SVG poster
// per title, the same for the same title on every call. Colours and shapes
// come from a hash of the title id; the name is set in large type, wrapped,
// above the kind, year and maturity rating.
package artwork

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

// ContentType is the media type of Poster's output.
const ContentType = "image/svg+xml"

// Poster size, in SVG user units (2:3).
const (
	Width  = 600
	Height = 900
)

const (
	margin   = 44
	maxLines = 4
	fontFace = `'Helvetica Neue', Helvetica, Arial, sans-serif`
)

// Poster returns the SVG poster of t. Only ID, Name, Kind, Year and Rating
// are drawn; any text is escaped, so untrusted names are safe.
func Poster(t domain.Title) []byte {
	h := sha256.Sum256([]byte(t.ID))
	hue1 := (int(h[0])<<8 | int(h[1])) % 360
	hue2 := (hue1 + 40 + int(h[2])%80) % 360
	hue3 := (hue1 + 180 + int(h[3])%60) % 360
	sat := 55 + int(h[4])%20
	// Element ids carry a piece of the hash, so posters inlined in one page
	// do not share gradients.
	id := fmt.Sprintf("%x", h[:4])

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="`,
		Width, Height, Width, Height)
	escape(&b, t.Name)
	b.WriteString(`">`)
	b.WriteString(`<title>`)
	escape(&b, t.Name)
	b.WriteString(`</title>`)
	fmt.Fprintf(&b, `<defs>`+
		`<linearGradient id="bg-%[1]s" x1="0" y1="0" x2="0.35" y2="1">`+
		`<stop offset="0" stop-color="%[2]s"/><stop offset="1" stop-color="%[3]s"/></linearGradient>`+
		`<radialGradient id="glow-%[1]s" cx="0.5" cy="0.5" r="0.5">`+
		`<stop offset="0" stop-color="%[4]s" stop-opacity="0.55"/><stop offset="1" stop-color="%[4]s" stop-opacity="0"/></radialGradient>`+
		`<linearGradient id="shade-%[1]s" x1="0" y1="0" x2="0" y2="1">`+
		`<stop offset="0.45" stop-color="#000" stop-opacity="0"/><stop offset="1" stop-color="#000" stop-opacity="0.8"/></linearGradient>`+
		`</defs>`,
		id, hsl(hue1, sat, 30+int(h[5])%12), hsl(hue2, sat, 10+int(h[6])%8), hsl(hue3, 90, 75))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="url(#bg-%s)"/>`, Width, Height, id)

	// A glowing disc with rings around it, somewhere in the upper half.
	cx := 120 + int(h[7])%360
	cy := 170 + int(h[8])%200
	r := 90 + int(h[9])%90
	fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="%d" fill="url(#glow-%s)"/>`, cx, cy, r*2, id)
	fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="%d" fill="%s" fill-opacity="0.55"/>`, cx, cy, r, hsl(hue3, 80, 62))
	for i := 1; i <= 2+int(h[10])%3; i++ {
		fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="%d" fill="none" stroke="#fff" stroke-opacity="%.2f" stroke-width="2"/>`,
			cx, cy, r+i*(28+int(h[11])%20), 0.22-float64(i)*0.04)
	}
	// Two ridges of a landscape across the lower half.
	for layer := range 2 {
		base := 520 + layer*90
		var pts strings.Builder
		fmt.Fprintf(&pts, "0,%d", Height)
		for x := 0; x <= Width; x += 100 {
			y := base - int(h[12+layer*7+x/100])%110
			fmt.Fprintf(&pts, " %d,%d", x, y)
		}
		fmt.Fprintf(&pts, " %d,%d", Width, Height)
		fmt.Fprintf(&b, `<polygon points="%s" fill="%s" fill-opacity="%.2f"/>`,
			pts.String(), hsl(hue2, sat-15, 8+layer*4), 0.55+float64(layer)*0.3)
	}
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="url(#shade-%s)"/>`, Width, Height, id)
	fmt.Fprintf(&b, `<text x="%d" y="76" fill="#fff" fill-opacity="0.85" font-family="%s" font-size="22" font-weight="700" letter-spacing="7">MARQUEE</text>`,
		margin, fontFace)

	// The name, bottom-aligned above the meta line.
	lines := wrap(t.Name, 14, maxLines)
	longest := 1
	for _, l := range lines {
		longest = max(longest, utf8.RuneCountInString(l))
	}
	// 0.68 em is a generous average advance of a bold sans-serif glyph.
	size := min(92, max(30, int(float64(Width-2*margin)/(float64(longest)*0.68))))
	lineHeight := size * 108 / 100
	y := 760 - (len(lines)-1)*lineHeight
	fmt.Fprintf(&b, `<text fill="#fff" font-family="%s" font-size="%d" font-weight="800" letter-spacing="-1">`, fontFace, size)
	for i, l := range lines {
		fmt.Fprintf(&b, `<tspan x="%d" y="%d">`, margin, y+i*lineHeight)
		escape(&b, l)
		b.WriteString(`</tspan>`)
	}
	b.WriteString(`</text>`)

	meta := strings.ToUpper(string(t.Kind))
	if t.Year > 0 {
		meta += " · " + strconv.Itoa(t.Year)
	}
	fmt.Fprintf(&b, `<text x="%d" y="830" fill="#fff" fill-opacity="0.8" font-family="%s" font-size="24" font-weight="600" letter-spacing="3">`, margin, fontFace)
	escape(&b, meta)
	b.WriteString(`</text>`)
	if t.Rating != "" {
		rating := string(t.Rating)
		w := 24 + 16*utf8.RuneCountInString(rating)
		x := Width - margin - w
		fmt.Fprintf(&b, `<rect x="%d" y="801" width="%d" height="40" rx="6" fill="none" stroke="#fff" stroke-opacity="0.85" stroke-width="2"/>`, x, w)
		fmt.Fprintf(&b, `<text x="%d" y="830" fill="#fff" font-family="%s" font-size="22" font-weight="700" text-anchor="middle">`, x+w/2, fontFace)
		escape(&b, rating)
		b.WriteString(`</text>`)
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

// hsl returns the "#rrggbb" of a colour given as hue (degrees), saturation
// and lightness (percent); hex colours render everywhere SVG does.
func hsl(hue, sat, light int) string {
	s, l := float64(sat)/100, float64(light)/100
	c := (1 - math.Abs(2*l-1)) * s
	hp := float64(hue%360) / 60
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g = c, x
	case hp < 2:
		r, g = x, c
	case hp < 3:
		g, b = c, x
	case hp < 4:
		g, b = x, c
	case hp < 5:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := l - c/2
	channel := func(v float64) int { return int(math.Round((v + m) * 255)) }
	return fmt.Sprintf("#%02x%02x%02x", channel(r), channel(g), channel(b))
}

// escape writes s as XML character data (also valid in a double-quoted
// attribute): markup characters are escaped and characters XML cannot
// carry become U+FFFD.
func escape(b *bytes.Buffer, s string) {
	// EscapeText only fails when its writer does; a bytes.Buffer does not.
	if err := xml.EscapeText(b, []byte(s)); err != nil {
		panic(err)
	}
}

// wrap breaks s into at most maxLines lines of about width characters,
// at spaces; a longer word stays whole on its own line. Text beyond the
// last line is cut with an ellipsis.
func wrap(s string, width, maxLines int) []string {
	words := strings.Fields(s)
	if len(words) == 0 {
		return []string{""}
	}
	var lines []string
	cur := ""
	for _, w := range words {
		switch {
		case cur == "":
			cur = w
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(w) <= width:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	lines = append(lines, cur)
	for i, l := range lines {
		if utf8.RuneCountInString(l) > 2*width {
			lines[i] = string([]rune(l)[:2*width-1]) + "…"
		}
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		last := []rune(lines[maxLines-1])
		if len(last) > width-1 {
			last = last[:width-1]
		}
		lines[maxLines-1] = string(last) + "…"
	}
	return lines
}
