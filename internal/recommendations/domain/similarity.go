package domain

import (
	"cmp"
	"math"
	"slices"
)

// The v2 model is item-to-item cosine similarity over binary view vectors:
// title t is the vector over profiles with 1 where the profile viewed t
// (has a View of it). For two titles a and b,
//
//	sim(a, b) = |viewers(a) ∩ viewers(b)| / sqrt(|viewers(a)| · |viewers(b)|)
//
// The store keeps the three counts incrementally (a title's viewers, and
// the co-viewers of every pair), so a similarity is always current and
// costs nothing to compute; Similarities computes the same numbers from
// scratch and is the reference the store is tested against.

// Cosine is the cosine similarity of two binary view vectors with
// viewersA and viewersB ones, both of them in both positions. It is 0 when
// any count is not positive and never above 1.
func Cosine(both, viewersA, viewersB int) float64 {
	if both <= 0 || viewersA <= 0 || viewersB <= 0 {
		return 0
	}
	return min(1, float64(both)/math.Sqrt(float64(viewersA)*float64(viewersB)))
}

// CoView is a pair of titles viewed by the same profiles: Both profiles
// viewed both, SeedViewers viewed Seed and OtherViewers viewed Other.
type CoView struct {
	Seed         string
	Other        string
	Both         int
	SeedViewers  int
	OtherViewers int
}

// Similarity is the cosine similarity of the pair.
func (c CoView) Similarity() float64 { return Cosine(c.Both, c.SeedViewers, c.OtherViewers) }

// Similarities computes sim(a, b) for every pair of distinct titles viewed
// by a common profile, from views: profile id → ids of the titles it
// viewed (repeats ignored).
func Similarities(views map[string][]string) map[string]map[string]float64 {
	viewers := map[string]int{}
	both := map[[2]string]int{}
	for _, titles := range views {
		set := slices.Clone(titles)
		slices.Sort(set)
		set = slices.Compact(set)
		for i, a := range set {
			viewers[a]++
			for _, b := range set[i+1:] {
				both[[2]string{a, b}]++
			}
		}
	}
	out := map[string]map[string]float64{}
	put := func(a, b string, s float64) {
		if out[a] == nil {
			out[a] = map[string]float64{}
		}
		out[a][b] = s
	}
	for pair, n := range both {
		s := Cosine(n, viewers[pair[0]], viewers[pair[1]])
		put(pair[0], pair[1], s)
		put(pair[1], pair[0], s)
	}
	return out
}

// Scored is a title id with a score.
type Scored struct {
	TitleID string
	Score   float64
}

// Ranked returns scores as a list, highest first, ties by id.
func Ranked(scores map[string]float64) []Scored {
	out := make([]Scored, 0, len(scores))
	for id, s := range scores {
		out = append(out, Scored{id, s})
	}
	slices.SortFunc(out, func(a, b Scored) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.TitleID, b.TitleID)
	})
	return out
}
