package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/keys"
	"github.com/marquee-tv/marquee/internal/identity/password"
	"github.com/marquee-tv/marquee/internal/identity/revocation"
	"github.com/marquee-tv/marquee/internal/identity/store"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// apiKeyTouchEvery is how often VerifyAPIKey records a key's last use.
const apiKeyTouchEvery = time.Minute

// server implements identityv1.IdentityServiceServer. Every handler
// validates its whole input first, returns domain errors (or the
// principal package's status errors), and has them mapped to a status by
// toStatus (errors.go), deferred. No handler logs a password, token or key.
type server struct {
	identityv1.UnimplementedIdentityServiceServer
	store    *store.Store
	keys     *keys.Manager
	hasher   *password.Hasher
	throttle domain.ThrottlePolicy
	now      func() time.Time
	notify   func()
	log      *slog.Logger
	metrics  *metrics
}

var _ identityv1.IdentityServiceServer = (*server)(nil)

// pair is a freshly issued access and refresh token.
type pair struct {
	accountID, access, refresh string
}

// expiresIn is the access-token lifetime as the API reports it, in seconds.
const expiresIn = int32(token.TTL / time.Second)

// newSession returns a fresh session of the account, its first refresh
// token record and the token itself.
func newSession(accountID string, now time.Time) (domain.Session, domain.RefreshToken, string) {
	raw, hash := domain.NewRefreshToken()
	sess := domain.Session{ID: uuid.NewString(), AccountID: accountID, CreatedAt: now}
	return sess, domain.RefreshToken{Hash: hash, SessionID: sess.ID, IssuedAt: now, ExpiresAt: now.Add(domain.RefreshTokenTTL)}, raw
}

// issue signs an access token for the account in session sid.
func (s *server) issue(ctx context.Context, a domain.Account, sid string, now time.Time) (string, error) {
	kid, key, err := s.keys.Signer(ctx)
	if err != nil {
		return "", err
	}
	return token.Sign(token.Claims{
		AccountID: a.ID,
		Roles:     a.Roles,
		SessionID: sid,
		ID:        uuid.NewString(),
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(token.TTL),
	}, kid, key)
}

// SignUp creates a viewer account and signs it in.
func (s *server) SignUp(ctx context.Context, req *identityv1.SignUpRequest) (_ *identityv1.SignUpResponse, err error) {
	defer s.mapError(ctx, "SignUp", &err)
	a, err := domain.NewAccount(req.GetEmail(), req.GetPassword(), req.GetName())
	if err != nil {
		return nil, err
	}
	// Refuse a taken email before paying for a hash; the insert below
	// still decides a race.
	if _, err := s.store.AccountByEmail(ctx, a.Email); err == nil {
		return nil, domain.ErrEmailTaken
	} else if !errors.Is(err, domain.ErrNotFound) {
		return nil, err
	}
	if a.PasswordHash, err = s.hasher.Hash(ctx, req.GetPassword()); err != nil {
		return nil, err
	}
	now := s.now()
	a.ID, a.CreatedAt = uuid.NewString(), now
	sess, tok, refresh := newSession(a.ID, now)
	if err := s.store.CreateAccount(ctx, a, &sess, &tok); err != nil {
		return nil, err
	}
	s.notify()
	access, err := s.issue(ctx, a, sess.ID, now)
	if err != nil {
		return nil, err
	}
	p := pair{a.ID, access, refresh}
	return &identityv1.SignUpResponse{AccountId: p.accountID, AccessToken: p.access, RefreshToken: p.refresh, ExpiresIn: expiresIn}, nil
}

// Login exchanges an email and password for a token pair, throttled per
// account and per client address.
func (s *server) Login(ctx context.Context, req *identityv1.LoginRequest) (_ *identityv1.LoginResponse, err error) {
	defer s.mapError(ctx, "Login", &err)
	p, err := s.login(ctx, req.GetEmail(), req.GetPassword())
	s.metrics.logins.WithLabelValues(result(err)).Inc()
	if err != nil {
		return nil, err
	}
	return &identityv1.LoginResponse{AccountId: p.accountID, AccessToken: p.access, RefreshToken: p.refresh, ExpiresIn: expiresIn}, nil
}

