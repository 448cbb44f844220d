package domain

import (
	"slices"
	"time"
)

// KeyState is where a signing key is in its life:
//
//	next ──rotate──▶ current ──rotate──▶ retired ──RemoveAt──▶ removed
//
// A next key is published (in the JWKS) before it signs anything, so
// verifiers holding a cached JWKS already know it when it becomes current.
// The current key signs every new access token; there is at most one
// current and one next key (a unique index enforces it). A retired key
// signs nothing but stays published until every token it can have signed
// has expired; then it is removed: unpublished and its private half
// erased.
type KeyState string

// The signing key states.
const (
	KeyNext    KeyState = "next"
	KeyCurrent KeyState = "current"
	KeyRetired KeyState = "retired"
	KeyRemoved KeyState = "removed"
)

// SigningKey is an ECDSA P-256 key that signs access tokens. Private is
// its sealed private half (see package keys); X and Y are the base64url
// coordinates of the public half.
type SigningKey struct {
	ID          string // the JWK thumbprint, used as "kid"
	State       KeyState
	X, Y        string
	Private     string
	CreatedAt   time.Time
	ActivatedAt time.Time // when it became current; zero before
	RetiredAt   time.Time // when it was retired; zero before
	RemoveAt    time.Time // when a retired key stops being published
}

// Published reports whether the key belongs in the JWKS at now.
func (k SigningKey) Published(now time.Time) bool {
	switch k.State {
	case KeyNext, KeyCurrent:
		return true
	case KeyRetired:
		return now.Before(k.RemoveAt)
	}
	return false
}

// KeyPolicy is how long keys live.
type KeyPolicy struct {
	// Lifetime is how long a key stays current before it is rotated
	// automatically.
	Lifetime time.Duration
	// Overlap is how long a retired key stays published: at least the
	// access-token lifetime plus the verifiers' clock leeway plus the time
	// a replica may go on signing with a key it has not yet seen retired.
	Overlap time.Duration
}

// KeyPlan is the change PlanKeys decides.
type KeyPlan struct {
	// Retire is the current key to retire, or "".
	Retire string
	// Promote is the next key to make current, or "".
	Promote string
	// NewCurrent asks for a fresh key that is current at once (only when
	// there is no key to promote: a first start).
	NewCurrent bool
	// NewNext asks for a fresh next key.
	NewNext bool
	// Remove are retired keys past their RemoveAt.
	Remove []string
}

// Empty reports whether the plan changes nothing.
func (p KeyPlan) Empty() bool {
	return p.Retire == "" && p.Promote == "" && !p.NewCurrent && !p.NewNext && len(p.Remove) == 0
}

// PlanKeys decides what to change in keys at now: remove retired keys past
// their overlap; make sure a current and a next key exist; and rotate
// (next → current, current → retired, a new next) when force is set or the
// current key has been current for policy.Lifetime.
func PlanKeys(keys []SigningKey, now time.Time, policy KeyPolicy, force bool) KeyPlan {
	var plan KeyPlan
	var cur, next *SigningKey
	for i := range keys {
		k := &keys[i]
		switch k.State {
		case KeyCurrent:
			cur = k
		case KeyNext:
			next = k
		case KeyRetired:
			if !now.Before(k.RemoveAt) {
				plan.Remove = append(plan.Remove, k.ID)
			}
		}
	}
	slices.Sort(plan.Remove)
	rotate := cur == nil || force || !now.Before(cur.ActivatedAt.Add(policy.Lifetime))
	switch {
	case !rotate:
		plan.NewNext = next == nil
	default:
		if cur != nil {
			plan.Retire = cur.ID
		}
		if next != nil {
			plan.Promote = next.ID
		} else {
			plan.NewCurrent = true
		}
		plan.NewNext = true
	}
	return plan
}
