// Package revocation tells access-token verifiers (the gateway) which
// sessions have been revoked, so that an access token whose "sid" names a
// revoked refresh-token family is refused before it expires.
//
// The identity service publishes, through its transactional outbox, the
// event marquee.identity.session_revoked (Subject) whenever a family is
// revoked: at logout (one event per family; Logout with all_sessions sends
// one per family of the account) and when a rotated refresh token is
// presented again (reuse detection). Its data is Event as JSON.
//
// A verifier keeps a List and runs a Follower: an ordered JetStream
// consumer of that one subject that starts Window in the past (so a gateway
// that starts or restarts learns every revocation whose tokens can still be
// alive) and adds each event to the List. The check on each request is a
// map lookup:
//
//	list := revocation.NewList()
//	f := revocation.NewFollower(js, list, logger)
//	go f.Run(ctx)          // or app.Go("revocations", f.Run)
//	<-f.Synced()           // optional: before reporting ready
//	...
//	claims, err := cache.Verify(ctx, bearer, time.Now())
//	if err == nil && list.Revoked(claims.SessionID) { /* 401 */ }
//
// An entry is kept for Window after the revocation: by then every access
// token of the family has expired (tokens live token.TTL; verifiers allow
// token.Leeway of clock skew, counted twice for the two clocks involved).
// Revocation reaches a gateway within the outbox relay's latency
// (milliseconds when NATS is up); while NATS is down, tokens issued before
// the revocation keep working until they expire, at most token.TTL.
package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/marquee-tv/marquee/internal/identity/token"
)

// Subject is the event published when a refresh-token family is revoked.
const Subject = "marquee.identity.session_revoked"

// Window is how long a revocation matters: the lifetime of the last access
// token of the family, plus clock leeway on both sides.
const Window = token.TTL + 2*token.Leeway

// Reasons a session is revoked, as Event.Reason.
const (
	// ReasonLogout: the user logged out of this session.
	ReasonLogout = "logout"
	// ReasonLogoutAll: the user logged out of every session.
	ReasonLogoutAll = "logout_all"
	// ReasonReuse: a rotated refresh token of the family was presented
	// again, so the family may be stolen.
	ReasonReuse = "refresh_token_reused"
)

// Event is the data of a session_revoked event.
type Event struct {
	// SessionID is the family: the "sid" of its access tokens.
	SessionID string `json:"session_id"`
	// AccountID owns the session.
	AccountID string `json:"account_id"`
	// Reason is one of the Reason constants.
	Reason string `json:"reason"`
	// RevokedAt is when identity revoked the family.
	RevokedAt time.Time `json:"revoked_at"`
}

// Decode reads an event's JSON data and checks it.
func Decode(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("revocation: decode: %w", err)
	}
	if e.SessionID == "" || len(e.SessionID) > 128 || e.RevokedAt.IsZero() {
		return Event{}, errors.New("revocation: event without a session id or time")
	}
	return e, nil
}

// List is the set of recently revoked sessions. It is safe for concurrent
// use.
type List struct {
	mu sync.RWMutex
	m  map[string]time.Time // session id → when to forget it
}

// NewList returns an empty List.
func NewList() *List { return &List{m: map[string]time.Time{}} }

// Add records that session sid was revoked at revokedAt.
func (l *List) Add(sid string, revokedAt time.Time) {
	forget := revokedAt.Add(Window)
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[sid]; !ok || forget.After(old) {
		l.m[sid] = forget
	}
}

// Revoked reports whether session sid has been revoked (and may still have
// live access tokens).
func (l *List) Revoked(sid string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.m[sid]
	return ok
}

// Len is the number of sessions held.
func (l *List) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}

// Prune forgets the sessions whose tokens have all expired at now.
func (l *List) Prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sid, forget := range l.m {
		if !now.Before(forget) {
			delete(l.m, sid)
		}
	}
}
