package domain

import (
	"math"
	"time"
)

// BucketSize is the granularity at which plays are counted for trending.
const BucketSize = time.Hour

// Bucket returns the start of the bucket t falls in, in UTC.
func Bucket(t time.Time) time.Time { return t.UTC().Truncate(BucketSize) }

// Activity is the number of plays of a title that started in one bucket.
type Activity struct {
	TitleID string
	Bucket  time.Time
	Plays   int
}

// Trending says how plays become a trending score: each play weighs
// 2^(-age/HalfLife), where age is measured from the middle of its bucket,
// and plays older than Window weigh nothing.
type Trending struct {
	Window   time.Duration
	HalfLife time.Duration
}

// DefaultTrending is a week's window with a one-day half-life.
var DefaultTrending = Trending{Window: 7 * 24 * time.Hour, HalfLife: 24 * time.Hour}

// Since is the oldest bucket start that can still count at now.
func (c Trending) Since(now time.Time) time.Time {
	return Bucket(now.Add(-c.Window))
}

// Weight is the weight at now of one play in the bucket starting at bucket.
func (c Trending) Weight(bucket, now time.Time) float64 {
	if bucket.Add(BucketSize).Before(now.Add(-c.Window)) || c.HalfLife <= 0 {
		return 0
	}
	age := now.Sub(bucket.Add(BucketSize / 2))
	if age < 0 {
		age = 0 // the current bucket, or a producer clock ahead of ours
	}
	return math.Exp2(-float64(age) / float64(c.HalfLife))
}

// Scores sums the decayed plays per title at now. Titles with no play in
// the window are absent.
func (c Trending) Scores(acts []Activity, now time.Time) map[string]float64 {
	out := map[string]float64{}
	for _, a := range acts {
		if a.Plays <= 0 {
			continue
		}
		if w := c.Weight(a.Bucket, now); w > 0 {
			out[a.TitleID] += float64(a.Plays) * w
		}
	}
	return out
}
