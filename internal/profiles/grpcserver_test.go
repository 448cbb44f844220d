package profiles_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/profiles"
)

const (
	alice = "acct-alice"
	bob   = "acct-bob"
)

func TestCreateAndListProfiles(t *testing.T) {
	h := newHarness(t)
	ctx := as(alice)
	first, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: "  Alex  "})
	if err != nil {
		t.Fatal(err)
	}
	p := first.GetProfile()
	if p.GetName() != "Alex" || p.GetMaturityLevel() != "adult" || p.GetLanguage() != "en" || p.GetAvatar() != "" ||
		p.GetAccountId() != alice || p.GetId() == "" || !p.GetCreatedAt().AsTime().Equal(p.GetUpdatedAt().AsTime()) || p.GetCreatedAt().AsTime().IsZero() {
		t.Errorf("CreateProfile(Alex) = %v, want name Alex, adult, en, account %s, times set", p, alice)
	}
	if got := h.events(t); len(got) != 1 || got[0].Subject != profiles.SubjectProfileCreated || got[0].Entity != p.GetId() ||
		got[0].Data != (profiles.EventData{AccountID: alice, ProfileID: p.GetId(), Maturity: "adult", Language: "en"}) {
		t.Errorf("events after CreateProfile = %+v", got)
	}
	kid, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: "Kiddo", MaturityLevel: "kids", Language: "pt-br", Avatar: "fox"})
	if err != nil {
		t.Fatal(err)
	}
	if k := kid.GetProfile(); k.GetMaturityLevel() != "kids" || k.GetLanguage() != "pt-BR" || k.GetAvatar() != "fox" {
		t.Errorf("CreateProfile(Kiddo) = %v", k)
	}
	for _, name := range []string{"ALEX", "alex", " Alex"} {
		_, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: name})
		wantStatus(t, "CreateProfile("+name+")", err, codes.AlreadyExists, profiles.ReasonProfileNameTaken)
	}
	// Another account may use the same name.
	h.create(t, bob, "Alex", "")
	for _, name := range []string{"Sam", "Jo", "Max"} {
		h.create(t, alice, name, "teen")
	}
	_, err = h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: "Sixth"})
	wantStatus(t, "sixth CreateProfile", err, codes.FailedPrecondition, profiles.ReasonProfileLimit)

	// Listing: own profiles only, oldest first, in pages.
	var names []string
	token := ""
	for pages := 1; ; pages++ {
		resp, err := h.client.ListProfiles(ctx, &profilesv1.ListProfilesRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatalf("ListProfiles page %d: %v", pages, err)
		}
		for _, p := range resp.GetProfiles() {
			names = append(names, p.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			if pages != 3 {
				t.Errorf("ListProfiles took %d pages of 2, want 3", pages)
			}
			break
		}
	}
	if want := []string{"Alex", "Kiddo", "Sam", "Jo", "Max"}; !slices.Equal(names, want) {
		t.Errorf("ListProfiles(alice) = %v, want %v", names, want)
	}
	resp, err := h.client.ListProfiles(as(bob), &profilesv1.ListProfilesRequest{})
	if err != nil || len(resp.GetProfiles()) != 1 || resp.GetProfiles()[0].GetAccountId() != bob {
		t.Errorf("ListProfiles(bob) = %v, %v; want bob's one profile", resp, err)
	}
	// The HTTP shape: {"profiles":[...],"next_page_token":""}.
	empty, err := h.client.ListProfiles(as("acct-new"), &profilesv1.ListProfilesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(empty)
	if got := strings.ReplaceAll(string(js), " ", ""); got != `{"profiles":[],"next_page_token":""}` {
		t.Errorf("ListProfiles of a new account as JSON = %s", got)
	}
}

func TestUnauthenticated(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	calls := map[string]func() error{
		"CreateProfile": func() error {
			_, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: "A"})
			return err
		},
		"ListProfiles": func() error { _, err := h.client.ListProfiles(ctx, &profilesv1.ListProfilesRequest{}); return err },
		"GetProfile":   func() error { _, err := h.client.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: "p"}); return err },
		"UpdateProfile": func() error {
			_, err := h.client.UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{Id: "p"})
			return err
		},
		"DeleteProfile": func() error {
			_, err := h.client.DeleteProfile(ctx, &profilesv1.DeleteProfileRequest{Id: "p"})
			return err
		},
		"AddToMyList": func() error {
			_, err := h.client.AddToMyList(ctx, &profilesv1.AddToMyListRequest{ProfileId: "p", TitleId: "t-g"})
			return err
		},
		"RemoveFromMyList": func() error {
			_, err := h.client.RemoveFromMyList(ctx, &profilesv1.RemoveFromMyListRequest{ProfileId: "p", TitleId: "t-g"})
			return err
		},
		"ListMyList": func() error {
			_, err := h.client.ListMyList(ctx, &profilesv1.ListMyListRequest{ProfileId: "p"})
			return err
		},
	}
	for name, call := range calls {
		wantStatus(t, name+" without a caller", call(), codes.Unauthenticated, "UNAUTHENTICATED")
	}
	if got := h.events(t); len(got) != 0 {
		t.Errorf("events = %+v, want none", got)
	}
}

