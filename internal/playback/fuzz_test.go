package playback_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
)

// incoming is the context of a served call from account.
func incoming(account string) context.Context {
	return metadata.NewIncomingContext(context.Background(), principal.Principal{AccountID: account}.MD())
}

// userCodes are the codes a user-facing handler may answer bad or refused
// input with; anything else (Internal, Unknown) is a bug.
func userCode(err error) bool {
	switch status.Code(err) {
	case codes.OK, codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition:
		return true
	}
	return false
}

// FuzzSessions sends arbitrary ids, positions and page tokens to the
// user-facing handlers: each is answered or refused with a client error,
// never a panic or a server error.
func FuzzSessions(f *testing.F) {
	f.Add("p-adult", "t-pg13", "", int32(30), int32(0), "")
	f.Add("p-adult", "t-series", "t-series-s01e02", int32(-1), int32(5), "AQ")
	f.Add("p-kids", "t-r", "x", int32(1<<30), int32(101), "garbage")
	f.Add("../p", "t-0007", "", int32(0), int32(-3), "")
	e := newEnv(f)
	e.grant(acc1, "premium", "")
	srv := e.svc.Server()
	ctx := incoming(acc1)
	f.Fuzz(func(t *testing.T, profile, title, episode string, pos, size int32, token string) {
		start, err := srv.StartPlayback(ctx, &playbackv1.StartPlaybackRequest{ProfileId: profile, TitleId: title, EpisodeId: episode})
		if !userCode(err) {
			t.Fatalf("StartPlayback(%q, %q, %q) = %v", profile, title, episode, err)
		}
		session := title
		if err == nil {
			session = start.GetSessionId()
		}
		if _, err := srv.ReportProgress(ctx, &playbackv1.ReportProgressRequest{SessionId: session, PositionSeconds: pos}); !userCode(err) {
			t.Fatalf("ReportProgress(%q, %d) = %v", session, pos, err)
		}
		if _, err := srv.StopPlayback(ctx, &playbackv1.StopPlaybackRequest{SessionId: session, PositionSeconds: pos}); !userCode(err) {
			t.Fatalf("StopPlayback(%q, %d) = %v", session, pos, err)
		}
		if _, err := srv.ContinueWatching(ctx, &playbackv1.ContinueWatchingRequest{ProfileId: profile, PageSize: size, PageToken: token}); !userCode(err) {
			t.Fatalf("ContinueWatching(%q, %d, %q) = %v", profile, size, token, err)
		}
		if _, err := srv.GetEntitlement(ctx, &playbackv1.GetEntitlementRequest{TitleId: title}); !userCode(err) {
			t.Fatalf("GetEntitlement(%q) = %v", title, err)
		}
	})
}

// FuzzGrantRevoke sends arbitrary grants and revocations: each succeeds or
// is refused with InvalidArgument or FailedPrecondition.
func FuzzGrantRevoke(f *testing.F) {
	f.Add("k1", "acc-1", "basic", "", int32(0), int32(0), "k1")
	f.Add("k2", "acc-1", "", "t-pg13", int32(1), int32(3600), "k3")
	f.Add("k2", "acc-2", "premium", "t-g", int32(4), int32(-1), "")
	f.Add("", "", "gold", "t-0007", int32(-5), int32(1<<30), "x y")
	e := newEnv(f)
	srv := e.svc.Server()
	ctx := context.Background()
	ok := func(err error) bool {
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.FailedPrecondition:
			return true
		}
		return false
	}
	f.Fuzz(func(t *testing.T, key, account, plan, title string, streams, duration int32, revokeKey string) {
		g := &playbackv1.GrantEntitlementRequest{IdempotencyKey: key, AccountId: account, PlanId: plan, TitleId: title, MaxStreams: streams, RentalDurationSeconds: duration}
		resp, err := srv.GrantEntitlement(ctx, g)
		if !ok(err) {
			t.Fatalf("GrantEntitlement(%v) = %v", g, err)
		}
		if err == nil {
			if s := resp.GetEntitlement().GetStatus(); s != "active" && s != "cancelled" {
				t.Fatalf("GrantEntitlement(%v) answered status %q", g, s)
			}
		}
		r := &playbackv1.RevokeEntitlementRequest{IdempotencyKey: "c-" + revokeKey, GrantIdempotencyKey: revokeKey, AccountId: account}
		if _, err := srv.RevokeEntitlement(ctx, r); !ok(err) {
			t.Fatalf("RevokeEntitlement(%v) = %v", r, err)
		}
	})
}
