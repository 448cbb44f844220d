package playback

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

// peerTimeout bounds one call to catalog or profiles.
const peerTimeout = 5 * time.Second

// peerError turns a failed call to a peer into a domain error: the entity
// is missing (NotFound, and PermissionDenied or InvalidArgument about
// it), or the peer is unavailable (anything else), which the caller may
// retry.
func peerError(what string, err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument:
		return fmt.Errorf("%s: %w", what, domain.ErrNotFound)
	case codes.Canceled:
		return fmt.Errorf("%s: %w", what, context.Canceled)
	}
	return fmt.Errorf("%s: %w: %v", what, domain.ErrUnavailable, err)
}

// title returns a title with its seasons from the catalog.
func (s *Service) title(ctx context.Context, id string) (*catalogv1.Title, error) {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	resp, err := s.catalog.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: id})
	if err != nil {
		return nil, peerError("title "+id, err)
	}
	if resp.GetTitle() == nil {
		return nil, fmt.Errorf("title %s: %w: catalog answered no title", id, domain.ErrUnavailable)
	}
	return resp.GetTitle(), nil
}

// profile is what playback needs of a profile.
type profile struct {
	AccountID string
	Level     catalogdomain.Level
}

// profile returns one of the caller's profiles, asking the profiles service
// on the caller's behalf (it answers only the caller's own profiles). A
// maturity level playback does not know reads as kids, the strictest.
func (s *Service) profile(ctx context.Context, p principal.Principal, id string) (profile, error) {
	ctx, cancel := context.WithTimeout(principal.NewOutgoingContext(ctx, p), peerTimeout)
	defer cancel()
	resp, err := s.profiles.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: id})
	if err != nil {
		return profile{}, peerError("profile "+id, err)
	}
	pr := resp.GetProfile()
	if pr == nil || pr.GetAccountId() != p.AccountID {
		return profile{}, fmt.Errorf("profile %s: %w", id, domain.ErrNotFound)
	}
	level, err := catalogdomain.ParseLevel(pr.GetMaturityLevel())
	if err != nil {
		s.log.WarnContext(ctx, "profile has an unknown maturity level; treating it as kids", "profile", id, "level", pr.GetMaturityLevel())
		level = catalogdomain.LevelKids
	}
	return profile{AccountID: pr.GetAccountId(), Level: level}, nil
}

// playable is what plays when a profile starts a title: the title itself
// for a movie, one of its episodes for a series.
type playable struct {
	EpisodeID string
	AssetID   string
	Duration  int
}

// pickPlayable chooses what to play of t: for a movie, the movie (an
// episode id is refused); for a series, the requested episode, or else the
// episode in progress (the next one when that is finished), or else the
// first.
func pickPlayable(t *catalogv1.Title, episodeID string, last domain.Progress) (playable, error) {
	if t.GetKind() != "series" {
		if episodeID != "" {
			return playable{}, domain.Invalid("episode_id", "title %s is not a series", t.GetId())
		}
		return playable{AssetID: t.GetMediaAssetId(), Duration: int(t.GetDurationSeconds())}, nil
	}
	var eps []*catalogv1.Episode
	for _, season := range t.GetSeasons() {
		eps = append(eps, season.GetEpisodes()...)
	}
	if len(eps) == 0 {
		return playable{}, fmt.Errorf("series %s has no episodes: %w", t.GetId(), domain.ErrMediaUnavailable)
	}
	of := func(e *catalogv1.Episode) playable {
		return playable{EpisodeID: e.GetId(), AssetID: e.GetMediaAssetId(), Duration: int(e.GetDurationSeconds())}
	}
	if episodeID != "" {
		for _, e := range eps {
			if e.GetId() == episodeID {
				return of(e), nil
			}
		}
		return playable{}, domain.Invalid("episode_id", "is not an episode of title %s", t.GetId())
	}
	if last.EpisodeID != "" {
		for i, e := range eps {
			if e.GetId() != last.EpisodeID {
				continue
			}
			if last.Finished && i+1 < len(eps) {
				return of(eps[i+1]), nil
			}
			return of(e), nil
		}
	}
	return of(eps[0]), nil
}