func TestAnotherAccountsProfileIsNotFound(t *testing.T) {
	h := newHarness(t)
	mine := h.create(t, alice, "Alex", "adult")
	h.create(t, alice, "Sam", "teen")
	if _, err := h.client.AddToMyList(as(alice), &profilesv1.AddToMyListRequest{ProfileId: mine.GetId(), TitleId: "t-r"}); err != nil {
		t.Fatal(err)
	}
	h.events(t)
	h.catalog.takeCalls()
	id := mine.GetId()
	missing := "00000000-0000-4000-8000-00000000beef"

	// Every RPC on Alice's profile, as Bob and on a profile that does not
	// exist: the same NOT_FOUND, so Bob cannot tell the two apart.
	calls := []struct {
		name string
		call func(ctx context.Context, id string) error
	}{
		{"GetProfile", func(ctx context.Context, id string) error {
			_, err := h.client.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: id})
			return err
		}},
		{"UpdateProfile", func(ctx context.Context, id string) error {
			_, err := h.client.UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{Id: id, Name: proto.String("Mallory"), MaturityLevel: proto.String("kids")})
			return err
		}},
		{"DeleteProfile", func(ctx context.Context, id string) error {
			_, err := h.client.DeleteProfile(ctx, &profilesv1.DeleteProfileRequest{Id: id})
			return err
		}},
		{"ListMyList", func(ctx context.Context, id string) error {
			_, err := h.client.ListMyList(ctx, &profilesv1.ListMyListRequest{ProfileId: id})
			return err
		}},
		{"AddToMyList", func(ctx context.Context, id string) error {
			_, err := h.client.AddToMyList(ctx, &profilesv1.AddToMyListRequest{ProfileId: id, TitleId: "t-g"})
			return err
		}},
		{"RemoveFromMyList", func(ctx context.Context, id string) error {
			_, err := h.client.RemoveFromMyList(ctx, &profilesv1.RemoveFromMyListRequest{ProfileId: id, TitleId: "t-r"})
			return err
		}},
	}
	for _, c := range calls {
		foreign := c.call(as(bob), id)
		wantStatus(t, c.name+" by another account", foreign, codes.NotFound, profiles.ReasonNotFound)
		absent := c.call(as(bob), missing)
		wantStatus(t, c.name+" of a missing profile", absent, codes.NotFound, profiles.ReasonNotFound)
		if status.Convert(foreign).Message() != status.Convert(absent).Message() {
			t.Errorf("%s: another account's profile says %q, a missing one %q; want the same", c.name,
				status.Convert(foreign).Message(), status.Convert(absent).Message())
		}
	}
	// An admin's mutations are refused the same way.
	for _, c := range calls[1:] {
		wantStatus(t, c.name+" by an admin of another account", c.call(as("acct-admin", principal.RoleAdmin), id), codes.NotFound, profiles.ReasonNotFound)
	}
	if calls := h.catalog.takeCalls(); len(calls) != 0 {
		t.Errorf("the catalog was asked about %v for another account's profile", calls)
	}
	// Nothing changed.
	got, err := h.client.GetProfile(as(alice), &profilesv1.GetProfileRequest{Id: id})
	if err != nil || !proto.Equal(got.GetProfile(), mine) {
		t.Errorf("Alice's profile after Bob's attempts = %v, %v; want %v", got.GetProfile(), err, mine)
	}
	if list := h.myList(t, alice, id); !slices.Equal(list, []string{"t-r"}) {
		t.Errorf("Alice's My List after Bob's attempts = %v, want [t-r]", list)
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("events = %+v, want none", evs)
	}
	// An admin may read any profile.
	got, err = h.client.GetProfile(as("acct-admin", principal.RoleViewer, principal.RoleAdmin), &profilesv1.GetProfileRequest{Id: id})
	if err != nil || got.GetProfile().GetAccountId() != alice {
		t.Errorf("GetProfile by an admin = %v, %v; want Alice's profile", got, err)
	}
}