// login checks the credentials. Whether the email exists or not, it does
// the same database work and one argon2id computation, and fails with the
// same error, so neither the answer nor its timing tells which emails are
// registered.
func (s *server) login(ctx context.Context, rawEmail, pw string) (pair, error) {
	email, errEmail := domain.NormalizeEmail("email", rawEmail)
	if err := errors.Join(errEmail, domain.CheckPasswordInput("password", pw)); err != nil {
		return pair{}, err
	}
	caller, _ := principal.FromContext(ctx)
	limits := s.throttle.Keys(email, caller.ClientAddr)
	attempt := uuid.NewString()
	now := s.now()
	if err := s.store.BeginLogin(ctx, attempt, limits, now); err != nil {
		if errors.Is(err, domain.ErrThrottled) {
			s.log.InfoContext(ctx, "login throttled", "err", err)
		}
		return pair{}, err
	}
	a, err := s.store.AccountByEmail(ctx, email)
	if errors.Is(err, domain.ErrNotFound) {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return pair{}, err
		}
		return pair{}, domain.ErrInvalidCredentials
	}
	if err != nil {
		return pair{}, err
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, a.PasswordHash)
	if err != nil {
		return pair{}, fmt.Errorf("account %s: %w", a.ID, err)
	}
	if !ok {
		return pair{}, domain.ErrInvalidCredentials
	}
	sess, tok, refresh := newSession(a.ID, now)
	if err := s.store.CompleteLogin(ctx, attempt, limits[0].Hash, sess, tok); err != nil {
		return pair{}, err
	}
	if rehash {
		s.rehash(ctx, a, pw)
	}
	access, err := s.issue(ctx, a, sess.ID, now)
	if err != nil {
		return pair{}, err
	}
	return pair{a.ID, access, refresh}, nil
}

// rehash stores a new hash of the password just verified, made with the
// current parameters. Failure only delays the upgrade to the next login.
func (s *server) rehash(ctx context.Context, a domain.Account, pw string) {
	hash, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		_, err = s.store.ReplacePasswordHash(ctx, a.ID, a.PasswordHash, hash, s.now())
	}
	if err != nil {
		s.log.WarnContext(ctx, "could not upgrade a password hash", "account_id", a.ID, "err", err)
	}
}

// Refresh rotates a refresh token.
func (s *server) Refresh(ctx context.Context, req *identityv1.RefreshRequest) (_ *identityv1.RefreshResponse, err error) {
	defer s.mapError(ctx, "Refresh", &err)
	defer func() { s.metrics.refreshes.WithLabelValues(result(err)).Inc() }()
	if req.GetRefreshToken() == "" {
		return nil, domain.Invalid("refresh_token", "is required")
	}
	oldHash, ok := domain.RefreshTokenHash(req.GetRefreshToken())
	if !ok {
		return nil, fmt.Errorf("malformed: %w", domain.ErrInvalidRefreshToken)
	}
	now := s.now()
	raw, hash := domain.NewRefreshToken()
	next := domain.RefreshToken{Hash: hash, IssuedAt: now, ExpiresAt: now.Add(domain.RefreshTokenTTL)}
	sess, err := s.store.RotateRefreshToken(ctx, oldHash, next, now, revocation.ReasonReuse)
	if errors.Is(err, domain.ErrRefreshTokenReused) {
		s.notify()
		s.log.WarnContext(ctx, "refresh token reuse: session revoked")
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, sess.AccountID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, fmt.Errorf("account gone: %w", domain.ErrInvalidRefreshToken)
	}
	if err != nil {
		return nil, err
	}
	access, err := s.issue(ctx, a, sess.ID, now)
	if err != nil {
		return nil, err
	}
	return &identityv1.RefreshResponse{AccountId: a.ID, AccessToken: access, RefreshToken: raw, ExpiresIn: expiresIn}, nil
}

