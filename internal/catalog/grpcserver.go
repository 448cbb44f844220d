package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	"github.com/marquee-tv/marquee/internal/catalog/artwork"
	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

// MaxBatchIDs is the most ids BatchGetTitles accepts.
const MaxBatchIDs = 200

// server implements catalogv1.CatalogServiceServer. Every handler validates
// its whole input before touching the repository, returns domain errors,
// and has them mapped to a status by toStatus (errors.go), deferred.
type server struct {
	catalogv1.UnimplementedCatalogServiceServer
	repo     domain.Repository
	profiles Profiles
	now      func() time.Time
	log      *slog.Logger
}

var _ catalogv1.CatalogServiceServer = (*server)(nil)

// titlesInput is what ListTitles and SearchTitles share.
type titlesInput struct {
	q, genre, kind, profileID, level string
	pageSize                         int32
	pageToken                        string
	search                           bool // q is required
}

// queryTitles browses (no q) or searches (q) after validating in.
func (s *server) queryTitles(ctx context.Context, in titlesInput) (domain.Page, error) {
	search := in.search || strings.TrimSpace(in.q) != ""
	var errs []error
	if search {
		if strings.TrimSpace(in.q) == "" {
			errs = append(errs, domain.Invalid("q", "is required"))
		} else if _, err := domain.SearchTerms(in.q); err != nil {
			errs = append(errs, err)
		}
	}
	f, err := domain.NewFilter(in.genre, in.kind, domain.LevelAdult)
	errs = append(errs, err)
	_, err = domain.PageSize(in.pageSize)
	errs = append(errs, err, checkLevelInputs(in.profileID, in.level))
	if err := errors.Join(errs...); err != nil {
		return domain.Page{}, err
	}
	if f.Level, err = s.maturityLevel(ctx, in.profileID, in.level); err != nil {
		return domain.Page{}, err
	}
	if search {
		q, err := domain.NewSearchQuery(in.q, f, in.pageSize, in.pageToken)
		if err != nil {
			return domain.Page{}, err
		}
		return s.repo.SearchTitles(ctx, q)
	}
	q, err := domain.NewListQuery(f, in.pageSize, in.pageToken)
	if err != nil {
		return domain.Page{}, err
	}
	return s.repo.ListTitles(ctx, q)
}

