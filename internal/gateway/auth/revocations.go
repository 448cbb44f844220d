package auth

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"
)

// MaxRevocations bounds the revoked sessions remembered; past it the
// entries closest to their end are forgotten first.
const MaxRevocations = 1 << 20

// Revocations is the set of revoked sessions (refresh-token families, the
// sid claim), each remembered until every access token of it has expired.
type Revocations struct {
	mu  sync.RWMutex
	sid map[string]time.Time // sid → forget after
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations {
	return &Revocations{sid: map[string]time.Time{}}
}

// Revoke records that sid is revoked until until.
func (r *Revocations) Revoke(sid string, until time.Time) {
	if sid == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.sid[sid]; ok && old.After(until) {
		return
	}
	if len(r.sid) >= MaxRevocations {
		r.sweepLocked(time.Now())
		for len(r.sid) >= MaxRevocations {
			var oldest string
			var at time.Time
			for k, v := range r.sid {
				if oldest == "" || v.Before(at) {
					oldest, at = k, v
				}
			}
			delete(r.sid, oldest)
		}
	}
	r.sid[sid] = until
}

// Revoked reports whether sid is revoked at now.
func (r *Revocations) Revoked(sid string, now time.Time) bool {
	if sid == "" {
		return false
	}
	r.mu.RLock()
	until, ok := r.sid[sid]
	r.mu.RUnlock()
	return ok && now.Before(until)
}

// Len is the number of sessions remembered.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sid)
}

// Sweep forgets sessions whose tokens have all expired.
func (r *Revocations) Sweep(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
}

func (r *Revocations) sweepLocked(now time.Time) {
	for k, v := range r.sid {
		if !now.Before(v) {
			delete(r.sid, k)
		}
	}
}

// RevokedEvent is the data of a marquee.identity.session_revoked event as
// the gateway reads it: the session id under "sid" (or "session_id"), and
// optionally when the revocation happened.
type RevokedEvent struct {
	SessionID string
	// At is when the session was revoked; zero when the event does not say.
	At time.Time
}

// ParseRevokedEvent reads the JSON data of a session_revoked event. It
// accepts "sid" or "session_id" for the session and "revoked_at" (RFC 3339)
// for the time, and ignores other fields.
func ParseRevokedEvent(data []byte) (RevokedEvent, error) {
	var raw struct {
		Sid       string `json:"sid"`
		SessionID string `json:"session_id"`
		RevokedAt string `json:"revoked_at"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return RevokedEvent{}, errors.New("auth: session_revoked data is not a JSON object")
	}
	ev := RevokedEvent{SessionID: strings.TrimSpace(raw.Sid)}
	if ev.SessionID == "" {
		ev.SessionID = strings.TrimSpace(raw.SessionID)
	}
	if ev.SessionID == "" || len(ev.SessionID) > 256 {
		return RevokedEvent{}, errors.New("auth: session_revoked data has no usable sid")
	}
	if raw.RevokedAt != "" {
		if t, err := time.Parse(time.RFC3339Nano, raw.RevokedAt); err == nil {
			ev.At = t
		}
	}
	return ev, nil
}
