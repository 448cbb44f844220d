package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Plan is a subscription plan as playback knows it: how many sessions may
// run at once. Prices belong to billing.
type Plan struct {
	ID         string
	MaxStreams int
}

// plans are the product's plans (PRODUCT.md §4).
var plans = []Plan{
	{ID: "basic", MaxStreams: 1},
	{ID: "standard", MaxStreams: 2},
	{ID: "premium", MaxStreams: 4},
}

// Plans returns every plan, cheapest first.
func Plans() []Plan { return slices.Clone(plans) }

// PlanByID returns the plan named id.
func PlanByID(id string) (Plan, bool) {
	for _, p := range plans {
		if p.ID == id {
			return p, true
		}
	}
	return Plan{}, false
}

// Rental durations.
const (
	// RentalDuration is how long a rental lasts when the grant does not say.
	RentalDuration = 48 * time.Hour
	// MaxRentalDuration bounds the duration a grant may ask for.
	MaxRentalDuration = 30 * 24 * time.Hour
	// RentalStreams is how many sessions rentals allow when the account has
	// no plan.
	RentalStreams = 1
)

// Kind says what an entitlement covers.
type Kind string

// The kinds of entitlement.
const (
	KindPlan   Kind = "plan"   // every title, MaxStreams at once
	KindRental Kind = "rental" // one title, until it expires
)

// Status is the state of an entitlement.
type Status string

// The statuses of an entitlement. Stored rows are active, superseded or
// revoked; expired is derived from ExpiresAt when read, and cancelled
// describes a grant whose revocation came first (nothing was granted).
const (
	StatusActive     Status = "active"
	StatusExpired    Status = "expired"
	StatusSuperseded Status = "superseded"
	StatusRevoked    Status = "revoked"
	StatusCancelled  Status = "cancelled"
)

// Entitlement is an account's right to watch: a plan covers every title, a
// rental one title until it expires.
//
// Plans of an account form a chain: granting a plan supersedes the active
// one and remembers it in SupersedesID; revoking the new plan makes the one
// it superseded active again. At most one plan of an account is active.
type Entitlement struct {
	ID        string
	AccountID string
	Kind      Kind
	// PlanID is set for a plan, TitleID for a rental.
	PlanID  string
	TitleID string
	// MaxStreams is the plan's concurrent sessions (RentalStreams for a
	// rental).
	MaxStreams     int
	OrderID        string
	SagaID         string
	IdempotencyKey string
	// Status is the stored status; use StatusAt for what it is now.
	Status Status
	// SupersedesID is the plan this plan replaced, restored if this one is
	// revoked; empty for rentals and first plans.
	SupersedesID string
	StartsAt     time.Time
	// ExpiresAt is zero for a plan that runs until revoked.
	ExpiresAt time.Time
	RevokedAt time.Time
	CreatedAt time.Time
}

// StatusAt is the entitlement's status at now: an active entitlement past
// its expiry is expired.
func (e Entitlement) StatusAt(now time.Time) Status {
	if e.Status == StatusActive && !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt) {
		return StatusExpired
	}
	return e.Status
}

// ActiveAt reports whether the entitlement gives rights at now.
func (e Entitlement) ActiveAt(now time.Time) bool {
	return e.StatusAt(now) == StatusActive && !now.Before(e.StartsAt)
}

// Grant is a request to give an account a plan or a rental, the entitlement
// step of the CreateOrder saga.
type Grant struct {
	IdempotencyKey string
	OrderID        string
	SagaID         string
	AccountID      string
	// PlanID grants a plan; exactly one of PlanID and TitleID is set.
	PlanID string
	// MaxStreams, when above 0, must equal the plan's.
	MaxStreams int
	// TitleID grants a rental of that title.
	TitleID string
	// RentalDuration is how long a rental lasts; 0 means RentalDuration.
	RentalDuration time.Duration
	// ExpiresAt, when set, ends a plan (the demo seed uses it); grants from
	// orders leave it zero.
	ExpiresAt time.Time
}

