package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity/token"
)

// fakeIdentity publishes a JWKS the tests change, verifies the API keys
// they register, and records logins.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer

	mu        sync.Mutex
	published []*signingKey
	apiKeys   map[string]*identityv1.VerifyAPIKeyResponse
	logins    []loginCall
	jwksCalls atomic.Int64
	keysDown  atomic.Bool // ListSigningKeys fails
}

type loginCall struct {
	email string
	md    metadata.MD
}

// signingKey is a key the tests sign tokens with.
type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newSigningKey(t testing.TB) *signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := token.Thumbprint(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, priv: priv}
}

func newFakeIdentity(t testing.TB) *fakeIdentity {
	return &fakeIdentity{published: []*signingKey{newSigningKey(t)}, apiKeys: map[string]*identityv1.VerifyAPIKeyResponse{}}
}

// key is the first published key.
func (f *fakeIdentity) key() *signingKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.published[0]
}

// publish replaces the published keys.
func (f *fakeIdentity) publish(keys ...*signingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = keys
}

func (f *fakeIdentity) ListSigningKeys(context.Context, *identityv1.ListSigningKeysRequest) (*identityv1.ListSigningKeysResponse, error) {
	f.jwksCalls.Add(1)
	if f.keysDown.Load() {
		return nil, status.Error(codes.Unavailable, "keys down")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &identityv1.ListSigningKeysResponse{}
	for _, k := range f.published {
		j, err := token.PublicJWK(k.kid, &k.priv.PublicKey)
		if err != nil {
			return nil, err
		}
		resp.Keys = append(resp.Keys, &identityv1.JSONWebKey{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y, Kid: j.Kid, Alg: j.Alg, Use: j.Use})
	}
	return resp, nil
}

func (f *fakeIdentity) VerifyAPIKey(_ context.Context, req *identityv1.VerifyAPIKeyRequest) (*identityv1.VerifyAPIKeyResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.apiKeys[req.GetApiKey()]; ok {
		return r, nil
	}
	return nil, status.Error(codes.Unauthenticated, "unknown API key")
}

func (f *fakeIdentity) Login(ctx context.Context, req *identityv1.LoginRequest) (*identityv1.LoginResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.logins = append(f.logins, loginCall{email: req.GetEmail(), md: md.Copy()})
	f.mu.Unlock()
	return &identityv1.LoginResponse{AccountId: "acc-login", AccessToken: "t", RefreshToken: "r", ExpiresIn: 900}, nil
}

func (f *fakeIdentity) GetAccount(ctx context.Context, _ *identityv1.GetAccountRequest) (*identityv1.GetAccountResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	ids := md.Get("x-marquee-account-id")
	if len(ids) == 0 {
		return nil, status.Error(codes.Unauthenticated, "sign in first")
	}
	return &identityv1.GetAccountResponse{Account: &identityv1.Account{Id: ids[0], Roles: md.Get("x-marquee-roles")}}, nil
}

func (f *fakeIdentity) RotateSigningKeys(context.Context, *identityv1.RotateSigningKeysRequest) (*identityv1.RotateSigningKeysResponse, error) {
	return &identityv1.RotateSigningKeysResponse{ActiveKid: "k"}, nil
}

var tokenSeq atomic.Int64

// claims are good claims for account acc, valid now.
func claims(acc string, roles ...string) token.Claims {
	now := time.Now()
	if len(roles) == 0 {
		roles = []string{"viewer"}
	}
	return token.Claims{
		AccountID: acc,
		Roles:     roles,
		SessionID: "sid-" + acc,
		ID:        "jti-" + strconv.FormatInt(tokenSeq.Add(1), 10),
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(token.TTL),
	}
}

// sign signs c with k.
func (k *signingKey) sign(t testing.TB, c token.Claims) string {
	t.Helper()
	s, err := token.Sign(c, k.kid, k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bearer is an Authorization header for account acc signed with the
// identity's first key.
func (u *testUpstream) bearer(t testing.TB, acc string, roles ...string) string {
	return "Bearer " + u.identity.key().sign(t, claims(acc, roles...))
}