func TestUpdateProfile(t *testing.T) {
	h := newHarness(t)
	p := h.create(t, alice, "Alex", "adult")
	h.create(t, alice, "Sam", "teen")
	h.events(t)
	resp, err := h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), MaturityLevel: proto.String("teen")})
	if err != nil {
		t.Fatal(err)
	}
	got := resp.GetProfile()
	if got.GetName() != "Alex" || got.GetMaturityLevel() != "teen" || got.GetLanguage() != "en" ||
		!got.GetCreatedAt().AsTime().Equal(p.GetCreatedAt().AsTime()) || !got.GetUpdatedAt().AsTime().After(p.GetUpdatedAt().AsTime()) {
		t.Errorf("UpdateProfile(maturity teen) = %v", got)
	}
	if evs := h.events(t); len(evs) != 1 || evs[0].Subject != profiles.SubjectProfileUpdated || evs[0].Data.Maturity != "teen" {
		t.Errorf("events after the update = %+v", evs)
	}
	resp, err = h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), Name: proto.String(" Lex "), Language: proto.String("FR"), Avatar: proto.String("owl")})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetProfile(); got.GetName() != "Lex" || got.GetMaturityLevel() != "teen" || got.GetLanguage() != "fr" || got.GetAvatar() != "owl" {
		t.Errorf("UpdateProfile(name, language, avatar) = %v", got)
	}
	// Nothing set, or the values already there: no change, no event.
	before := resp.GetProfile()
	for _, req := range []*profilesv1.UpdateProfileRequest{
		{Id: p.GetId()},
		{Id: p.GetId(), Name: proto.String("Lex"), Language: proto.String("fr")},
	} {
		resp, err := h.client.UpdateProfile(as(alice), req)
		if err != nil || !proto.Equal(resp.GetProfile(), before) {
			t.Errorf("no-op UpdateProfile(%v) = %v, %v; want %v", req, resp.GetProfile(), err, before)
		}
	}
	_, err = h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), Name: proto.String("SAM")})
	wantStatus(t, "rename onto another profile", err, codes.AlreadyExists, profiles.ReasonProfileNameTaken)
	_, err = h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), Name: proto.String(""), MaturityLevel: proto.String("grownup"), Language: proto.String("")})
	wantStatus(t, "UpdateProfile with bad fields", err, codes.InvalidArgument, profiles.ReasonInvalidArgument, "name", "maturity_level", "language")
	if evs := h.events(t); !slices.Equal(subjectsOf(evs), []string{profiles.SubjectProfileUpdated}) {
		t.Errorf("events = %v, want one profile_updated", subjectsOf(evs))
	}
	// Clearing the avatar.
	resp, err = h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), Avatar: proto.String("")})
	if err != nil || resp.GetProfile().GetAvatar() != "" {
		t.Errorf("clearing the avatar = %v, %v", resp.GetProfile(), err)
	}
}

