package profiles

import (
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/demo"
	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/seed"
)

// TestDemoMyListsAreCatalogDemoTitles checks the titles seeded without
// asking the catalog: each is a catalog demo title, with the rating the
// catalog gives it, allowed to its profile.
func TestDemoMyListsAreCatalogDemoTitles(t *testing.T) {
	ratings := map[string]catalog.Rating{}
	for _, title := range demo.Titles() {
		ratings[title.ID] = title.Rating
	}
	accounts, err := demoAccounts(time.Now())
	if err != nil {
		t.Fatalf("demoAccounts: %v", err)
	}
	items := 0
	for i, sp := range accounts[seed.DemoAccountID] {
		if sp.Profile.ID != seed.DemoProfiles[i].ID || string(sp.Profile.Maturity) != seed.DemoProfiles[i].Maturity {
			t.Errorf("demo profile %d = %+v, want %+v", i, sp.Profile, seed.DemoProfiles[i])
		}
		for _, it := range sp.MyList {
			items++
			want, ok := ratings[it.TitleID]
			if !ok || want != it.Rating {
				t.Errorf("seeded title %s rated %s; the catalog demo has %q (exists %v)", it.TitleID, it.Rating, want, ok)
			}
			if !catalog.Allows(sp.Profile.Maturity, it.Rating) {
				t.Errorf("seeded title %s (%s) is above profile %s (%s)", it.TitleID, it.Rating, sp.Profile.Name, sp.Profile.Maturity)
			}
		}
	}
	if len(accounts[seed.DemoAccountID][0].MyList) == 0 || items == 0 {
		t.Error("the first demo profile has an empty My List")
	}
}
