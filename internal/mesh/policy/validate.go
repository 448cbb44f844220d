package policy

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"google.golang.org/grpc/codes"
)

// Limits on policy values. They are generous for real use and exist so a
// typo (a timeout of 5h, 50 retries) is caught before it reaches sidecars.
const (
	MaxTimeout              = 5 * time.Minute
	MaxRetryAttempts        = 5
	MaxMinRetriesConcurrent = 1000
	MaxConsecutiveErrors    = 100
	MaxBaseEjection         = 10 * time.Minute
	MaxFaultDelay           = time.Minute
	MaxWeight               = 1_000_000
	maxMethodLen            = 1024
	maxHeaderValueLen       = 1024
)

// RetryOn values: the failures a retry policy may retry. "unavailable" and
// "reset" mean the request was not processed, so they are safe to retry
// even for calls that change state.
var RetryOn = []string{"unavailable", "reset", "deadline-exceeded", "resource-exhausted", "5xx"}

var (
	nameRE       = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	versionRE    = regexp.MustCompile(`^v[0-9a-z.-]{1,62}$`)
	headerNameRE = regexp.MustCompile("^[a-z0-9!#$%&'*+.^_`|~-]+$")
)

// Validate checks the whole policy and returns every problem found, joined,
// each prefixed with the path of the offending field:
// "services.catalog.retries.attempts: must be at most 5".
func (p *Policy) Validate() error {
	v := &validator{}
	if p == nil {
		v.add("", "policy is missing")
		return v.err()
	}
	for _, name := range p.ServiceNames() {
		path := "services." + name
		if !nameRE.MatchString(name) {
			v.add(path, "service name must match %s", nameRE)
		}
		p.Services[name].validate(v, path)
	}
	return v.err()
}

type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	v.errs = append(v.errs, errors.New(msg))
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) duration(path string, d Duration, max time.Duration) {
	switch {
	case d < 0:
		v.add(path, "must not be negative")
	case d.D() > max:
		v.add(path, "must be at most %s", max)
	}
}

func (v *validator) intRange(path string, n, min, max int) {
	switch {
	case n < min:
		v.add(path, "must be at least %d", min)
	case n > max:
		v.add(path, "must be at most %d", max)
	}
}

func (v *validator) percent(path string, f float64) {
	if math.IsNaN(f) || f < 0 || f > 100 {
		v.add(path, "must be a percentage between 0 and 100")
	}
}

func (s *Service) validate(v *validator, path string) {
	if s == nil {
		return // "catalog:" with nothing under it: nobody may call it.
	}
	s.validateAllow(v, path)
	v.duration(path+".timeout", s.Timeout, MaxTimeout)
	if s.Retries != nil {
		s.Retries.validate(v, path+".retries", s.Timeout)
	}
	if s.Outlier != nil {
		s.Outlier.validate(v, path+".outlier")
	}
	s.validateSplit(v, path+".split")
	for i, r := range s.Routes {
		r.validate(v, fmt.Sprintf("%s.routes[%d]", path, i))
	}
	if s.Fault != nil {
		s.Fault.validate(v, path+".fault")
	}
}

func (s *Service) validateAllow(v *validator, path string) {
	first := map[string]int{}
	for i, a := range s.Allow {
		p := fmt.Sprintf("%s.allow[%d]", path, i)
		switch {
		case a.From == "":
			v.add(p+".from", "is required")
		case !nameRE.MatchString(a.From):
			v.add(p+".from", "%q is not a service name (must match %s)", a.From, nameRE)
		default:
			if j, dup := first[a.From]; dup {
				v.add(p+".from", "%s is already allowed in allow[%d]; list all its methods there", a.From, j)
			} else {
				first[a.From] = i
			}
		}
		if len(a.Methods) == 0 {
			v.add(p+".methods", `must list at least one method ("*" for all)`)
		}
		for j, m := range a.Methods {
			if msg := checkMethod(m); msg != "" {
				v.add(fmt.Sprintf("%s.methods[%d]", p, j), "%s", msg)
			}
		}
	}
}

// checkMethod returns what is wrong with a method pattern, or "".
func checkMethod(m string) string {
	switch {
	case m == "*":
		return ""
	case m == "":
		return "must not be empty"
	case len(m) > maxMethodLen:
		return fmt.Sprintf("must be at most %d bytes", maxMethodLen)
	case m[0] != '/':
		return fmt.Sprintf(`%q must be "*" or a path starting with "/"`, m)
	case strings.IndexByte(m[:len(m)-1], '*') >= 0:
		return fmt.Sprintf(`%q may only have "*" at the end (a prefix match)`, m)
	}
	for _, c := range m {
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return fmt.Sprintf("%q must be a request path without spaces, control characters, query or fragment", m)
		}
	}
	return ""
}

