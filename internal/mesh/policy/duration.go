package policy

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written in policy files as a Go duration
// string ("300ms", "2s", "1m30s"). Bare numbers are refused: a unit-less
// "timeout: 5" is ambiguous and a likely mistake.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string such as "300ms".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"300ms\" or \"2s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit such as \"300ms\" or \"2s\"", s)
	}
	*d = Duration(v)
	return nil
}
