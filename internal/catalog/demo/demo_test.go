package demo_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/catalog/demo"
	"github.com/marquee-tv/marquee/internal/catalog/domain"
)

func TestTitlesAreDeterministic(t *testing.T) {
	if a, b := demo.Titles(), demo.Titles(); !reflect.DeepEqual(a, b) {
		t.Fatal("Titles() differs between two calls")
	}
}

func TestTitlesMeetTheProductContract(t *testing.T) {
	titles := demo.Titles()
	genres := map[string]bool{}
	for _, g := range demo.Genres() {
		if err := g.Validate(); err != nil {
			t.Errorf("genre %s: %v", g.ID, err)
		}
		genres[g.ID] = true
	}
	ids, names := map[string]bool{}, map[string]bool{}
	ratings := map[domain.Rating]bool{}
	used := map[string]bool{}
	assets := map[string]bool{}
	for _, a := range demo.MediaAssetIDs() {
		assets[a] = true
	}
	var series, withSeasons, rentable int
	for _, title := range titles {
		if err := title.Validate(); err != nil {
			t.Errorf("title %s: Validate() = %v", title.ID, err)
		}
		if ids[title.ID] || names[title.Name] {
			t.Errorf("title %s %q: id or name repeated", title.ID, title.Name)
		}
		ids[title.ID], names[title.Name] = true, true
		ratings[title.Rating] = true
		for _, g := range title.Genres {
			if !genres[g] {
				t.Errorf("title %s: unknown genre %q", title.ID, g)
			}
			used[g] = true
		}
		if title.Kind == domain.KindMovie && !assets[title.MediaAssetID] {
			t.Errorf("title %s: media asset %q not in MediaAssetIDs", title.ID, title.MediaAssetID)
		}
		if title.Kind == domain.KindSeries {
			series++
			if len(title.Seasons) > 0 && len(title.Seasons[0].Episodes) > 0 {
				withSeasons++
			}
			for _, s := range title.Seasons {
				for _, e := range s.Episodes {
					if !assets[e.MediaAssetID] {
						t.Errorf("episode %s: media asset %q not in MediaAssetIDs", e.ID, e.MediaAssetID)
					}
				}
			}
		}
		if title.Rentable {
			rentable++
		}
	}
	if len(titles) < 60 {
		t.Errorf("len(Titles()) = %d, want at least 60", len(titles))
	}
	if len(used) < 8 {
		t.Errorf("titles use %d genres, want at least 8", len(used))
	}
	for _, r := range domain.Ratings() {
		if !ratings[r] {
			t.Errorf("no title rated %s", r)
		}
	}
	if series == 0 || withSeasons != series {
		t.Errorf("%d series, %d with seasons and episodes; want some, all with episodes", series, withSeasons)
	}
	if rentable < 5 {
		t.Errorf("%d rentable titles, want at least 5", rentable)
	}
}

func TestWithdrawnTitle(t *testing.T) {
	now := time.Now()
	var found bool
	for _, title := range demo.Titles() {
		switch title.ID {
		case demo.WithdrawnTitleID:
			found = true
			if !title.Rentable || title.AvailableAt(now) || title.AvailableUntil.IsZero() || !title.AvailableUntil.Before(now) {
				t.Errorf("withdrawn title %s: rentable %v, window %v..%v; want rentable with an ended window",
					title.ID, title.Rentable, title.AvailableFrom, title.AvailableUntil)
			}
		case demo.ComingSoonTitleID:
			if title.AvailableAt(demo.ComingSoonAt.Add(-time.Second)) || !title.AvailableAt(demo.ComingSoonAt) {
				t.Errorf("coming-soon title %s: window %v..%v, want from %v", title.ID, title.AvailableFrom, title.AvailableUntil, demo.ComingSoonAt)
			}
		default:
			if !title.AvailableAt(demo.CatalogOpens) {
				t.Errorf("title %s: not available at %v", title.ID, demo.CatalogOpens)
			}
		}
	}
	if !found {
		t.Errorf("no title %s", demo.WithdrawnTitleID)
	}
}
