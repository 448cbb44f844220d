package recommendations

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// Profiles resolves a profile of the caller to its maturity level.
type Profiles interface {
	// MaturityLevel returns the level of the caller's profile. A profile
	// that does not exist or belongs to another account is an error
	// matching domain.ErrProfileNotFound; a lookup that could not be made
	// matches domain.ErrUnavailable; a caller the profiles service does not
	// accept matches ErrUnauthenticated.
	MaturityLevel(ctx context.Context, profileID string) (catalogdomain.Level, error)
}

// ErrUnauthenticated reports a call without a caller the profiles service
// accepts.
var ErrUnauthenticated = errors.New("recommendations: unauthenticated")

// ProfilesClient is Profiles over the profiles service's GetProfile. Dial
// the connection with the peers dialer, which forwards the caller of the
// call being served.
type ProfilesClient struct {
	c profilesv1.ProfilesServiceClient
}

var _ Profiles = ProfilesClient{}

// NewProfilesClient returns a Profiles that asks the profiles service on
// conn.
func NewProfilesClient(conn grpc.ClientConnInterface) ProfilesClient {
	return ProfilesClient{c: profilesv1.NewProfilesServiceClient(conn)}
}

// MaturityLevel asks GetProfile; see Profiles.
func (p ProfilesClient) MaturityLevel(ctx context.Context, profileID string) (catalogdomain.Level, error) {
	resp, err := p.c.GetProfile(ctx, &profilesv1.GetProfileRequest{Id: profileID})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound, codes.PermissionDenied, codes.InvalidArgument:
		return "", fmt.Errorf("profile %s: %w", profileID, domain.ErrProfileNotFound)
	case codes.Unauthenticated:
		return "", ErrUnauthenticated
	case codes.DeadlineExceeded, codes.Canceled:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: profiles: %w", domain.ErrUnavailable, err)
	default:
		return "", fmt.Errorf("%w: profiles: %w", domain.ErrUnavailable, err)
	}
	level, err := catalogdomain.ParseLevel(resp.GetProfile().GetMaturityLevel())
	if err != nil {
		return "", fmt.Errorf("%w: profile %s has maturity level %q", domain.ErrUnavailable, profileID, resp.GetProfile().GetMaturityLevel())
	}
	return level, nil
}