func TestDeleteProfile(t *testing.T) {
	h := newHarness(t)
	a := h.create(t, alice, "Alex", "adult")
	b := h.create(t, alice, "Sam", "adult")
	for _, title := range []string{"t-g", "t-r"} {
		if _, err := h.client.AddToMyList(as(alice), &profilesv1.AddToMyListRequest{ProfileId: a.GetId(), TitleId: title}); err != nil {
			t.Fatal(err)
		}
	}
	h.events(t)
	if _, err := h.client.DeleteProfile(as(alice), &profilesv1.DeleteProfileRequest{Id: a.GetId()}); err != nil {
		t.Fatalf("DeleteProfile: %v", err)
	}
	evs := h.events(t)
	if len(evs) != 1 || evs[0].Subject != profiles.SubjectProfileDeleted ||
		evs[0].Data != (profiles.EventData{AccountID: alice, ProfileID: a.GetId(), Maturity: "adult", Language: "en"}) {
		t.Errorf("events after DeleteProfile = %+v", evs)
	}
	_, err := h.client.GetProfile(as(alice), &profilesv1.GetProfileRequest{Id: a.GetId()})
	wantStatus(t, "GetProfile of a deleted profile", err, codes.NotFound, profiles.ReasonNotFound)
	_, err = h.client.ListMyList(as(alice), &profilesv1.ListMyListRequest{ProfileId: a.GetId()})
	wantStatus(t, "ListMyList of a deleted profile", err, codes.NotFound, profiles.ReasonNotFound)
	var n int
	if err := h.db.QueryRow(context.Background(), "SELECT COUNT(*) FROM my_list WHERE profile_id = $1", a.GetId()).Scan(&n); err != nil || n != 0 {
		t.Errorf("My List rows of the deleted profile = %d, %v; want 0", n, err)
	}
	_, err = h.client.DeleteProfile(as(alice), &profilesv1.DeleteProfileRequest{Id: b.GetId()})
	wantStatus(t, "DeleteProfile of the last profile", err, codes.FailedPrecondition, profiles.ReasonLastProfile)
}

