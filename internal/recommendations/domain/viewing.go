package domain

import "time"

// EventKind is what a viewing event reports.
type EventKind string

// The viewing events the service consumes.
const (
	// Started: a playback session began (marquee.playback.started).
	Started EventKind = "started"
	// Progress: a heartbeat with the position (marquee.playback.progress,
	// and marquee.playback.stopped, which carries the final position).
	Progress EventKind = "progress"
	// Completed: the title (or an episode of it) was watched to the end
	// (marquee.playback.completed).
	Completed EventKind = "completed"
)

// ViewingEvent is one playback event, as this service reads it.
type ViewingEvent struct {
	Kind      EventKind
	AccountID string
	ProfileID string
	TitleID   string
	// EpisodeID is the episode playing, for a series; may be empty.
	EpisodeID string
	// Position and Duration are in whole seconds; zero when unknown.
	Position int
	Duration int
	// At is when it happened (the event's time).
	At time.Time
}

// Tuning of how events fold into views.
const (
	// FinishedFraction is the share of a title's duration past which a
	// progress report counts as having finished it, for producers that
	// report the last position without a completed event.
	FinishedFraction = 0.9
	// PlayGap is how long after a profile's last counted play of a title a
	// new start counts as another play: resuming after a pause is not a
	// new play.
	PlayGap = 6 * time.Hour
)

// View is what a profile did with a title: the cell of the profile×title
// view matrix. A profile has a View of every title it started.
type View struct {
	ProfileID string
	TitleID   string
	AccountID string
	// FirstAt is the first event seen, LastAt the newest one applied.
	FirstAt time.Time
	LastAt  time.Time
	// LastPlayAt is when the last counted play started.
	LastPlayAt time.Time
	Plays      int
	// Position, Duration and EpisodeID are from the newest event.
	Position  int
	Duration  int
	EpisodeID string
	// Finished is sticky: a finished title stays finished.
	Finished bool
}

// Effect says what an event changed beyond the view itself.
type Effect struct {
	// NewViewer: the profile had never viewed the title; the title gains a
	// viewer, and a co-view with every other title the profile viewed.
	NewViewer bool
	// Play: the event counts as a play of the title (for trending and
	// popularity).
	Play bool
}

// Apply folds ev into prev (nil when the profile has no view of the title
// yet) and returns the new view and what changed. title, when known, says
// whether the title is a series and which episode ends it.
//
// Rules:
//   - the first event of any kind creates the view (an implicit start) and
//     counts a play;
//   - a later start counts a play when PlayGap has passed since the last
//     counted one;
//   - position, duration and episode come from the newest event; an event
//     older than the view's LastAt changes only Finished;
//   - a completed event, or a position past FinishedFraction of the
//     duration, finishes a movie; an event naming an episode finishes its
//     title only when that is the series' last episode.
func Apply(prev *View, ev ViewingEvent, title *Title) (View, Effect) {
	var v View
	var eff Effect
	if prev == nil {
		v = View{ProfileID: ev.ProfileID, TitleID: ev.TitleID, AccountID: ev.AccountID, FirstAt: ev.At}
		eff = Effect{NewViewer: true, Play: true}
		v.LastPlayAt = ev.At
		v.Plays = 1
	} else {
		v = *prev
		if ev.Kind == Started && (v.LastPlayAt.IsZero() || ev.At.Sub(v.LastPlayAt) >= PlayGap) {
			eff.Play = true
			v.LastPlayAt = ev.At
			v.Plays++
		}
		if ev.At.Before(v.FirstAt) {
			v.FirstAt = ev.At
		}
	}
	if v.AccountID == "" {
		v.AccountID = ev.AccountID
	}
	if prev == nil || !ev.At.Before(v.LastAt) {
		v.LastAt = ev.At
		v.Position = ev.Position
		if ev.Duration > 0 {
			v.Duration = ev.Duration
		}
		if ev.EpisodeID != "" || ev.Kind == Started {
			v.EpisodeID = ev.EpisodeID
		}
	}
	if finishes(ev, title) {
		v.Finished = true
	}
	return v, eff
}

// finishes reports whether ev finishes its title.
func finishes(ev ViewingEvent, title *Title) bool {
	done := ev.Kind == Completed ||
		(ev.Kind == Progress && ev.Duration > 0 && float64(ev.Position) >= FinishedFraction*float64(ev.Duration))
	if !done {
		return false
	}
	switch {
	case ev.EpisodeID == "":
		return true
	case title == nil:
		return false // an episode of a title not known yet: cannot tell
	case title.Kind != "series":
		return true
	}
	return title.LastEpisodeID != "" && ev.EpisodeID == title.LastEpisodeID
}
