package playback

import (
	"context"
	"fmt"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

// Subjects of the events playback publishes through its outbox. Each
// carries a ViewingEvent as its data and the session id as its CloudEvents
// subject.
const (
	// SubjectStarted is published when a session starts.
	SubjectStarted = "marquee.playback.started"
	// SubjectProgress is published when a session's position has moved at
	// least domain.ProgressEventStep seconds since the last event of the
	// session, and once more, with final set, when it ends.
	SubjectProgress = "marquee.playback.progress"
	// SubjectCompleted is published once per session, when its position
	// first reaches domain.CompletedPercent of the duration.
	SubjectCompleted = "marquee.playback.completed"
)

// ViewingEvent is the data of the started, progress and completed events.
type ViewingEvent struct {
	SessionID string `json:"session_id"`
	AccountID string `json:"account_id"`
	ProfileID string `json:"profile_id"`
	TitleID   string `json:"title_id"`
	// EpisodeID is the episode played, for a series.
	EpisodeID string `json:"episode_id,omitempty"`
	// PositionSeconds and DurationSeconds are whole seconds; the duration
	// is the title's (or the episode's) running time, 0 when unknown.
	PositionSeconds int `json:"position_seconds"`
	DurationSeconds int `json:"duration_seconds"`
	// Genres are the title's genre ids.
	Genres []string `json:"genres"`
	// Final is set on the progress event of a session that ended, with the
	// reason: "stopped", "expired" (heartbeats stopped) or "replaced" (the
	// profile started the title again elsewhere).
	Final     bool   `json:"final,omitempty"`
	EndReason string `json:"end_reason,omitempty"`
	// OccurredAt is when it happened (also the CloudEvents time).
	OccurredAt time.Time `json:"occurred_at"`
}

// viewingEvent returns the event data of a session at at.
func viewingEvent(x domain.Session, at time.Time) ViewingEvent {
	genres := x.Genres
	if genres == nil {
		genres = []string{}
	}
	return ViewingEvent{
		SessionID: x.ID, AccountID: x.AccountID, ProfileID: x.ProfileID, TitleID: x.TitleID, EpisodeID: x.EpisodeID,
		PositionSeconds: x.Position, DurationSeconds: x.Duration, Genres: genres, OccurredAt: at.UTC(),
	}
}

// publish writes one event about a session to the outbox in tx.
func publish(ctx context.Context, tx *storage.Tx, subject string, data ViewingEvent) error {
	ev, err := events.NewEvent(subject, data.SessionID, data)
	if err != nil {
		return fmt.Errorf("%s event: %w", subject, err)
	}
	ev.Time = data.OccurredAt
	return events.Publish(ctx, tx, ev)
}

// publishEmit writes the events emit calls for, for a session at at; a
// final progress event carries reason.
func publishEmit(ctx context.Context, tx *storage.Tx, x domain.Session, emit domain.Emit, at time.Time, reason domain.EndReason) error {
	if emit.Progress {
		data := viewingEvent(x, at)
		if x.State == domain.SessionEnded {
			data.Final, data.EndReason = true, string(reason)
		}
		if err := publish(ctx, tx, SubjectProgress, data); err != nil {
			return err
		}
	}
	if emit.Completed {
		if err := publish(ctx, tx, SubjectCompleted, viewingEvent(x, at)); err != nil {
			return err
		}
	}
	return nil
}
