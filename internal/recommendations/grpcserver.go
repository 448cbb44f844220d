package recommendations

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// historyLimit is how many of a profile's views v2 reads: the seeds and
// enough more to know what it finished.
const historyLimit = 500

// neighboursPerSeed is how many co-viewed titles v2 reads per seed.
const neighboursPerSeed = 200

// server implements RecommendationsServiceServer.
type server struct {
	recommendationsv1.UnimplementedRecommendationsServiceServer
	svc *Service
}

var _ recommendationsv1.RecommendationsServiceServer = (*server)(nil)

// GetRecommendations answers rows for a profile of the caller, built by
// the instance's version, every title allowed by the profile's maturity
// level and available now.
func (s *server) GetRecommendations(ctx context.Context, req *recommendationsv1.GetRecommendationsRequest) (_ *recommendationsv1.GetRecommendationsResponse, err error) {
	defer func() {
		if err != nil {
			err = s.toStatus(ctx, err)
		}
	}()
	if _, err := principal.Require(ctx); err != nil {
		return nil, err
	}
	if !catalogdomain.ValidID(req.GetProfileId()) {
		return nil, domain.Invalid("profile_id", "must be 1 to 64 letters, digits, '-' or '_'")
	}
	limits, err := domain.NewLimits(req.GetMaxRows(), req.GetMaxTitlesPerRow())
	if err != nil {
		return nil, err
	}
	level, err := s.svc.prof.MaturityLevel(ctx, req.GetProfileId())
	if err != nil {
		return nil, err
	}
	snap, err := s.svc.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := s.svc.now()
	r := domain.Request{Level: level, Now: now, Limits: limits}
	var rows []domain.Row
	switch s.svc.version {
	case domain.V2:
		history, err := s.svc.store.History(ctx, req.GetProfileId(), historyLimit)
		if err != nil {
			return nil, err
		}
		seeds := make([]string, 0, domain.SeedLimit)
		for _, v := range history[:min(len(history), domain.SeedLimit)] {
			seeds = append(seeds, v.TitleID)
		}
		co, err := s.svc.store.CoViews(ctx, seeds, neighboursPerSeed)
		if err != nil {
			return nil, err
		}
		rows, _ = domain.V2Rows(snap, r, history, co)
	default:
		rows = domain.V1Rows(snap, r, "")
	}
	return &recommendationsv1.GetRecommendationsResponse{
		ProfileId:   req.GetProfileId(),
		Version:     string(s.svc.version),
		Rows:        rowsProto(rows),
		GeneratedAt: timestamppb.New(now),
	}, nil
}

func rowsProto(rows []domain.Row) []*recommendationsv1.Row {
	out := make([]*recommendationsv1.Row, len(rows))
	for i, r := range rows {
		pr := &recommendationsv1.Row{Id: r.ID, Title: r.Title, Reason: r.Reason, SeedTitleId: r.SeedTitleID}
		for _, t := range r.Titles {
			pr.Titles = append(pr.Titles, &recommendationsv1.RecommendedTitle{
				Id:             t.Title.ID,
				Name:           t.Title.Name,
				Kind:           t.Title.Kind,
				ArtworkUrl:     t.Title.ArtworkURL,
				MaturityRating: string(t.Title.Rating),
				Genres:         t.Title.Genres,
				Year:           int32(t.Title.Year),
				Score:          t.Score,
			})
		}
		out[i] = pr
	}
	return out
}
