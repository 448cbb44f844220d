package domain

import "time"

// Session is a refresh-token family: one per login (or sign-up). Its ID is
// the "sid" claim of the family's access tokens. Every refresh rotates the
// family's token; presenting a rotated token again revokes the family.
type Session struct {
	ID           string
	AccountID    string
	CreatedAt    time.Time
	RevokedAt    time.Time // zero while active
	RevokeReason string
}

// RefreshToken is one refresh token of a family, by the hash of its value.
type RefreshToken struct {
	Hash      string
	SessionID string
	IssuedAt  time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
}

// Revocation records that a session was revoked: what the identity service
// publishes as marquee.identity.session_revoked.
type Revocation struct {
	SessionID string
	AccountID string
	Reason    string
	RevokedAt time.Time
}
