package profiles

import (
	"context"
	"errors"
	"fmt"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

// AdminProfileID is the id of the admin account's demo profile.
const AdminProfileID = "00000000-0000-4000-8000-0000000000b1"

// demoTitle is a catalog demo title seeded on a My List, with its rating
// (checked against the catalog's demo data by the tests): seeding asks the
// catalog nothing, as it may not be up yet.
type demoTitle struct {
	id     string
	rating catalog.Rating
}

// demoMyLists are the My Lists of the demo profiles, by index in
// seed.DemoProfiles, oldest first.
var demoMyLists = map[int][]demoTitle{
	0: {{"t-0005", catalog.RatingG}, {"t-0003", catalog.RatingTV14}, {"t-0002", catalog.RatingR}, {"t-0001", catalog.RatingPG13}},
	2: {{"t-0016", catalog.RatingG}, {"t-0012", catalog.RatingTVY}},
}

// demoAccounts returns the seed: the demo account's profiles
// (seed.DemoProfiles, with My Lists) and the admin's one profile, created
// at now, list items a minute apart before it.
func demoAccounts(now time.Time) (map[string][]domain.SeedProfile, error) {
	profile := func(id, accountID, name, maturity, language string) (domain.Profile, error) {
		f, err := domain.NewFields(name, maturity, language, "")
		if err != nil {
			return domain.Profile{}, fmt.Errorf("profiles: demo profile %s: %w", id, err)
		}
		return domain.Profile{ID: id, AccountID: accountID, Name: f.Name, Maturity: f.Maturity,
			Language: f.Language, CreatedAt: now, UpdatedAt: now}, nil
	}
	var demo []domain.SeedProfile
	var errs []error
	for i, dp := range seed.DemoProfiles {
		p, err := profile(dp.ID, seed.DemoAccountID, dp.Name, dp.Maturity, dp.Language)
		errs = append(errs, err)
		sp := domain.SeedProfile{Profile: p}
		titles := demoMyLists[i]
		for j, t := range titles {
			errs = append(errs, domain.CheckTitleAllowed(p.Maturity, t.rating))
			sp.MyList = append(sp.MyList, domain.Item{TitleID: t.id, Rating: t.rating,
				AddedAt: now.Add(-time.Duration(len(titles)-j) * time.Minute)})
		}
		demo = append(demo, sp)
	}
	admin, err := profile(AdminProfileID, seed.AdminAccountID, "Admin", "adult", "en")
	if err := errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	return map[string][]domain.SeedProfile{
		seed.DemoAccountID:  demo,
		seed.AdminAccountID: {{Profile: admin}},
	}, nil
}

// Seed creates the demo profiles (seed.DemoProfiles; the first and the
// kids profile with a few titles on their My List) for seed.DemoAccountID
// and one profile for seed.AdminAccountID, each account only if it never
// had a profile. It is
// safe to call on every start and from several instances at once, and
// publishes the same events as creating them by hand.
func (s *Service) Seed(ctx context.Context) error {
	accounts, err := demoAccounts(s.now().UTC())
	if err != nil {
		return err
	}
	for _, account := range []string{seed.DemoAccountID, seed.AdminAccountID} {
		seeded, err := s.store.SeedAccount(ctx, account, accounts[account])
		if err != nil {
			return fmt.Errorf("profiles: seed account %s: %w", account, err)
		}
		if seeded {
			s.log.InfoContext(ctx, "profiles seeded", "account", account, "profiles", len(accounts[account]))
		}
	}
	s.notify()
	return nil
}