// Logout revokes refresh-token families of the caller: all of them with
// all_sessions; otherwise the family of refresh_token, when given, and the
// family of the caller's access token (x-marquee-session-id), when there
// is one.
func (s *server) Logout(ctx context.Context, req *identityv1.LogoutRequest) (_ *identityv1.LogoutResponse, err error) {
	defer s.mapError(ctx, "Logout", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if req.GetAllSessions() {
		if _, err := s.store.RevokeAccountSessions(ctx, p.AccountID, revocation.ReasonLogoutAll, now); err != nil {
			return nil, err
		}
		s.notify()
		return &identityv1.LogoutResponse{}, nil
	}
	var sessions []string
	if raw := req.GetRefreshToken(); raw != "" {
		hash, ok := domain.RefreshTokenHash(raw)
		if !ok {
			return nil, domain.Invalid("refresh_token", "is not a refresh token")
		}
		sess, err := s.store.SessionOfRefreshToken(ctx, hash)
		if err != nil {
			return nil, err
		}
		if sess.AccountID != p.AccountID {
			return nil, fmt.Errorf("refresh token of another account: %w", domain.ErrNotFound)
		}
		sessions = append(sessions, sess.ID)
	}
	if p.SessionID != "" && (len(sessions) == 0 || sessions[0] != p.SessionID) {
		sessions = append(sessions, p.SessionID)
	}
	if len(sessions) == 0 {
		return nil, domain.Invalid("refresh_token", "is required when the caller has no session (an API key)")
	}
	for _, id := range sessions {
		if _, err := s.store.RevokeSession(ctx, id, p.AccountID, revocation.ReasonLogout, now); err != nil {
			return nil, err
		}
	}
	s.notify()
	return &identityv1.LogoutResponse{}, nil
}

// GetAccount returns the caller's account.
func (s *server) GetAccount(ctx context.Context, _ *identityv1.GetAccountRequest) (_ *identityv1.GetAccountResponse, err error) {
	defer s.mapError(ctx, "GetAccount", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Account(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	return &identityv1.GetAccountResponse{Account: accountProto(a)}, nil
}

// ListSigningKeys returns the JWKS.
func (s *server) ListSigningKeys(ctx context.Context, _ *identityv1.ListSigningKeysRequest) (_ *identityv1.ListSigningKeysResponse, err error) {
	defer s.mapError(ctx, "ListSigningKeys", &err)
	jwks, err := s.keys.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListSigningKeysResponse{Keys: make([]*identityv1.JSONWebKey, 0, len(jwks))}
	for _, k := range jwks {
		out.Keys = append(out.Keys, &identityv1.JSONWebKey{Kty: k.Kty, Crv: k.Crv, X: k.X, Y: k.Y, Kid: k.Kid, Alg: k.Alg, Use: k.Use})
	}
	return out, nil
}

// keyStateNames are the states as the API names them.
var keyStateNames = map[domain.KeyState]string{
	domain.KeyNext:    "next",
	domain.KeyCurrent: "active",
	domain.KeyRetired: "retiring",
}

// RotateSigningKeys rotates the signing keys; admin only.
func (s *server) RotateSigningKeys(ctx context.Context, _ *identityv1.RotateSigningKeysRequest) (_ *identityv1.RotateSigningKeysResponse, err error) {
	defer s.mapError(ctx, "RotateSigningKeys", &err)
	p, err := principal.RequireRole(ctx, principal.RoleAdmin)
	if err != nil {
		return nil, err
	}
	kid, err := s.keys.Rotate(ctx)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "signing keys rotated by an admin", "account_id", p.AccountID, "active_kid", kid)
	statuses, err := s.keys.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := &identityv1.RotateSigningKeysResponse{ActiveKid: kid}
	for _, st := range statuses {
		ks := &identityv1.SigningKeyStatus{Kid: st.KID, State: keyStateNames[st.State], CreatedAt: timestamppb.New(st.CreatedAt)}
		if !st.ActivatedAt.IsZero() {
			ks.ActivatedAt = timestamppb.New(st.ActivatedAt)
		}
		if st.State == domain.KeyRetired {
			ks.RetiresAt = timestamppb.New(st.RemoveAt)
		}
		out.Keys = append(out.Keys, ks)
	}
	return out, nil
}

// CreateAPIKey creates an API key for the caller's account and answers its
// secret, once.
func (s *server) CreateAPIKey(ctx context.Context, req *identityv1.CreateAPIKeyRequest) (_ *identityv1.CreateAPIKeyResponse, err error) {
	defer s.mapError(ctx, "CreateAPIKey", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if p.APIKeyID != "" {
		return nil, fmt.Errorf("an API key cannot create API keys: %w", domain.ErrForbidden)
	}
	var expires time.Time
	if req.ExpiresAt != nil {
		if err := req.GetExpiresAt().CheckValid(); err != nil {
			return nil, domain.Invalid("expires_at", "is not a valid time")
		}
		expires = req.GetExpiresAt().AsTime()
	}
	a, err := s.store.Account(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	k, err := domain.NewAPIKeyInput(req.GetName(), req.GetRoles(), a.Roles, expires, now)
	if errors.Is(err, domain.ErrForbidden) {
		return nil, fmt.Errorf("a key cannot have a role its account lacks: %w", err)
	}
	if err != nil {
		return nil, err
	}
	id, secret, hash := domain.NewAPIKeySecret()
	k.ID, k.AccountID, k.Hash, k.CreatedAt = id, a.ID, hash, now
	if err := s.store.CreateAPIKey(ctx, k, now); err != nil {
		return nil, err
	}
	return &identityv1.CreateAPIKeyResponse{ApiKey: secret, Key: apiKeyProto(k)}, nil
}

func apiKeyProto(k domain.APIKey) *identityv1.APIKey {
	out := &identityv1.APIKey{Id: k.ID, Name: k.Name, Prefix: k.Prefix(), Roles: k.Roles, CreatedAt: timestamppb.New(k.CreatedAt)}
	if !k.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(k.ExpiresAt)
	}
	if !k.LastUsedAt.IsZero() {
		out.LastUsedAt = timestamppb.New(k.LastUsedAt)
	}
	if !k.RevokedAt.IsZero() {
		out.RevokedAt = timestamppb.New(k.RevokedAt)
	}
	return out
}

// ListAPIKeys lists the caller's API keys, newest first, revoked ones
// included, without secrets.
func (s *server) ListAPIKeys(ctx context.Context, req *identityv1.ListAPIKeysRequest) (_ *identityv1.ListAPIKeysResponse, err error) {
	defer s.mapError(ctx, "ListAPIKeys", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	size, errSize := domain.PageSize(req.GetPageSize())
	cursor, errToken := domain.ParseCursor(req.GetPageToken())
	if err := errors.Join(errSize, errToken); err != nil {
		return nil, err
	}
	ks, err := s.store.ListAPIKeys(ctx, p.AccountID, cursor, size+1)
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListAPIKeysResponse{}
	if len(ks) > size {
		ks = ks[:size]
		last := ks[size-1]
		out.NextPageToken = domain.EncodeCursor(domain.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	for _, k := range ks {
		out.ApiKeys = append(out.ApiKeys, apiKeyProto(k))
	}
	return out, nil
}

// RevokeAPIKey revokes one of the caller's API keys.
func (s *server) RevokeAPIKey(ctx context.Context, req *identityv1.RevokeAPIKeyRequest) (_ *identityv1.RevokeAPIKeyResponse, err error) {
	defer s.mapError(ctx, "RevokeAPIKey", &err)
	p, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckID("id", req.GetId()); err != nil {
		return nil, err
	}
	if !domain.ValidAPIKeyID(req.GetId()) {
		return nil, fmt.Errorf("API key: %w", domain.ErrNotFound)
	}
	if err := s.store.RevokeAPIKey(ctx, p.AccountID, req.GetId(), s.now()); err != nil {
		return nil, err
	}
	return &identityv1.RevokeAPIKeyResponse{}, nil
}

// VerifyAPIKey tells the gateway whom an API key belongs to: unknown,
// malformed, revoked and expired keys, keys of accounts gone and keys left
// with no role all fail alike.
func (s *server) VerifyAPIKey(ctx context.Context, req *identityv1.VerifyAPIKeyRequest) (_ *identityv1.VerifyAPIKeyResponse, err error) {
	defer s.mapError(ctx, "VerifyAPIKey", &err)
	if req.GetApiKey() == "" {
		return nil, domain.Invalid("api_key", "is required")
	}
	id, hash, ok := domain.ParseAPIKey(req.GetApiKey())
	if !ok {
		return nil, domain.ErrInvalidAPIKey
	}
	k, err := s.store.APIKey(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, domain.ErrInvalidAPIKey
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !domain.SameHash(k.Hash, hash) || !k.Active(now) {
		return nil, domain.ErrInvalidAPIKey
	}
	a, err := s.store.Account(ctx, k.AccountID)
	if errors.Is(err, domain.ErrNotFound) {
		return nil, domain.ErrInvalidAPIKey
	}
	if err != nil {
		return nil, err
	}
	roles := domain.KeyRoles(k.Roles, a.Roles)
	if len(roles) == 0 {
		return nil, domain.ErrInvalidAPIKey
	}
	if err := s.store.TouchAPIKey(ctx, k.ID, now, apiKeyTouchEvery); err != nil {
		s.log.WarnContext(ctx, "could not record API key use", "key_id", k.ID, "err", err)
	}
	return &identityv1.VerifyAPIKeyResponse{AccountId: a.ID, KeyId: k.ID, Roles: roles}, nil
}
