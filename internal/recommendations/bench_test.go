package recommendations_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// benchService is a service over a demo-sized projection: 60 titles in 8
// genres, 300 profiles with 10 views each.
func benchService(b *testing.B, version domain.Version) (*recommendations.Service, *storage.DB) {
	b.Helper()
	db := storagetest.OpenSQLite(b, "recommendations", recommendations.Migrations)
	levels := profilesFunc(func(context.Context, string) (catalogdomain.Level, error) { return catalogdomain.LevelTeen, nil })
	svc, err := recommendations.NewService(context.Background(), db, recommendations.Options{Version: version, Profiles: levels})
	if err != nil {
		b.Fatal(err)
	}
	ratings := []string{"G", "PG", "PG-13", "R", "TV-14", "TV-MA"}
	genres := []string{"action", "comedy", "drama", "family", "horror", "sci-fi", "thriller", "romance"}
	var evs []events.Event
	for i := range 60 {
		evs = append(evs, benchTitleEvent(b, fmt.Sprintf("t-%02d", i), ratings[i%len(ratings)], genres[i%len(genres)], genres[(i+3)%len(genres)]))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Now().UTC().Add(-48 * time.Hour)
	for p := range 300 {
		for range 10 {
			at = at.Add(time.Second)
			id := fmt.Sprintf("t-%02d", (p%8)*7%60+rng.IntN(12))
			ev, err := events.NewEvent(recommendations.PlaybackProgressSubject, "", map[string]any{"profile_id": fmt.Sprintf("p-%d", p), "title_id": id, "position_seconds": 100, "duration_seconds": 1000})
			if err != nil {
				b.Fatal(err)
			}
			ev.Time = at
			evs = append(evs, ev)
		}
	}
	ctx := context.Background()
	err = db.InTx(ctx, func(tx *storage.Tx) error {
		for _, ev := range evs {
			h := svc.HandleViewingEvent
			if ev.Subject == recommendations.TitleUpsertedSubject {
				h = svc.HandleCatalogEvent
			}
			if err := h(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return svc, db
}

func benchTitleEvent(b *testing.B, id, rating string, genres ...string) events.Event {
	ti := title(id, "Title "+id, rating, 2020, genres...)
	ti.AvailableFrom = nil
	ev, err := events.NewEvent(recommendations.TitleUpsertedSubject, id, ti)
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

func benchmarkGet(b *testing.B, version domain.Version) {
	svc, _ := benchService(b, version)
	srv := svc.Server()
	ctx := metadataCtx(accountA)
	for b.Loop() {
		resp, err := srv.GetRecommendations(ctx, &recommendationsv1.GetRecommendationsRequest{ProfileId: "p-7"})
		if err != nil || len(resp.GetRows()) == 0 {
			b.Fatalf("GetRecommendations = %v, %v", resp, err)
		}
	}
}

// BenchmarkGetRecommendationsV1 and V2 answer one profile in process, with
// the snapshot cached (as between reloads).
func BenchmarkGetRecommendationsV1(b *testing.B) { benchmarkGet(b, domain.V1) }

// BenchmarkGetRecommendationsV2 reads the profile's history and co-views
// from SQLite on every call.
func BenchmarkGetRecommendationsV2(b *testing.B) { benchmarkGet(b, domain.V2) }

// BenchmarkApplyViewing applies a first view of a profile with 10 views
// (10 co-view pairs each way), one transaction per event as the consumer
// runs it, on SQLite.
func BenchmarkApplyViewing(b *testing.B) {
	svc, db := benchService(b, domain.V2)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		ev, err := events.NewEvent(recommendations.PlaybackStartedSubject, "", map[string]any{"profile_id": fmt.Sprintf("p-%d", i%300), "title_id": fmt.Sprintf("new-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *storage.Tx) error { return svc.HandleViewingEvent(ctx, tx, ev) }); err != nil {
			b.Fatal(err)
		}
	}
}