// Validate checks the whole grant and returns every problem, joined.
func (g Grant) Validate() error {
	var errs []error
	errs = append(errs, CheckKey("idempotency_key", g.IdempotencyKey), CheckID("account_id", g.AccountID),
		CheckOptionalKey("order_id", g.OrderID), CheckOptionalKey("saga_id", g.SagaID))
	switch {
	case g.PlanID == "" && g.TitleID == "":
		errs = append(errs, Invalid("plan_id", "one of plan_id and title_id is required"))
	case g.PlanID != "" && g.TitleID != "":
		errs = append(errs, Invalid("title_id", "set plan_id or title_id, not both"))
	case g.PlanID != "":
		p, ok := PlanByID(g.PlanID)
		switch {
		case !ok:
			errs = append(errs, Invalid("plan_id", "unknown plan %q", g.PlanID))
		case g.MaxStreams != 0 && g.MaxStreams != p.MaxStreams:
			errs = append(errs, Invalid("max_streams", "plan %s allows %d streams, not %d", p.ID, p.MaxStreams, g.MaxStreams))
		}
		if g.RentalDuration != 0 {
			errs = append(errs, Invalid("rental_duration_seconds", "is for rentals only"))
		}
	default:
		errs = append(errs, CheckID("title_id", g.TitleID))
		if g.RentalDuration < 0 || g.RentalDuration > MaxRentalDuration {
			errs = append(errs, Invalid("rental_duration_seconds", "must be 0 (48 hours) to %d", int(MaxRentalDuration/time.Second)))
		}
		if g.MaxStreams != 0 && g.MaxStreams != RentalStreams {
			errs = append(errs, Invalid("max_streams", "a rental allows %d stream", RentalStreams))
		}
	}
	return errors.Join(errs...)
}

// Fingerprint identifies the grant's arguments, so that a repeated
// idempotency key with other arguments can be told from a retry.
func (g Grant) Fingerprint() string {
	h := sha256.New()
	for _, s := range []string{g.AccountID, g.OrderID, g.PlanID, g.TitleID,
		strconv.Itoa(g.effectiveStreams()), strconv.FormatInt(int64(g.rentalDuration()/time.Second), 10)} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (g Grant) effectiveStreams() int {
	if g.PlanID != "" {
		p, _ := PlanByID(g.PlanID)
		return p.MaxStreams
	}
	return RentalStreams
}

func (g Grant) rentalDuration() time.Duration {
	if g.TitleID != "" && g.RentalDuration == 0 {
		return RentalDuration
	}
	return g.RentalDuration
}

// Entitlement returns the entitlement the (valid) grant creates at now,
// with id.
func (g Grant) Entitlement(id string, now time.Time) Entitlement {
	e := Entitlement{
		ID:             id,
		AccountID:      g.AccountID,
		MaxStreams:     g.effectiveStreams(),
		OrderID:        g.OrderID,
		SagaID:         g.SagaID,
		IdempotencyKey: g.IdempotencyKey,
		Status:         StatusActive,
		StartsAt:       now,
		CreatedAt:      now,
	}
	if g.PlanID != "" {
		e.Kind, e.PlanID, e.ExpiresAt = KindPlan, g.PlanID, g.ExpiresAt
	} else {
		e.Kind, e.TitleID, e.ExpiresAt = KindRental, g.TitleID, now.Add(g.rentalDuration())
	}
	return e
}

// CheckRentable refuses a rental of a title that cannot be rented now.
func CheckRentable(rentable, available bool) error {
	if !available {
		return fmt.Errorf("%w: outside its availability window", ErrTitleUnavailable)
	}
	if !rentable {
		return fmt.Errorf("%w: not offered for rent", ErrTitleUnavailable)
	}
	return nil
}

// Rights are what an account's entitlements allow at one instant.
type Rights struct {
	// Plan is the active plan, nil without one.
	Plan *Entitlement
	// Rentals are the active rentals, newest first.
	Rentals []Entitlement
}

// NewRights keeps the entitlements of ents active at now. Should several
// plans be active, the newest counts.
func NewRights(ents []Entitlement, now time.Time) Rights {
	var r Rights
	for _, e := range ents {
		if !e.ActiveAt(now) {
			continue
		}
		switch e.Kind {
		case KindPlan:
			if r.Plan == nil || e.CreatedAt.After(r.Plan.CreatedAt) {
				e := e
				r.Plan = &e
			}
		case KindRental:
			r.Rentals = append(r.Rentals, e)
		}
	}
	slices.SortStableFunc(r.Rentals, func(a, b Entitlement) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return r
}

// MaxStreams is how many sessions may run at once: the plan's streams, or
// RentalStreams with rentals only, or 0.
func (r Rights) MaxStreams() int {
	switch {
	case r.Plan != nil:
		return r.Plan.MaxStreams
	case len(r.Rentals) > 0:
		return RentalStreams
	}
	return 0
}

// Covers reports whether the rights allow watching titleID.
func (r Rights) Covers(titleID string) bool {
	if r.Plan != nil {
		return true
	}
	for _, e := range r.Rentals {
		if e.TitleID == titleID {
			return true
		}
	}
	return false
}

// CheckStart decides whether one more session of titleID may start when
// active sessions of the account already run: ErrNotEntitled without a
// plan or a rental of the title, ErrTooManyStreams when every stream is
// in use.
func (r Rights) CheckStart(titleID string, active int) error {
	if !r.Covers(titleID) {
		return ErrNotEntitled
	}
	if max := r.MaxStreams(); active >= max {
		return fmt.Errorf("%w (%d of %d)", ErrTooManyStreams, active, max)
	}
	return nil
}
