package profiles

import (
	"context"
	"fmt"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// The events the service publishes, through the outbox, in the transaction
// of each change. The CloudEvents subject is the profile id and the data
// is EventData. A request that changes nothing (adding a title already on
// the list, removing one that is not, an update that sets the values
// already there) publishes nothing. Deleting a profile publishes only
// profile_deleted, which implies its My List is gone.
const (
	SubjectProfileCreated = "marquee.profiles.profile_created"
	SubjectProfileUpdated = "marquee.profiles.profile_updated"
	SubjectProfileDeleted = "marquee.profiles.profile_deleted"
	SubjectMyListAdded    = "marquee.profiles.my_list_added"
	SubjectMyListRemoved  = "marquee.profiles.my_list_removed"
)

// EventData is the JSON data of every profiles event.
type EventData struct {
	AccountID string `json:"account_id"`
	ProfileID string `json:"profile_id"`
	// Maturity is the profile's level after the change ("kids", "teen",
	// "adult"); for profile_deleted, the level it had.
	Maturity string `json:"maturity"`
	// Language is set on the profile_* events.
	Language string `json:"language,omitempty"`
	// TitleID is set on the my_list_* events.
	TitleID string `json:"title_id,omitempty"`
}

var subjects = map[domain.ChangeKind]string{
	domain.ProfileCreated: SubjectProfileCreated,
	domain.ProfileUpdated: SubjectProfileUpdated,
	domain.ProfileDeleted: SubjectProfileDeleted,
	domain.MyListAdded:    SubjectMyListAdded,
	domain.MyListRemoved:  SubjectMyListRemoved,
}

// publishChange writes the event of c to the outbox in tx.
func publishChange(ctx context.Context, tx *storage.Tx, c domain.Change) error {
	subject, ok := subjects[c.Kind]
	if !ok {
		return fmt.Errorf("profiles: no event for change %q", c.Kind)
	}
	data := EventData{
		AccountID: c.Profile.AccountID,
		ProfileID: c.Profile.ID,
		Maturity:  string(c.Profile.Maturity),
		TitleID:   c.TitleID,
	}
	if c.TitleID == "" {
		data.Language = c.Profile.Language
	}
	ev, err := events.NewEvent(subject, c.Profile.ID, data)
	if err != nil {
		return fmt.Errorf("profiles: %s event: %w", c.Kind, err)
	}
	ev.Time = c.At
	return events.Publish(ctx, tx, ev)
}