func (r *Retries) validate(v *validator, path string, timeout Duration) {
	v.intRange(path+".attempts", r.Attempts, 0, MaxRetryAttempts)
	v.duration(path+".perTryTimeout", r.PerTryTimeout, MaxTimeout)
	if r.PerTryTimeout > 0 && timeout > 0 && r.PerTryTimeout > timeout {
		v.add(path+".perTryTimeout", "%s is longer than the service timeout %s", r.PerTryTimeout, timeout)
	}
	seen := map[string]bool{}
	for i, on := range r.RetryOn {
		p := fmt.Sprintf("%s.retryOn[%d]", path, i)
		switch {
		case !slices.Contains(RetryOn, on):
			v.add(p, "unknown failure %q (want one of %s)", on, strings.Join(RetryOn, ", "))
		case seen[on]:
			v.add(p, "%s is listed twice", on)
		}
		seen[on] = true
	}
	if r.Attempts > 0 && len(r.RetryOn) == 0 {
		v.add(path+".retryOn", "must name the failures to retry when attempts > 0 (e.g. [unavailable, reset])")
	}
	v.percent(path+".budgetPercent", r.BudgetPercent)
	v.intRange(path+".minRetriesConcurrent", r.MinRetriesConcurrent, 0, MaxMinRetriesConcurrent)
}

func (o *Outlier) validate(v *validator, path string) {
	v.intRange(path+".consecutiveErrors", o.ConsecutiveErrors, 0, MaxConsecutiveErrors)
	v.duration(path+".baseEjection", o.BaseEjection, MaxBaseEjection)
	v.intRange(path+".maxEjectionPercent", o.MaxEjectionPercent, 0, 100)
}

func (s *Service) validateSplit(v *validator, path string) {
	if len(s.Split) == 0 {
		return
	}
	sum := 0
	seen := map[string]int{}
	for i, w := range s.Split {
		p := fmt.Sprintf("%s[%d]", path, i)
		checkVersion(v, p+".version", w.Version)
		if j, dup := seen[w.Version]; dup && w.Version != "" {
			v.add(p+".version", "%s is already weighted in split[%d]", w.Version, j)
		} else {
			seen[w.Version] = i
		}
		v.intRange(p+".weight", w.Weight, 0, MaxWeight)
		if w.Weight > 0 && w.Weight <= MaxWeight {
			sum += w.Weight
		}
	}
	if sum == 0 {
		v.add(path, "weights must add up to more than 0")
	}
}

func checkVersion(v *validator, path, version string) {
	switch {
	case version == "":
		v.add(path, "is required")
	case !versionRE.MatchString(version):
		v.add(path, "%q is not a version name (must match %s, e.g. v2)", version, versionRE)
	}
}

func (r Route) validate(v *validator, path string) {
	if len(r.Headers) == 0 {
		v.add(path+".headers", "must match at least one header")
	}
	for _, name := range sortedKeys(r.Headers) {
		p := path + ".headers." + name
		value := r.Headers[name]
		switch {
		case !headerNameRE.MatchString(name):
			v.add(p, "%q is not a lower-case header name", name)
		case value == "":
			v.add(p, "value must not be empty")
		case len(value) > maxHeaderValueLen:
			v.add(p, "value must be at most %d bytes", maxHeaderValueLen)
		case !printable(value):
			v.add(p, "value must be printable ASCII")
		}
	}
	checkVersion(v, path+".version", r.Version)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func (f *Fault) validate(v *validator, path string) {
	if a := f.Abort; a != nil {
		p := path + ".abort"
		v.percent(p+".percent", a.Percent)
		if a.GRPCCode != "" {
			if c, ok := rpcerr.ParseCode(a.GRPCCode); !ok || c == codes.OK {
				v.add(p+".grpcCode", "%q is not a gRPC error code name (e.g. UNAVAILABLE, INTERNAL)", a.GRPCCode)
			}
		}
		if a.HTTPStatus != 0 {
			v.intRange(p+".httpStatus", a.HTTPStatus, 400, 599)
		}
	}
	if d := f.Delay; d != nil {
		p := path + ".delay"
		v.percent(p+".percent", d.Percent)
		v.duration(p+".duration", d.Duration, MaxFaultDelay)
	}
}
