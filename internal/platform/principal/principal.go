// Package principal carries the verified caller from the gateway to the
// services. The gateway authenticates a request (JWT or API key), strips
// any client copy of these metadata keys, and sets them; services read the
// caller with FromContext and never trust an account id from a request
// message. Calls between services forward the caller automatically: the
// peers dialer copies these keys from the incoming to the outgoing context.
package principal

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
)

// Metadata keys set by the gateway.
const (
	// KeyAccount is the account id of the caller.
	KeyAccount = "x-marquee-account-id"
	// KeyRoles is the caller's roles, comma-separated (viewer, admin).
	KeyRoles = "x-marquee-roles"
	// KeySession is the refresh-token family of the access token (JWT sid).
	KeySession = "x-marquee-session-id"
	// KeyAPIKey is the id of the API key, for machine callers.
	KeyAPIKey = "x-marquee-api-key-id"
	// KeyClientAddr is the client's address as the gateway saw it.
	KeyClientAddr = "x-marquee-client-addr"
	// Prefix starts every key above; the gateway strips incoming headers
	// with it.
	Prefix = "x-marquee-"
)

// Roles.
const (
	RoleViewer = "viewer"
	RoleAdmin  = "admin"
)

// Principal is the verified caller.
type Principal struct {
	AccountID  string
	Roles      []string
	SessionID  string
	APIKeyID   string
	ClientAddr string
}

// HasRole reports whether the caller has role.
func (p Principal) HasRole(role string) bool { return slices.Contains(p.Roles, role) }

// MD returns the principal as metadata pairs for an outgoing call.
func (p Principal) MD() metadata.MD {
	md := metadata.MD{}
	set := func(k, v string) {
		if v != "" {
			md.Set(k, v)
		}
	}
	set(KeyAccount, p.AccountID)
	set(KeyRoles, strings.Join(p.Roles, ","))
	set(KeySession, p.SessionID)
	set(KeyAPIKey, p.APIKeyID)
	set(KeyClientAddr, p.ClientAddr)
	return md
}

// FromContext returns the caller of an incoming gRPC call; ok is false when
// the call carries no account.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	get := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p = Principal{
		AccountID:  get(KeyAccount),
		SessionID:  get(KeySession),
		APIKeyID:   get(KeyAPIKey),
		ClientAddr: get(KeyClientAddr),
	}
	if r := get(KeyRoles); r != "" {
		p.Roles = strings.Split(r, ",")
	}
	return p, p.AccountID != ""
}

// Require returns the caller, or an Unauthenticated error when there is
// none.
func Require(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return p, rpcerr.New(codes.Unauthenticated, "UNAUTHENTICATED", "sign in first")
	}
	return p, nil
}

// RequireRole returns the caller when it has role, else Unauthenticated or
// PermissionDenied (reason FORBIDDEN).
func RequireRole(ctx context.Context, role string) (Principal, error) {
	p, err := Require(ctx)
	if err != nil {
		return p, err
	}
	if !p.HasRole(role) {
		return p, rpcerr.New(codes.PermissionDenied, "FORBIDDEN", "requires the "+role+" role")
	}
	return p, nil
}

// NewOutgoingContext returns ctx carrying p for a call to a peer, replacing
// any principal keys already there.
func NewOutgoingContext(ctx context.Context, p Principal) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	for k := range md {
		if strings.HasPrefix(k, Prefix) {
			delete(md, k)
		}
	}
	return metadata.NewOutgoingContext(ctx, metadata.Join(md, p.MD()))
}

// Forward copies the caller and request id of the incoming call in ctx into
// its outgoing metadata, unless the outgoing context already names a
// principal. The peers dialer calls it on every call.
func Forward(ctx context.Context) context.Context {
	out, _ := metadata.FromOutgoingContext(ctx)
	if len(out.Get(KeyAccount)) > 0 {
		return ctx
	}
	in, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	var kv []string
	for k, vs := range in {
		if (strings.HasPrefix(k, Prefix) || k == "x-request-id") && len(vs) > 0 && len(out.Get(k)) == 0 {
			kv = append(kv, k, vs[0])
		}
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// Unauthenticated reports whether err is the error Require returns.
func Unauthenticated(err error) bool { return rpcerr.Is(err, "UNAUTHENTICATED") }

type ctxKey struct{}

// Attach returns ctx carrying p, for HTTP handlers in the gateway: its
// authentication middleware attaches the verified caller, and handlers that
// call services pass it on with NewOutgoingContext(ctx, p).
func Attach(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Attached returns the caller attached to ctx by the gateway.
func Attached(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok && p.AccountID != ""
}
