package principal

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestFromContext(t *testing.T) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(KeyAccount, "acc-1", KeyRoles, "viewer,admin"))
	p, ok := FromContext(ctx)
	if !ok || p.AccountID != "acc-1" || !p.HasRole(RoleAdmin) || !p.HasRole(RoleViewer) {
		t.Errorf("FromContext = %+v, %v; want acc-1 with viewer and admin", p, ok)
	}
	if _, err := RequireRole(ctx, RoleAdmin); err != nil {
		t.Errorf("RequireRole(admin) = %v, want nil", err)
	}
	viewer := metadata.NewIncomingContext(context.Background(), metadata.Pairs(KeyAccount, "acc-2", KeyRoles, "viewer"))
	if _, err := RequireRole(viewer, RoleAdmin); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RequireRole(admin) for a viewer = %v, want PermissionDenied", err)
	}
	if _, err := Require(context.Background()); status.Code(err) != codes.Unauthenticated || !Unauthenticated(err) {
		t.Errorf("Require without a caller = %v, want Unauthenticated", err)
	}
}

func TestForward(t *testing.T) {
	in := metadata.NewIncomingContext(context.Background(),
		metadata.Pairs(KeyAccount, "acc-1", "x-request-id", "r1", "authorization", "Bearer secret"))
	out, _ := metadata.FromOutgoingContext(Forward(in))
	if got := out.Get(KeyAccount); len(got) != 1 || got[0] != "acc-1" {
		t.Errorf("forwarded account = %v, want [acc-1]", got)
	}
	if got := out.Get("x-request-id"); len(got) != 1 || got[0] != "r1" {
		t.Errorf("forwarded request id = %v, want [r1]", got)
	}
	if got := out.Get("authorization"); len(got) != 0 {
		t.Errorf("forwarded authorization = %v, want none", got)
	}
	// An explicit principal wins over the incoming one.
	explicit := NewOutgoingContext(in, Principal{AccountID: "acc-9"})
	out, _ = metadata.FromOutgoingContext(Forward(explicit))
	if got := out.Get(KeyAccount); len(got) != 1 || got[0] != "acc-9" {
		t.Errorf("account after NewOutgoingContext = %v, want [acc-9]", got)
	}
}
