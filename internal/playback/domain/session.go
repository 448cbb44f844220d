package domain

import (
	"fmt"
	"time"
)

// Session timing and progress rules.
const (
	// HeartbeatInterval is how often clients are asked to report progress.
	HeartbeatInterval = 15 * time.Second
	// MaxHeartbeatInterval is the longest gap the product promises clients
	// may leave between heartbeats.
	MaxHeartbeatInterval = 60 * time.Second
	// SessionTimeout ends a session whose last heartbeat is older: it no
	// longer counts against the stream limit and ReportProgress answers
	// ErrSessionEnded.
	SessionTimeout = 90 * time.Second
	// ProgressEventStep is how far the position must move, since the last
	// progress event of a session, before another is published.
	ProgressEventStep = 10
	// PositionSlack is how far past the duration a reported position may
	// be (players overshoot, durations are rounded).
	PositionSlack = 60
	// UnknownDurationLimit bounds positions when the duration is unknown.
	UnknownDurationLimit = 24 * 60 * 60
	// CompletedPercent is the share of the duration at which a title counts
	// as watched: the completed event, no resume, out of continue watching.
	CompletedPercent = 90
)

// SessionState is whether a session runs.
type SessionState string

// The session states.
const (
	SessionActive SessionState = "active"
	SessionEnded  SessionState = "ended"
)

// EndReason says why a session ended.
type EndReason string

// The reasons a session ends.
const (
	EndStopped  EndReason = "stopped"  // StopPlayback
	EndExpired  EndReason = "expired"  // no heartbeat for SessionTimeout
	EndReplaced EndReason = "replaced" // the profile started the title again
)

// Session is one playback of a title (or an episode) by a profile.
type Session struct {
	ID        string
	AccountID string
	ProfileID string
	TitleID   string
	EpisodeID string
	// AssetID is the media asset the stream URL points at.
	AssetID string
	// Genres of the title, carried into the events.
	Genres []string
	// Duration and Position are whole seconds; Duration 0 means unknown.
	Duration int
	Position int
	// EventPosition is the position of the last started or progress event.
	EventPosition int
	// Completed is set once the completed event was published.
	Completed       bool
	State           SessionState
	StartedAt       time.Time
	LastHeartbeatAt time.Time
	EndedAt         time.Time
}

// ActiveAt reports whether the session counts as running at now: not
// ended, and heard from within SessionTimeout.
func (s Session) ActiveAt(now time.Time) bool {
	return s.State == SessionActive && now.Sub(s.LastHeartbeatAt) <= SessionTimeout
}

// ExpiresAt is when the session ends unless a heartbeat arrives.
func (s Session) ExpiresAt() time.Time { return s.LastHeartbeatAt.Add(SessionTimeout) }

// HeartbeatCutoff is the oldest last heartbeat of a session still active
// at now.
func HeartbeatCutoff(now time.Time) time.Time { return now.Add(-SessionTimeout) }

// CheckPosition validates a reported position against a duration.
func CheckPosition(field string, position, duration int) error {
	limit := duration + PositionSlack
	if duration <= 0 {
		limit = UnknownDurationLimit
	}
	if position < 0 || position > limit {
		return Invalid(field, "must be 0 to %d seconds", limit)
	}
	return nil
}

// Finished reports whether position counts as having watched the title:
// at least CompletedPercent of a known duration.
func Finished(position, duration int) bool {
	return duration > 0 && int64(position)*100 >= int64(duration)*CompletedPercent
}

// ResumePosition is where playback resumes after stopping at position:
// there, or at 0 once finished (and never past the duration).
func ResumePosition(position, duration int) int {
	switch {
	case position <= 0, Finished(position, duration):
		return 0
	case duration > 0 && position > duration:
		return 0
	}
	return position
}

// Emit says which events an update of a session publishes.
type Emit struct {
	Progress  bool
	Completed bool
}

// Report records a heartbeat at position (already validated) at now. A
// progress event is due when the position moved ProgressEventStep seconds
// from the last one; the completed event once, when the position first
// reaches CompletedPercent.
func (s *Session) Report(position int, now time.Time) Emit {
	s.Position = position
	s.LastHeartbeatAt = now
	var e Emit
	if abs(position-s.EventPosition) >= ProgressEventStep {
		e.Progress = true
		s.EventPosition = position
	}
	if !s.Completed && Finished(position, s.Duration) {
		e.Completed = true
		s.Completed = true
	}
	return e
}

// End ends the session at now. position, when above 0, is the final
// position (already validated). A final progress event is always due; the
// completed event if the final position first reaches CompletedPercent.
func (s *Session) End(position int, now time.Time) Emit {
	if position > 0 {
		s.Position = position
	}
	s.State = SessionEnded
	s.EndedAt = now
	s.EventPosition = s.Position
	e := Emit{Progress: true}
	if !s.Completed && Finished(s.Position, s.Duration) {
		e.Completed = true
		s.Completed = true
	}
	return e
}

// Expire ends a session whose heartbeats stopped, at the instant it timed
// out.
func (s *Session) Expire() Emit { return s.End(0, s.ExpiresAt()) }

// Progress is a profile's place in a title: the episode in progress for a
// series, and its position.
type Progress struct {
	AccountID string
	ProfileID string
	TitleID   string
	EpisodeID string
	Position  int
	Duration  int
	Finished  bool
	UpdatedAt time.Time
}

// ProgressOf returns the progress a session records at now.
func ProgressOf(s Session, now time.Time) Progress {
	return Progress{
		AccountID: s.AccountID, ProfileID: s.ProfileID, TitleID: s.TitleID, EpisodeID: s.EpisodeID,
		Position: s.Position, Duration: s.Duration, Finished: Finished(s.Position, s.Duration), UpdatedAt: now,
	}
}

// Resume is where a profile starts episodeID (empty for a movie) of a
// title, given its last progress on the title (zero Progress for none).
func (p Progress) Resume(episodeID string) int {
	if p.TitleID == "" || p.EpisodeID != episodeID {
		return 0
	}
	return ResumePosition(p.Position, p.Duration)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// String names the session in logs.
func (s Session) String() string {
	return fmt.Sprintf("session %s (%s/%s %s)", s.ID, s.ProfileID, s.TitleID, s.State)
}