func TestMyList(t *testing.T) {
	h := newHarness(t)
	adult := h.create(t, alice, "Alex", "adult")
	kids := h.create(t, alice, "Kids", "kids")
	h.events(t)
	add := func(profileID, title string) (*profilesv1.MyListItem, error) {
		resp, err := h.client.AddToMyList(as(alice), &profilesv1.AddToMyListRequest{ProfileId: profileID, TitleId: title})
		return resp.GetItem(), err
	}
	first, err := add(adult.GetId(), "t-r")
	if err != nil || first.GetTitleId() != "t-r" || first.GetAddedAt().AsTime().IsZero() {
		t.Fatalf("AddToMyList(t-r) = %v, %v", first, err)
	}
	again, err := add(adult.GetId(), "t-r")
	if err != nil || !proto.Equal(again, first) {
		t.Errorf("AddToMyList(t-r) again = %v, %v; want the original %v", again, err, first)
	}
	for _, title := range []string{"t-g", "t-14", "t-pg13"} {
		if _, err := add(adult.GetId(), title); err != nil {
			t.Fatalf("AddToMyList(%s): %v", title, err)
		}
	}
	evs := h.events(t)
	if len(evs) != 4 || evs[0].Data != (profiles.EventData{AccountID: alice, ProfileID: adult.GetId(), Maturity: "adult", TitleID: "t-r"}) {
		t.Errorf("events of four adds (one repeated) = %+v", evs)
	}
	// Newest first, in pages.
	var got []string
	token := ""
	for {
		resp, err := h.client.ListMyList(as(alice), &profilesv1.ListMyListRequest{ProfileId: adult.GetId(), PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range resp.GetItems() {
			got = append(got, it.GetTitleId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{"t-pg13", "t-14", "t-g", "t-r"}; !slices.Equal(got, want) {
		t.Errorf("ListMyList = %v, want %v", got, want)
	}
	// Removing is idempotent.
	for range 2 {
		if _, err := h.client.RemoveFromMyList(as(alice), &profilesv1.RemoveFromMyListRequest{ProfileId: adult.GetId(), TitleId: "t-g"}); err != nil {
			t.Fatalf("RemoveFromMyList: %v", err)
		}
	}
	if list := h.myList(t, alice, adult.GetId()); !slices.Equal(list, []string{"t-pg13", "t-14", "t-r"}) {
		t.Errorf("ListMyList after removing t-g = %v", list)
	}
	if evs := h.events(t); !slices.Equal(subjectsOf(evs), []string{profiles.SubjectMyListRemoved}) || evs[0].Data.TitleID != "t-g" {
		t.Errorf("events of two removes = %+v, want one my_list_removed", evs)
	}

	// Maturity: a kids profile may add G and TV-Y titles, not PG-13 or R.
	for _, title := range []string{"t-g", "t-tvy"} {
		if _, err := add(kids.GetId(), title); err != nil {
			t.Errorf("AddToMyList(kids, %s) = %v", title, err)
		}
	}
	for _, title := range []string{"t-pg13", "t-r", "t-ma"} {
		_, err := add(kids.GetId(), title)
		wantStatus(t, "AddToMyList(kids, "+title+")", err, codes.PermissionDenied, profiles.ReasonMaturityRestricted)
	}
	if list := h.myList(t, alice, kids.GetId()); !slices.Equal(list, []string{"t-tvy", "t-g"}) {
		t.Errorf("kids My List = %v, want [t-tvy t-g]", list)
	}
	// Lowering a profile's level hides what is above it.
	if _, err := h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: adult.GetId(), MaturityLevel: proto.String("kids")}); err != nil {
		t.Fatal(err)
	}
	if list := h.myList(t, alice, adult.GetId()); len(list) != 0 {
		t.Errorf("My List after lowering to kids = %v, want empty (t-pg13, t-14, t-r are above kids)", list)
	}
	if _, err := h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: adult.GetId(), MaturityLevel: proto.String("teen")}); err != nil {
		t.Fatal(err)
	}
	if list := h.myList(t, alice, adult.GetId()); !slices.Equal(list, []string{"t-pg13", "t-14"}) {
		t.Errorf("My List at teen = %v, want [t-pg13 t-14]", list)
	}

	// A title the catalog does not have.
	_, err = add(adult.GetId(), "t-nope")
	wantStatus(t, "AddToMyList(t-nope)", err, codes.NotFound, profiles.ReasonNotFound)
	// The catalog down: unavailable, nothing added.
	h.catalog.setDown(true)
	_, err = add(adult.GetId(), "t-pg")
	wantStatus(t, "AddToMyList with the catalog down", err, codes.Unavailable, profiles.ReasonUnavailable)
	h.catalog.setDown(false)
	if list := h.myList(t, alice, adult.GetId()); slices.Contains(list, "t-nope") || slices.Contains(list, "t-pg") {
		t.Errorf("My List = %v after failed adds", list)
	}
	// The catalog is called as the user.
	h.catalog.mu.Lock()
	callers := slices.Clone(h.catalog.callers)
	h.catalog.mu.Unlock()
	if len(callers) == 0 || slices.ContainsFunc(callers, func(c string) bool { return c != alice }) {
		t.Errorf("the catalog was called as %q, want always as %s", callers, alice)
	}
}

func TestValidation(t *testing.T) {
	h := newHarness(t)
	p := h.create(t, alice, "Alex", "")
	h.create(t, alice, "Second", "")
	list, err := h.client.ListProfiles(as(alice), &profilesv1.ListProfilesRequest{PageSize: 1})
	if err != nil || list.GetNextPageToken() == "" {
		t.Fatalf("ListProfiles(page_size 1) = %v, %v; want a next page", list, err)
	}
	profilesToken := list.GetNextPageToken()
	h.events(t)
	long := strings.Repeat("x", 41)
	ctx := as(alice)
	tests := []struct {
		name   string
		call   func() error
		fields []string
	}{
		{"CreateProfile empty", func() error {
			_, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{})
			return err
		}, []string{"name"}},
		{"CreateProfile all bad", func() error {
			_, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: long, MaturityLevel: "Adult", Language: "english", Avatar: "Fox"})
			return err
		}, []string{"name", "maturity_level", "language", "avatar"}},
		{"CreateProfile control character", func() error {
			_, err := h.client.CreateProfile(ctx, &profilesv1.CreateProfileRequest{Name: "A\x07"})
			return err
		}, []string{"name"}},
		{"ListProfiles bad paging", func() error {
			_, err := h.client.ListProfiles(ctx, &profilesv1.ListProfilesRequest{PageSize: -1, PageToken: "garbage"})
			return err
		}, []string{"page_size", "page_token"}},
		{"GetProfile no id", func() error {
			_, err := h.client.GetProfile(ctx, &profilesv1.GetProfileRequest{})
			return err
		}, []string{"id"}},
		{"GetProfile bad id", func() error {
			_, err := h.client.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: "../etc/passwd"})
			return err
		}, []string{"id"}},
		{"UpdateProfile bad id and avatar", func() error {
			_, err := h.client.UpdateProfile(ctx, &profilesv1.UpdateProfileRequest{Id: "a b", Avatar: proto.String("-")})
			return err
		}, []string{"id", "avatar"}},
		{"DeleteProfile no id", func() error {
			_, err := h.client.DeleteProfile(ctx, &profilesv1.DeleteProfileRequest{})
			return err
		}, []string{"id"}},
		{"AddToMyList no ids", func() error {
			_, err := h.client.AddToMyList(ctx, &profilesv1.AddToMyListRequest{})
			return err
		}, []string{"profile_id", "title_id"}},
		{"AddToMyList bad title", func() error {
			_, err := h.client.AddToMyList(ctx, &profilesv1.AddToMyListRequest{ProfileId: p.GetId(), TitleId: "t/1"})
			return err
		}, []string{"title_id"}},
		{"RemoveFromMyList no title", func() error {
			_, err := h.client.RemoveFromMyList(ctx, &profilesv1.RemoveFromMyListRequest{ProfileId: p.GetId()})
			return err
		}, []string{"title_id"}},
		{"ListMyList bad everything", func() error {
			_, err := h.client.ListMyList(ctx, &profilesv1.ListMyListRequest{PageSize: -5, PageToken: "x"})
			return err
		}, []string{"profile_id", "page_size", "page_token"}},
		{"ListMyList with a profiles token", func() error {
			_, err := h.client.ListMyList(ctx, &profilesv1.ListMyListRequest{ProfileId: p.GetId(), PageToken: profilesToken})
			return err
		}, []string{"page_token"}},
	}
	h.catalog.takeCalls()
	for _, tt := range tests {
		wantStatus(t, tt.name, tt.call(), codes.InvalidArgument, profiles.ReasonInvalidArgument, tt.fields...)
	}
	if calls := h.catalog.takeCalls(); len(calls) != 0 {
		t.Errorf("invalid requests reached the catalog: %v", calls)
	}
	if evs := h.events(t); len(evs) != 0 {
		t.Errorf("events = %v, want none", subjectsOf(evs))
	}
}

