// Package domain holds playback's model and rules, free of transport and
// SQL: plans and their stream counts, entitlements (plans, rentals, the
// chain of superseded plans) and what they allow, playback sessions (the
// heartbeat timeout that frees a stream, position checks, when progress and
// completed events are due), viewing progress and where to resume, and
// page tokens.
//
// Invariants the rest of the service relies on:
//   - at most one plan of an account is stored active; granting a plan
//     supersedes it, revoking the newer plan restores it;
//   - a session counts against the account's streams while it is active
//     and its last heartbeat is at most SessionTimeout old, whether or not
//     the expiry sweeper has marked it ended yet;
//   - positions are whole seconds in 0..duration+PositionSlack.
package domain
