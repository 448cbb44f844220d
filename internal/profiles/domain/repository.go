package domain

import (
	"context"
	"time"
)

// ChangeKind names a change the repository makes; each becomes one event.
type ChangeKind string

// The changes.
const (
	ProfileCreated ChangeKind = "profile_created"
	ProfileUpdated ChangeKind = "profile_updated"
	ProfileDeleted ChangeKind = "profile_deleted"
	MyListAdded    ChangeKind = "my_list_added"
	MyListRemoved  ChangeKind = "my_list_removed"
)

// Change is one state change, reported inside the transaction that makes
// it. Profile is the profile after the change (before it, for a
// deletion); TitleID is set for My List changes.
type Change struct {
	Kind    ChangeKind
	Profile Profile
	TitleID string
	At      time.Time
}

// Page asks for one page of a list: at most Limit entries after the
// position After (a Seq; 0 means from the start).
type Page struct {
	Limit int
	After int64
}

// SeedProfile is a demo profile with its My List, oldest item first.
type SeedProfile struct {
	Profile Profile
	MyList  []Item
}

// Repository stores profiles and My Lists. Every method that names an
// account acts only on that account's profiles: another account's profile
// is ErrNotFound. Writes are transactional and report their Change inside
// the transaction; a repeat that changes nothing reports none.
// Implementations are safe for concurrent use, across processes too.
type Repository interface {
	// CreateProfile stores p (ID, AccountID, fields and times set) as the
	// newest profile of its account and returns it with Seq set. It fails
	// with ErrProfileLimit when the account has MaxProfiles and with
	// ErrNameTaken when the NameKey of the name is taken in the account.
	CreateProfile(ctx context.Context, p Profile) (Profile, error)
	// Profile returns the profile id of any account.
	Profile(ctx context.Context, id string) (Profile, error)
	// ListProfiles returns a page of the account's profiles, oldest first,
	// and whether more follow.
	ListProfiles(ctx context.Context, accountID string, page Page) (ps []Profile, more bool, err error)
	// UpdateProfile runs update on the account's profile id, locked, and
	// stores the result when update reports a change (with UpdatedAt as
	// update set it). It fails with ErrNameTaken as CreateProfile.
	UpdateProfile(ctx context.Context, accountID, id string, update func(p *Profile) (changed bool, err error)) (Profile, error)
	// DeleteProfile deletes the account's profile id and its My List. It
	// fails with ErrLastProfile for the account's only profile.
	DeleteProfile(ctx context.Context, accountID, id string, at time.Time) error
	// AddToMyList puts item on the My List of the account's profile, after
	// check accepts the profile (locked; its error is returned as is). An
	// item already there is returned unchanged, with its original AddedAt.
	AddToMyList(ctx context.Context, accountID, profileID string, item Item, check func(Profile) error) (Item, error)
	// RemoveFromMyList takes the title off the My List of the account's
	// profile; a title not there is no error.
	RemoveFromMyList(ctx context.Context, accountID, profileID, titleID string, at time.Time) error
	// ListMyList returns a page of the My List of the account's profile,
	// newest first, leaving out items rated above the profile's level, and
	// whether more follow.
	ListMyList(ctx context.Context, accountID, profileID string, page Page) (items []Item, more bool, err error)
	// SeedAccount creates profiles (and their My Lists) for an account that
	// has never had a profile, in one transaction, and reports whether it
	// did; for any other account it does nothing.
	SeedAccount(ctx context.Context, accountID string, profiles []SeedProfile) (bool, error)
}