func TestSeed(t *testing.T) {
	h := newHarness(t)
	for range 2 {
		if err := h.svc.Seed(context.Background()); err != nil {
			t.Fatalf("Seed: %v", err)
		}
	}
	demo := as("00000000-0000-4000-8000-00000000de70")
	resp, err := h.client.ListProfiles(demo, &profilesv1.ListProfilesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range resp.GetProfiles() {
		got = append(got, fmt.Sprintf("%s %s %s", p.GetId(), p.GetName(), p.GetMaturityLevel()))
	}
	want := []string{
		"00000000-0000-4000-8000-0000000000a1 Alex adult",
		"00000000-0000-4000-8000-0000000000a2 Sam teen",
		"00000000-0000-4000-8000-0000000000a3 Kids kids",
	}
	if !slices.Equal(got, want) {
		t.Errorf("seeded demo profiles = %v, want %v", got, want)
	}
	if list := h.myList(t, "00000000-0000-4000-8000-00000000de70", "00000000-0000-4000-8000-0000000000a1"); !slices.Equal(list, []string{"t-0001", "t-0002", "t-0003", "t-0005"}) {
		t.Errorf("Alex's seeded My List = %v", list)
	}
	admin, err := h.client.ListProfiles(as("00000000-0000-4000-8000-00000000ad70", principal.RoleAdmin), &profilesv1.ListProfilesRequest{})
	if err != nil || len(admin.GetProfiles()) != 1 || admin.GetProfiles()[0].GetId() != profiles.AdminProfileID {
		t.Errorf("admin profiles = %v, %v", admin, err)
	}
	evs := h.events(t)
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Subject]++
	}
	if counts[profiles.SubjectProfileCreated] != 4 || counts[profiles.SubjectMyListAdded] != 6 || len(evs) != 10 {
		t.Errorf("seeding twice published %v, want 4 profile_created and 6 my_list_added", counts)
	}
}
