package profiles

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// catalogTitles asks the catalog service about titles.
type catalogTitles struct {
	client  catalogv1.CatalogServiceClient
	timeout time.Duration
}

// rating returns the maturity rating of a title: domain.ErrTitleNotFound
// when the catalog has no such title, domain.ErrUnavailable when the
// catalog cannot answer.
func (c catalogTitles) rating(ctx context.Context, titleID string) (catalog.Rating, error) {
	if c.client == nil {
		return "", fmt.Errorf("%w: no catalog configured", domain.ErrUnavailable)
	}
	// As the user: the peers dialer forwards the caller too, but any
	// connection does with this.
	cctx, cancel := context.WithTimeout(principal.Forward(ctx), c.timeout)
	defer cancel()
	// No profile_id or maturity_level: the catalog answers every title,
	// and the profile's level is checked here (a profile_id would make the
	// catalog call back into this service).
	resp, err := c.client.GetTitle(cctx, &catalogv1.GetTitleRequest{Id: titleID})
	switch code := status.Code(err); {
	case err == nil:
	case code == codes.NotFound, code == codes.InvalidArgument:
		return "", fmt.Errorf("title %q: %w", titleID, domain.ErrTitleNotFound)
	case ctx.Err() != nil:
		return "", ctx.Err()
	default:
		return "", fmt.Errorf("%w: catalog GetTitle: %w", domain.ErrUnavailable, err)
	}
	r, err := catalog.ParseRating(resp.GetTitle().GetMaturityRating())
	if err != nil {
		return "", fmt.Errorf("catalog title %q: %v", titleID, err)
	}
	return r, nil
}
