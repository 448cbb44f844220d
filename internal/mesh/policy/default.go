package policy

import (
	_ "embed"
	"slices"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the default policy of `marquee dev` as written, with
// its comments: a starting point for a policy file of one's own.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Default returns the default policy of `marquee dev`, parsed. It panics
// if the embedded file is invalid, which the package's tests rule out.
func Default() *Policy {
	p, err := Parse(defaultYAML)
	if err != nil {
		panic("policy: embedded default.yaml is invalid: " + err.Error())
	}
	return p
}
