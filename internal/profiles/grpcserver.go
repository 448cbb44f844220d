package profiles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// server implements profilesv1.ProfilesServiceServer. Every handler
// authenticates the caller, validates its whole input before touching the
// repository, returns domain errors, and has them mapped to a status by
// toStatus (errors.go), deferred.
type server struct {
	profilesv1.UnimplementedProfilesServiceServer
	repo    domain.Repository
	titles  catalogTitles
	now     func() time.Time
	log     *slog.Logger
	written func() // after a commit that may have published events
}

var _ profilesv1.ProfilesServiceServer = (*server)(nil)

// CreateProfile adds a profile to the caller's account.
func (s *server) CreateProfile(ctx context.Context, req *profilesv1.CreateProfileRequest) (_ *profilesv1.CreateProfileResponse, err error) {
	defer s.mapError(ctx, "CreateProfile", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	f, err := domain.NewFields(req.GetName(), req.GetMaturityLevel(), req.GetLanguage(), req.GetAvatar())
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	p, err := s.repo.CreateProfile(ctx, domain.Profile{
		ID:        uuid.NewString(),
		AccountID: caller.AccountID,
		Name:      f.Name,
		Maturity:  f.Maturity,
		Language:  f.Language,
		Avatar:    f.Avatar,
		CreatedAt: now,
		UpdatedAt: now,
	})
	if err != nil {
		return nil, err
	}
	s.written()
	return &profilesv1.CreateProfileResponse{Profile: profileProto(p)}, nil
}

// ListProfiles lists the caller's profiles, oldest first.
func (s *server) ListProfiles(ctx context.Context, req *profilesv1.ListProfilesRequest) (_ *profilesv1.ListProfilesResponse, err error) {
	defer s.mapError(ctx, "ListProfiles", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageOf(domain.ListProfiles, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ps, more, err := s.repo.ListProfiles(ctx, caller.AccountID, page)
	if err != nil {
		return nil, err
	}
	resp := &profilesv1.ListProfilesResponse{Profiles: make([]*profilesv1.Profile, len(ps))}
	for i, p := range ps {
		resp.Profiles[i] = profileProto(p)
	}
	if more {
		resp.NextPageToken = domain.EncodePageToken(domain.ListProfiles, ps[len(ps)-1].Seq)
	}
	return resp, nil
}

// GetProfile returns one of the caller's profiles, or any profile to an
// admin.
func (s *server) GetProfile(ctx context.Context, req *profilesv1.GetProfileRequest) (_ *profilesv1.GetProfileResponse, err error) {
	defer s.mapError(ctx, "GetProfile", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckID("id", req.GetId()); err != nil {
		return nil, err
	}
	p, err := s.repo.Profile(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if p.AccountID != caller.AccountID && !caller.HasRole(principal.RoleAdmin) {
		return nil, fmt.Errorf("profile %q of another account: %w", p.ID, domain.ErrNotFound)
	}
	return &profilesv1.GetProfileResponse{Profile: profileProto(p)}, nil
}

// UpdateProfile changes the fields that are set.
func (s *server) UpdateProfile(ctx context.Context, req *profilesv1.UpdateProfileRequest) (_ *profilesv1.UpdateProfileResponse, err error) {
	defer s.mapError(ctx, "UpdateProfile", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	c, err := domain.NewChanges(req.Name, req.MaturityLevel, req.Language, req.Avatar)
	if err = errors.Join(domain.CheckID("id", req.GetId()), err); err != nil {
		return nil, err
	}
	p, err := s.repo.UpdateProfile(ctx, caller.AccountID, req.GetId(), func(p *domain.Profile) (bool, error) {
		if !c.Apply(p) {
			return false, nil
		}
		p.UpdatedAt = s.now().UTC()
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	s.written()
	return &profilesv1.UpdateProfileResponse{Profile: profileProto(p)}, nil
}

// DeleteProfile deletes one of the caller's profiles and its My List.
func (s *server) DeleteProfile(ctx context.Context, req *profilesv1.DeleteProfileRequest) (_ *profilesv1.DeleteProfileResponse, err error) {
	defer s.mapError(ctx, "DeleteProfile", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := domain.CheckID("id", req.GetId()); err != nil {
		return nil, err
	}
	if err := s.repo.DeleteProfile(ctx, caller.AccountID, req.GetId(), s.now()); err != nil {
		return nil, err
	}
	s.written()
	return &profilesv1.DeleteProfileResponse{}, nil
}

// AddToMyList puts a title the profile may watch on its My List.
func (s *server) AddToMyList(ctx context.Context, req *profilesv1.AddToMyListRequest) (_ *profilesv1.AddToMyListResponse, err error) {
	defer s.mapError(ctx, "AddToMyList", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(domain.CheckID("profile_id", req.GetProfileId()), domain.CheckID("title_id", req.GetTitleId())); err != nil {
		return nil, err
	}
	// The profile first, so that another account's profile is NOT_FOUND
	// whatever the title, and the catalog is not asked for nothing.
	p, err := s.ownedProfile(ctx, caller, req.GetProfileId())
	if err != nil {
		return nil, err
	}
	rating, err := s.titles.rating(ctx, req.GetTitleId())
	if err != nil {
		return nil, err
	}
	if err := domain.CheckTitleAllowed(p.Maturity, rating); err != nil {
		return nil, fmt.Errorf("title %s rated %s for a %s profile: %w", req.GetTitleId(), rating, p.Maturity, err)
	}
	item, err := s.repo.AddToMyList(ctx, caller.AccountID, p.ID,
		domain.Item{TitleID: req.GetTitleId(), Rating: rating, AddedAt: s.now()},
		func(locked domain.Profile) error { // the level may have changed meanwhile
			return domain.CheckTitleAllowed(locked.Maturity, rating)
		})
	if err != nil {
		return nil, err
	}
	s.written()
	return &profilesv1.AddToMyListResponse{Item: itemProto(item)}, nil
}

// RemoveFromMyList takes a title off a profile's My List.
func (s *server) RemoveFromMyList(ctx context.Context, req *profilesv1.RemoveFromMyListRequest) (_ *profilesv1.RemoveFromMyListResponse, err error) {
	defer s.mapError(ctx, "RemoveFromMyList", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(domain.CheckID("profile_id", req.GetProfileId()), domain.CheckID("title_id", req.GetTitleId())); err != nil {
		return nil, err
	}
	if err := s.repo.RemoveFromMyList(ctx, caller.AccountID, req.GetProfileId(), req.GetTitleId(), s.now()); err != nil {
		return nil, err
	}
	s.written()
	return &profilesv1.RemoveFromMyListResponse{}, nil
}

// ListMyList lists a profile's My List, most recently added first.
func (s *server) ListMyList(ctx context.Context, req *profilesv1.ListMyListRequest) (_ *profilesv1.ListMyListResponse, err error) {
	defer s.mapError(ctx, "ListMyList", &err)
	caller, err := principal.Require(ctx)
	if err != nil {
		return nil, err
	}
	page, err := pageOf(domain.ListMyList, req.GetPageSize(), req.GetPageToken())
	if err = errors.Join(domain.CheckID("profile_id", req.GetProfileId()), err); err != nil {
		return nil, err
	}
	items, more, err := s.repo.ListMyList(ctx, caller.AccountID, req.GetProfileId(), page)
	if err != nil {
		return nil, err
	}
	resp := &profilesv1.ListMyListResponse{Items: make([]*profilesv1.MyListItem, len(items))}
	for i, it := range items {
		resp.Items[i] = itemProto(it)
	}
	if more {
		resp.NextPageToken = domain.EncodePageToken(domain.ListMyList, items[len(items)-1].Seq)
	}
	return resp, nil
}

// ownedProfile returns the caller's profile id (an admin's own, too: admin
// reads of other accounts go through GetProfile only).
func (s *server) ownedProfile(ctx context.Context, caller principal.Principal, id string) (domain.Profile, error) {
	p, err := s.repo.Profile(ctx, id)
	if err != nil {
		return domain.Profile{}, err
	}
	if p.AccountID != caller.AccountID {
		return domain.Profile{}, fmt.Errorf("profile %q of another account: %w", id, domain.ErrNotFound)
	}
	return p, nil
}

// pageOf validates page_size and page_token together.
func pageOf(list domain.List, size int32, token string) (domain.Page, error) {
	limit, err1 := domain.PageSize(size)
	after, err2 := domain.ParsePageToken(list, token)
	if err := errors.Join(err1, err2); err != nil {
		return domain.Page{}, err
	}
	return domain.Page{Limit: limit, After: after}, nil
}

func profileProto(p domain.Profile) *profilesv1.Profile {
	return &profilesv1.Profile{
		Id:            p.ID,
		AccountId:     p.AccountID,
		Name:          p.Name,
		MaturityLevel: string(p.Maturity),
		Language:      p.Language,
		Avatar:        p.Avatar,
		CreatedAt:     timestamppb.New(p.CreatedAt),
		UpdatedAt:     timestamppb.New(p.UpdatedAt),
	}
}

func itemProto(it domain.Item) *profilesv1.MyListItem {
	return &profilesv1.MyListItem{TitleId: it.TitleID, AddedAt: timestamppb.New(it.AddedAt)}
}
