package profiles_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
)

// fuzzSetup returns the service, with a fake catalog, to call in process
// as account "acct-fuzz" (an incoming context, as the gRPC server makes
// it), and the id of a profile of that account.
func fuzzSetup(f *testing.F) (profilesv1.ProfilesServiceServer, context.Context, string) {
	h := newHarness(f)
	keep := h.create(f, "acct-fuzz", "Keep", "teen")
	return h.svc.Server(), incoming("acct-fuzz", "viewer"), keep.GetId()
}

// okOr reports whether err is nil or has one of codes.
func okOr(err error, cs ...codes.Code) bool {
	if err == nil {
		return true
	}
	for _, c := range cs {
		if status.Code(err) == c {
			return true
		}
	}
	return false
}

// FuzzCreateAndUpdateProfile sends arbitrary profile fields: each request
// is answered with a profile or with InvalidArgument (or the account's
// limits), never a panic or an internal error, and what is stored reads
// back as answered.
func FuzzCreateAndUpdateProfile(f *testing.F) {
	f.Add("Alex", "adult", "en", "", "Sam", "kids", "pt-br", "fox")
	f.Add("", "Adult", "en_US", "Fox", " ", "", "", "")
	f.Add("\x00", "teen", "zh-hant-tw", "a-b", "👨‍👩‍👧", "teen", "es-419", "robot-2")
	f.Add("a\u200bb", "x", "-", "-", "\xff", "KIDS", "e", "--")
	srv, ctx, keep := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, name, maturity, language, avatar, newName, newMaturity, newLanguage, newAvatar string) {
		created, err := srv.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: name, MaturityLevel: maturity, Language: language, Avatar: avatar})
		if !okOr(err, codes.InvalidArgument, codes.AlreadyExists, codes.FailedPrecondition) {
			t.Fatalf("CreateProfile(%q, %q, %q, %q) = %v", name, maturity, language, avatar, err)
		}
		id := keep
		if err == nil {
			id = created.GetProfile().GetId()
			defer func() {
				if _, err := srv.DeleteProfile(ctx, &profilesv1.DeleteProfileRequest{Id: id}); err != nil {
					t.Fatalf("DeleteProfile: %v", err)
				}
			}()
		}
		updated, err := srv.UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{Id: id,
			Name: proto.String(newName), MaturityLevel: proto.String(newMaturity), Language: proto.String(newLanguage), Avatar: proto.String(newAvatar)})
		if !okOr(err, codes.InvalidArgument, codes.AlreadyExists) {
			t.Fatalf("UpdateProfile(%q, %q, %q, %q) = %v", newName, newMaturity, newLanguage, newAvatar, err)
		}
		if err != nil {
			return
		}
		got, err := srv.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: id})
		if err != nil || !proto.Equal(got.GetProfile(), updated.GetProfile()) {
			t.Fatalf("GetProfile after update = %v, %v; want %v", got.GetProfile(), err, updated.GetProfile())
		}
	})
}

// FuzzMyListAndPaging sends arbitrary ids and page requests: each is
// answered or refused with a client error code, never a panic or an
// internal error.
func FuzzMyListAndPaging(f *testing.F) {
	f.Add("", "t-g", int32(0), "")
	f.Add("keep", "t-r", int32(1), "AQ")
	f.Add("keep", "t-nope", int32(-1), "garbage")
	f.Add("../x", "t/1", int32(1000), "AW0BxxxxAA")
	srv, ctx, keep := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, profileID, titleID string, size int32, token string) {
		if profileID == "keep" {
			profileID = keep
		}
		_, err := srv.AddToMyList(ctx, &profilesv1.AddToMyListRequest{ProfileId: profileID, TitleId: titleID})
		if !okOr(err, codes.InvalidArgument, codes.NotFound, codes.PermissionDenied) {
			t.Fatalf("AddToMyList(%q, %q) = %v", profileID, titleID, err)
		}
		resp, err := srv.ListMyList(ctx, &profilesv1.ListMyListRequest{ProfileId: profileID, PageSize: size, PageToken: token})
		if !okOr(err, codes.InvalidArgument, codes.NotFound) {
			t.Fatalf("ListMyList(%q, %d, %q) = %v", profileID, size, token, err)
		}
		if len(resp.GetItems()) > 100 {
			t.Fatalf("ListMyList returned %d items", len(resp.GetItems()))
		}
		_, err = srv.RemoveFromMyList(ctx, &profilesv1.RemoveFromMyListRequest{ProfileId: profileID, TitleId: titleID})
		if !okOr(err, codes.InvalidArgument, codes.NotFound) {
			t.Fatalf("RemoveFromMyList(%q, %q) = %v", profileID, titleID, err)
		}
		_, err = srv.ListProfiles(ctx, &profilesv1.ListProfilesRequest{PageSize: size, PageToken: token})
		if !okOr(err, codes.InvalidArgument) {
			t.Fatalf("ListProfiles(%d, %q) = %v", size, token, err)
		}
	})
}
