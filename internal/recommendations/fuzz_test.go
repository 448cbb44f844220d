package recommendations_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// FuzzDecodeViewing: any event data either decodes to an event with
// well-formed ids and non-negative numbers, or is refused as unusable.
func FuzzDecodeViewing(f *testing.F) {
	for _, s := range []string{
		`{"profile_id":"p","title_id":"t","position_seconds":12,"duration_seconds":"40"}`,
		`{"profileId":"p","titleId":"t","positionSeconds":1e308}`,
		`{"profile_id":"p","title_id":"t","position_seconds":"NaN"}`,
		`{"profile_id":null}`, `[]`, `"x"`, `{}`, ``,
	} {
		f.Add(recommendations.PlaybackProgressSubject, s)
	}
	f.Add(recommendations.PlaybackCompletedSubject, `{"profile_id":"p","title_id":"t","episode_id":"e"}`)
	f.Fuzz(func(t *testing.T, subject, data string) {
		v, err := recommendations.DecodeViewing(events.Event{Subject: subject, Data: []byte(data), Time: now})
		if err != nil {
			if !errors.Is(err, recommendations.ErrUnusableEvent) {
				t.Fatalf("DecodeViewing(%q) = %v, not ErrUnusableEvent", data, err)
			}
			return
		}
		if !catalogdomain.ValidID(v.ProfileID) || !catalogdomain.ValidID(v.TitleID) || v.Position < 0 || v.Duration < 0 {
			t.Fatalf("DecodeViewing(%q) = %+v", data, v)
		}
		switch v.Kind {
		case domain.Started, domain.Progress, domain.Completed:
		default:
			t.Fatalf("DecodeViewing(%q) kind %q", data, v.Kind)
		}
	})
}

// FuzzDecodeTitle: any title data decodes to a title with a well-formed id
// and genres without commas (the store joins them with commas), or is
// refused as unusable.
func FuzzDecodeTitle(f *testing.F) {
	for _, s := range []string{
		`{"id":"t-1","name":"N","genres":["a","b,c"," "],"maturity_rating":"PG","seasons":[{"number":1,"episodes":[{"id":"e","number":2}]}]}`,
		`{"id":"t","available_from":"2026-01-01T00:00:00Z","available_until":"bad"}`,
		`{"id":"t","year":1e10}`, `{}`, `null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		ti, err := recommendations.DecodeTitle(events.Event{Subject: recommendations.TitleUpsertedSubject, Data: []byte(data), Time: now})
		if err != nil {
			if !errors.Is(err, recommendations.ErrUnusableEvent) {
				t.Fatalf("DecodeTitle(%q) = %v, not ErrUnusableEvent", data, err)
			}
			return
		}
		if !catalogdomain.ValidID(ti.ID) {
			t.Fatalf("DecodeTitle(%q) id %q", data, ti.ID)
		}
		for _, g := range ti.Genres {
			if g == "" || containsComma(g) {
				t.Fatalf("DecodeTitle(%q) genre %q", data, g)
			}
		}
	})
}

func containsComma(s string) bool {
	for _, r := range s {
		if r == ',' {
			return true
		}
	}
	return false
}

// FuzzGetRecommendations: any request answers rows or a status error with
// a product reason, never a panic or an unexplained error.
func FuzzGetRecommendations(f *testing.F) {
	f.Add("p-adult", int32(0), int32(0), accountA)
	f.Add("p-kids", int32(20), int32(50), accountA)
	f.Add("p-adult", int32(-1), int32(99), accountB)
	f.Add("../p", int32(1), int32(1), "")
	db := storagetest.OpenSQLite(f, "recommendations", recommendations.Migrations)
	levels := map[string]string{"p-adult": "adult", "p-kids": "kids"}
	profiles := profilesFunc(func(ctx context.Context, id string) (catalogdomain.Level, error) {
		p, _ := principal.FromContext(ctx)
		if l, ok := levels[id]; ok && p.AccountID == accountA {
			return catalogdomain.Level(l), nil
		}
		return "", domain.ErrProfileNotFound
	})
	svc, err := recommendations.NewService(context.Background(), db, recommendations.Options{Version: domain.V2, Profiles: profiles})
	if err != nil {
		f.Fatal(err)
	}
	srv := svc.Server()
	f.Fuzz(func(t *testing.T, profile string, rows, titles int32, account string) {
		ctx := context.Background()
		if account != "" {
			ctx = metadataCtx(account)
		}
		resp, err := srv.GetRecommendations(ctx, &recommendationsv1.GetRecommendationsRequest{ProfileId: profile, MaxRows: rows, MaxTitlesPerRow: titles})
		if err != nil {
			st, ok := status.FromError(err)
			if !ok || st.Code() == codes.Internal || st.Code() == codes.Unknown {
				t.Fatalf("GetRecommendations(%q, %d, %d) = %v", profile, rows, titles, err)
			}
			return
		}
		if resp.GetVersion() != "v2" || resp.GetProfileId() != profile {
			t.Fatalf("GetRecommendations(%q) = %v", profile, resp)
		}
	})
}

// profilesFunc adapts a function to recommendations.Profiles.
type profilesFunc func(ctx context.Context, id string) (catalogdomain.Level, error)

func (f profilesFunc) MaturityLevel(ctx context.Context, id string) (catalogdomain.Level, error) {
	return f(ctx, id)
}

// metadataCtx is the incoming context of a call by account.
func metadataCtx(account string) context.Context {
	return metadata.NewIncomingContext(context.Background(), principal.Principal{AccountID: account}.MD())
}