// ListTitles browses the catalog in name order, or searches it when q is
// set (as SearchTitles).
func (s *server) ListTitles(ctx context.Context, req *catalogv1.ListTitlesRequest) (_ *catalogv1.ListTitlesResponse, err error) {
	defer s.mapError(ctx, "ListTitles", &err)
	page, err := s.queryTitles(ctx, titlesInput{
		q: req.GetQ(), genre: req.GetGenre(), kind: req.GetKind(),
		profileID: req.GetProfileId(), level: req.GetMaturityLevel(),
		pageSize: req.GetPageSize(), pageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	return &catalogv1.ListTitlesResponse{Titles: s.titlesProto(page.Titles), NextPageToken: page.NextPageToken}, nil
}

// SearchTitles searches names, genres and synopses; q is required.
func (s *server) SearchTitles(ctx context.Context, req *catalogv1.SearchTitlesRequest) (_ *catalogv1.SearchTitlesResponse, err error) {
	defer s.mapError(ctx, "SearchTitles", &err)
	page, err := s.queryTitles(ctx, titlesInput{
		q: req.GetQ(), profileID: req.GetProfileId(), level: req.GetMaturityLevel(),
		pageSize: req.GetPageSize(), pageToken: req.GetPageToken(), search: true,
	})
	if err != nil {
		return nil, err
	}
	return &catalogv1.SearchTitlesResponse{Titles: s.titlesProto(page.Titles), NextPageToken: page.NextPageToken}, nil
}

// GetTitle returns a title with its seasons and episodes. A title above
// the requested maturity level is refused (MATURITY_RESTRICTED).
func (s *server) GetTitle(ctx context.Context, req *catalogv1.GetTitleRequest) (_ *catalogv1.GetTitleResponse, err error) {
	defer s.mapError(ctx, "GetTitle", &err)
	if err := errors.Join(domain.CheckID("id", req.GetId()), checkLevelInputs(req.GetProfileId(), req.GetMaturityLevel())); err != nil {
		return nil, err
	}
	level, err := s.maturityLevel(ctx, req.GetProfileId(), req.GetMaturityLevel())
	if err != nil {
		return nil, err
	}
	t, err := s.repo.Title(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !domain.Allows(level, t.Rating) {
		return nil, fmt.Errorf("title %q is rated %s, above %s: %w", t.ID, t.Rating, level, domain.ErrMaturityRestricted)
	}
	return &catalogv1.GetTitleResponse{Title: s.titleProto(t, true)}, nil
}

// BatchGetTitles returns the titles with the given ids in that order,
// leaving out unknown ids and titles above maturity_level.
func (s *server) BatchGetTitles(ctx context.Context, req *catalogv1.BatchGetTitlesRequest) (_ *catalogv1.BatchGetTitlesResponse, err error) {
	defer s.mapError(ctx, "BatchGetTitles", &err)
	ids := req.GetIds()
	var errs []error
	if len(ids) > MaxBatchIDs {
		errs = append(errs, domain.Invalid("ids", "at most %d ids", MaxBatchIDs))
	} else {
		for i, id := range ids {
			errs = append(errs, domain.CheckID(fmt.Sprintf("ids[%d]", i), id))
		}
	}
	errs = append(errs, checkLevelInputs("", req.GetMaturityLevel()))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	level, err := s.maturityLevel(ctx, "", req.GetMaturityLevel())
	if err != nil {
		return nil, err
	}
	titles, err := s.repo.Titles(ctx, ids)
	if err != nil {
		return nil, err
	}
	kept := titles[:0]
	for _, t := range titles {
		if domain.Allows(level, t.Rating) {
			kept = append(kept, t)
		}
	}
	return &catalogv1.BatchGetTitlesResponse{Titles: s.titlesProto(kept)}, nil
}

// ListGenres returns every genre with its number of titles.
func (s *server) ListGenres(ctx context.Context, _ *catalogv1.ListGenresRequest) (_ *catalogv1.ListGenresResponse, err error) {
	defer s.mapError(ctx, "ListGenres", &err)
	genres, err := s.repo.Genres(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*catalogv1.Genre, len(genres))
	for i, g := range genres {
		out[i] = &catalogv1.Genre{Id: g.ID, Name: g.Name, TitleCount: int32(g.TitleCount)}
	}
	return &catalogv1.ListGenresResponse{Genres: out}, nil
}

// GetArtwork returns the title's generated SVG poster.
func (s *server) GetArtwork(ctx context.Context, req *catalogv1.GetArtworkRequest) (_ *httpbody.HttpBody, err error) {
	defer s.mapError(ctx, "GetArtwork", &err)
	if err := domain.CheckID("id", req.GetId()); err != nil {
		return nil, err
	}
	titles, err := s.repo.Titles(ctx, []string{req.GetId()})
	if err != nil {
		return nil, err
	}
	if len(titles) == 0 {
		return nil, fmt.Errorf("title %q: %w", req.GetId(), domain.ErrNotFound)
	}
	return &httpbody.HttpBody{ContentType: artwork.ContentType, Data: artwork.Poster(titles[0])}, nil
}

// checkLevelInputs validates the syntax of profile_id and maturity_level.
func checkLevelInputs(profileID, level string) error {
	var errs []error
	if profileID != "" {
		errs = append(errs, domain.CheckID("profile_id", profileID))
	}
	if level != "" {
		_, err := domain.ParseLevel(level)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// maturityLevel is the level a request is served at: the stricter of
// maturity_level and the level of profile_id, or adult when neither is
// given. Taking the stricter one means a caller cannot widen a profile's
// level by also passing maturity_level.
func (s *server) maturityLevel(ctx context.Context, profileID, level string) (domain.Level, error) {
	result := domain.LevelAdult
	if level != "" {
		l, err := domain.ParseLevel(level)
		if err != nil {
			return "", err
		}
		result = l
	}
	if profileID == "" {
		return result, nil
	}
	if s.profiles == nil {
		return "", domain.Invalid("profile_id", "profile lookup not available; pass maturity_level instead")
	}
	got, err := s.profiles.ProfileMaturity(ctx, profileID)
	switch code := status.Code(err); {
	case err == nil:
	case errors.Is(err, domain.ErrNotFound) || code == codes.NotFound || code == codes.PermissionDenied:
		return "", domain.Invalid("profile_id", "no such profile")
	case ctx.Err() != nil:
		return "", ctx.Err()
	default:
		return "", fmt.Errorf("%w: profile lookup: %w", domain.ErrUnavailable, err)
	}
	l, err := domain.ParseLevel(got)
	if err != nil {
		return "", fmt.Errorf("profile %s has maturity level %q: %w", profileID, got, domain.ErrUnavailable)
	}
	return domain.Stricter(result, l), nil
}

// ArtworkURL is where the gateway serves a title's artwork.
func ArtworkURL(titleID string) string {
	return "/api/v1/titles/" + url.PathEscape(titleID) + "/artwork"
}

func (s *server) titlesProto(ts []domain.Title) []*catalogv1.Title {
	out := make([]*catalogv1.Title, len(ts))
	for i, t := range ts {
		out[i] = s.titleProto(t, false)
	}
	return out
}

// titleProto converts t; seasons only when withSeasons (list responses
// leave them out).
func (s *server) titleProto(t domain.Title, withSeasons bool) *catalogv1.Title {
	p := &catalogv1.Title{
		Id:              t.ID,
		Name:            t.Name,
		Kind:            string(t.Kind),
		Synopsis:        t.Synopsis,
		Year:            int32(t.Year),
		Genres:          t.Genres,
		MaturityRating:  string(t.Rating),
		DurationSeconds: int32(t.Duration / time.Second),
		ArtworkUrl:      ArtworkURL(t.ID),
		Rentable:        t.Rentable,
		AvailableFrom:   timestamppb.New(t.AvailableFrom),
		MediaAssetId:    t.MediaAssetID,
		Available:       t.AvailableAt(s.now()),
	}
	if !t.AvailableUntil.IsZero() {
		p.AvailableUntil = timestamppb.New(t.AvailableUntil)
	}
	if withSeasons {
		for _, se := range t.Seasons {
			ps := &catalogv1.Season{Number: int32(se.Number), Name: se.Name}
			for _, e := range se.Episodes {
				ps.Episodes = append(ps.Episodes, &catalogv1.Episode{
					Id:              e.ID,
					Number:          int32(e.Number),
					Name:            e.Name,
					Synopsis:        e.Synopsis,
					DurationSeconds: int32(e.Duration / time.Second),
					MediaAssetId:    e.MediaAssetID,
				})
			}
			p.Seasons = append(p.Seasons, ps)
		}
	}
	return p
}
