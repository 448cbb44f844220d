package playback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	catalogdemo "github.com/marquee-tv/marquee/internal/catalog/demo"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback/domain"
)

// Demo seeding.
const (
	// SeedPlanKey is the idempotency key of the demo viewer's plan.
	SeedPlanKey = "seed:demo-plan"
	// SeedPlanTerm is how long the seeded plan lasts.
	SeedPlanTerm = 365 * 24 * time.Hour
	// seedTitlesPerProfile is how many titles each demo profile watched.
	seedTitlesPerProfile = 6
)

// seedFractions is how far each demo profile got into its titles, in
// order; 1 and above mean finished.
var seedFractions = [seedTitlesPerProfile]float64{0.34, 0.58, 0.12, 0.76, 1, 0.95}

// seedNamespace derives the stable ids of seeded rows.
var seedNamespace = uuid.MustParse("5f1d3c4e-8a39-4c55-9a0e-6d1b2f4c7a10")

// SeededTitle is one title of a demo profile's viewing history.
type SeededTitle struct {
	TitleID   string
	EpisodeID string
	Genres    []string
	Position  int
	Duration  int
}

// SeedHistory returns the viewing history the demo seeds for a profile of
// the given maturity level (the index-th demo profile): titles of the
// demo catalog (catalog/demo) the level allows and available at now, some
// part-watched and two finished. Different profiles get different titles.
func SeedHistory(level catalogdomain.Level, index int, now time.Time) []SeededTitle {
	var allowed []catalogdomain.Title
	for _, t := range catalogdemo.Titles() {
		if catalogdomain.Allows(level, t.Rating) && t.AvailableAt(now) {
			allowed = append(allowed, t)
		}
	}
	var out []SeededTitle
	for k := 0; k < seedTitlesPerProfile; k++ {
		i := index + 3*k
		if i >= len(allowed) {
			break
		}
		t := allowed[i]
		st := SeededTitle{TitleID: t.ID, Genres: t.Genres, Duration: int(t.Duration / time.Second)}
		if t.Kind == catalogdomain.KindSeries && len(t.Seasons) > 0 && len(t.Seasons[0].Episodes) > 0 {
			ep := t.Seasons[0].Episodes[0]
			st.EpisodeID, st.Duration = ep.ID, int(ep.Duration/time.Second)
		}
		st.Position = min(int(float64(st.Duration)*seedFractions[k]), st.Duration)
		out = append(out, st)
	}
	return out
}

// Seed gives the demo viewer (seed.DemoAccountID) an active seed.DemoPlan
// for SeedPlanTerm and a viewing history for each of seed.DemoProfiles,
// publishing the history's progress and completed events through the
// outbox so that recommendations learn from it. It writes only what is
// missing: safe on every start and from several replicas at once.
func (s *Service) Seed(ctx context.Context) error {
	now := s.now().UTC().Truncate(time.Second)
	plan := domain.Grant{IdempotencyKey: SeedPlanKey, AccountID: seed.DemoAccountID, PlanID: seed.DemoPlan, ExpiresAt: now.Add(SeedPlanTerm)}
	if err := plan.Validate(); err != nil {
		return fmt.Errorf("playback: seed plan: %w", err)
	}
	err := s.inTx(ctx, func(tx *storage.Tx) error {
		_, err := s.store.EntitlementByKey(ctx, tx, SeedPlanKey)
		if !errors.Is(err, domain.ErrNotFound) {
			return err
		}
		_, err = s.store.Grant(ctx, tx, plan.Entitlement(uuid.NewSHA1(seedNamespace, []byte(SeedPlanKey)).String(), now))
		return err
	})
	if err != nil && !errors.Is(err, domain.ErrIdempotencyKeyReused) { // another replica seeded it
		return fmt.Errorf("playback: seed plan: %w", err)
	}
	added := 0
	for i, p := range seed.DemoProfiles {
		level, err := catalogdomain.ParseLevel(p.Maturity)
		if err != nil {
			return fmt.Errorf("playback: seed profile %s: %w", p.ID, err)
		}
		history := SeedHistory(level, i, now)
		err = s.inTx(ctx, func(tx *storage.Tx) error {
			for k, h := range history {
				at := now.Add(-time.Duration(k*5+i+1) * time.Hour)
				n, err := s.seedProgress(ctx, tx, p.ID, h, at)
				if err != nil {
					return err
				}
				added += n
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("playback: seed history of %s: %w", p.ID, err)
		}
	}
	if added > 0 {
		s.log.InfoContext(ctx, "playback seeded with demo viewing history", "titles", added)
	}
	return nil
}

// seedProgress writes one title of a profile's history, with its events,
// unless the profile already has progress in the title; it reports 1 when
// it wrote.
func (s *Service) seedProgress(ctx context.Context, tx *storage.Tx, profileID string, h SeededTitle, at time.Time) (int, error) {
	prog := domain.Progress{
		AccountID: seed.DemoAccountID, ProfileID: profileID, TitleID: h.TitleID, EpisodeID: h.EpisodeID,
		Position: h.Position, Duration: h.Duration, Finished: domain.Finished(h.Position, h.Duration), UpdatedAt: at,
	}
	added, err := s.store.AddProgress(ctx, tx, prog)
	if err != nil || !added {
		return 0, err
	}
	x := domain.Session{
		ID:        uuid.NewSHA1(seedNamespace, []byte("session:"+profileID+":"+h.TitleID)).String(),
		AccountID: seed.DemoAccountID, ProfileID: profileID, TitleID: h.TitleID, EpisodeID: h.EpisodeID,
		Genres: h.Genres, Duration: h.Duration, Position: h.Position, State: domain.SessionEnded,
	}
	emit := domain.Emit{Progress: true, Completed: prog.Finished}
	if err := publishEmit(ctx, tx, x, emit, at, domain.EndStopped); err != nil {
		return 0, err
	}
	return 1, nil
}
