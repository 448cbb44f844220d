package domain

import "slices"

// Rating is a maturity rating of a title: an MPA rating for films or a TV
// parental guideline for series.
type Rating string

// The maturity ratings.
const (
	RatingG    Rating = "G"
	RatingPG   Rating = "PG"
	RatingPG13 Rating = "PG-13"
	RatingR    Rating = "R"
	RatingNC17 Rating = "NC-17"
	RatingTVY  Rating = "TV-Y"
	RatingTVY7 Rating = "TV-Y7"
	RatingTVG  Rating = "TV-G"
	RatingTVPG Rating = "TV-PG"
	RatingTV14 Rating = "TV-14"
	RatingTVMA Rating = "TV-MA"
)

// Level is a viewer's maturity level: what a profile may see.
type Level string

// The maturity levels, from the most to the least restricted.
const (
	LevelKids  Level = "kids"
	LevelTeen  Level = "teen"
	LevelAdult Level = "adult"
)

// minLevel is the least level that allows each rating: kids see G, PG,
// TV-Y, TV-Y7 and TV-G; teen adds PG-13, TV-PG and TV-14; adult sees all.
var minLevel = map[Rating]Level{
	RatingG:    LevelKids,
	RatingPG:   LevelKids,
	RatingTVY:  LevelKids,
	RatingTVY7: LevelKids,
	RatingTVG:  LevelKids,
	RatingPG13: LevelTeen,
	RatingTVPG: LevelTeen,
	RatingTV14: LevelTeen,
	RatingR:    LevelAdult,
	RatingNC17: LevelAdult,
	RatingTVMA: LevelAdult,
}

var allRatings = []Rating{
	RatingG, RatingPG, RatingPG13, RatingR, RatingNC17,
	RatingTVY, RatingTVY7, RatingTVG, RatingTVPG, RatingTV14, RatingTVMA,
}

// Ratings returns every rating: the film ratings, then the TV ones.
func Ratings() []Rating { return slices.Clone(allRatings) }

// ParseRating returns the rating named s (exact spelling, e.g. "PG-13").
func ParseRating(s string) (Rating, error) {
	r := Rating(s)
	if !r.Valid() {
		return "", Invalid("maturity_rating", "%q is not a maturity rating", s)
	}
	return r, nil
}

// Valid reports whether r is one of the ratings.
func (r Rating) Valid() bool {
	_, ok := minLevel[r]
	return ok
}

// ParseLevel returns the level named s: "kids", "teen" or "adult".
func ParseLevel(s string) (Level, error) {
	l := Level(s)
	if !l.Valid() {
		return "", Invalid("maturity_level", "%q is not a maturity level (kids, teen or adult)", s)
	}
	return l, nil
}

// Valid reports whether l is one of the levels.
func (l Level) Valid() bool { return l.rank() > 0 }

func (l Level) rank() int {
	switch l {
	case LevelKids:
		return 1
	case LevelTeen:
		return 2
	case LevelAdult:
		return 3
	}
	return 0
}

// MinLevel returns the least level allowed to see r ("" for an unknown
// rating).
func MinLevel(r Rating) Level { return minLevel[r] }

// Allows reports whether a viewer at level may see a title rated r. An
// unknown level or rating allows nothing.
func Allows(level Level, r Rating) bool {
	min, ok := minLevel[r]
	return ok && level.rank() > 0 && level.rank() >= min.rank()
}

// AllowedRatings returns the ratings level allows, in Ratings order.
func (l Level) AllowedRatings() []Rating {
	var out []Rating
	for _, r := range allRatings {
		if Allows(l, r) {
			out = append(out, r)
		}
	}
	return out
}

// Stricter returns the more restricted of two valid levels.
func Stricter(a, b Level) Level {
	if a.rank() <= b.rank() {
		return a
	}
	return b
}
