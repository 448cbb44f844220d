package domain

import (
	"net"
	"net/netip"
	"strings"
	"time"
)

// ThrottleRule limits failed logins: at most Limit failures within Window.
type ThrottleRule struct {
	Limit  int
	Window time.Duration
}

// ThrottlePolicy limits failed logins per account (keyed by the normalised
// email, whether or not an account has it, so the limit reveals nothing
// about which emails exist) and per client address.
type ThrottlePolicy struct {
	PerAccount ThrottleRule
	PerAddress ThrottleRule
}

// DefaultThrottle allows 5 failures per account and 20 per client address
// in any 15 minutes. A successful login clears the account's failures (not
// the address's: one good password must not reset a sweep over many
// accounts).
var DefaultThrottle = ThrottlePolicy{
	PerAccount: ThrottleRule{Limit: 5, Window: 15 * time.Minute},
	PerAddress: ThrottleRule{Limit: 20, Window: 15 * time.Minute},
}

// MaxWindow is the longest window of the policy: failures older than it
// can be forgotten.
func (p ThrottlePolicy) MaxWindow() time.Duration {
	return max(p.PerAccount.Window, p.PerAddress.Window)
}

// ThrottleKey is one counter a login attempt counts against: Hash is the
// SHA-256 of the scope and value (the stored key, so neither emails nor
// addresses are kept in the clear), with the rule that applies.
type ThrottleKey struct {
	Hash string
	ThrottleRule
}

// Keys returns the throttling keys of a login attempt for the normalised
// email from the client address addr: the account key first, then, when
// addr is known, the address key.
func (p ThrottlePolicy) Keys(email, addr string) []ThrottleKey {
	keys := []ThrottleKey{{Hash: HashSecret("account:" + email), ThrottleRule: p.PerAccount}}
	if a := ClientKey(addr); a != "" {
		keys = append(keys, ThrottleKey{Hash: HashSecret("address:" + a), ThrottleRule: p.PerAddress})
	}
	return keys
}

// RetryAfter decides whether a key is over its limit, given the times of
// its failures within the window, newest first (at least Limit of them if
// there are that many). When it is, it returns how long until the oldest
// counted failure leaves the window, rounded up to a whole second.
func (k ThrottleKey) RetryAfter(failures []time.Time, now time.Time) (time.Duration, bool) {
	if k.Limit <= 0 || len(failures) < k.Limit {
		return 0, false
	}
	oldest := failures[k.Limit-1]
	wait := oldest.Add(k.Window).Sub(now)
	if wait <= 0 {
		return 0, false
	}
	return (wait + time.Second - 1).Truncate(time.Second), true
}

// ClientKey reduces a client address as the gateway reports it ("ip" or
// "ip:port") to the unit that is throttled: an IPv4 address, or the /64 of
// an IPv6 address (one subscriber usually holds a whole /64). An address
// that does not parse is used as given, clipped; an empty one is "".
func ClientKey(addr string) string {
	a := strings.TrimSpace(addr)
	if a == "" {
		return ""
	}
	if host, _, err := net.SplitHostPort(a); err == nil {
		a = host
	}
	a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
	ip, err := netip.ParseAddr(a)
	if err != nil {
		if len(a) > 100 {
			a = a[:100]
		}
		return "raw:" + a
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}
