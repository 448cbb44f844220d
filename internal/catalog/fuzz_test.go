package catalog_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	"github.com/marquee-tv/marquee/internal/catalog"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// FuzzListTitles sends arbitrary requests to the handler: each is answered
// with titles or with InvalidArgument, never a panic or another code.
func FuzzListTitles(f *testing.F) {
	f.Add("", "", "", "", "", int32(0), "")
	f.Add("harbor", "comedy", "movie", "kids", "p-kids", int32(5), "")
	f.Add("\"a\" OR b*", "sci-fi", "series", "adult", "", int32(-1), "AQ")
	f.Add("x:* & !y", "-", "film", "KIDS", "p/1", int32(1000), "bm90IGEgdG9rZW4")
	ctx := context.Background()
	db := storagetest.OpenSQLite(f, "catalog", catalog.Migrations)
	svc, err := catalog.NewService(ctx, db, catalog.Options{Profiles: profiles})
	if err != nil {
		f.Fatalf("NewService: %v", err)
	}
	if err := svc.Seed(ctx); err != nil {
		f.Fatalf("Seed: %v", err)
	}
	srv := svc.Server()
	f.Fuzz(func(t *testing.T, q, genre, kind, level, profile string, size int32, token string) {
		resp, err := srv.ListTitles(ctx, &catalogv1.ListTitlesRequest{
			Q: q, Genre: genre, Kind: kind, MaturityLevel: level, ProfileId: profile, PageSize: size, PageToken: token,
		})
		if err != nil {
			if code := status.Code(err); code != codes.InvalidArgument {
				t.Fatalf("ListTitles(q=%q genre=%q kind=%q level=%q profile=%q size=%d token=%q) = %v, want ok or InvalidArgument",
					q, genre, kind, level, profile, size, token, err)
			}
			return
		}
		if len(resp.GetTitles()) > 100 {
			t.Fatalf("ListTitles returned %d titles, more than 100", len(resp.GetTitles()))
		}
		if resp.GetNextPageToken() != "" {
			// The token it hands out is accepted for the same query.
			_, err := srv.ListTitles(ctx, &catalogv1.ListTitlesRequest{
				Q: q, Genre: genre, Kind: kind, MaturityLevel: level, ProfileId: profile, PageSize: size, PageToken: resp.GetNextPageToken(),
			})
			if err != nil {
				t.Fatalf("next page of q=%q genre=%q kind=%q: %v", q, genre, kind, err)
			}
		}
	})
}

// FuzzGetTitle sends arbitrary ids: each is answered with a title,
// InvalidArgument, NotFound or PermissionDenied.
func FuzzGetTitle(f *testing.F) {
	f.Add("t-0001", "")
	f.Add("../../etc/passwd", "kids")
	f.Add("", "adult")
	ctx := context.Background()
	db := storagetest.OpenSQLite(f, "catalog", catalog.Migrations)
	svc, err := catalog.NewService(ctx, db, catalog.Options{})
	if err != nil {
		f.Fatalf("NewService: %v", err)
	}
	if err := svc.Seed(ctx); err != nil {
		f.Fatalf("Seed: %v", err)
	}
	srv := svc.Server()
	f.Fuzz(func(t *testing.T, id, level string) {
		_, err := srv.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: id, MaturityLevel: level})
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.NotFound, codes.PermissionDenied:
		default:
			t.Fatalf("GetTitle(%q, %q) = %v", id, level, err)
		}
		_, err = srv.GetArtwork(ctx, &catalogv1.GetArtworkRequest{Id: id})
		switch status.Code(err) {
		case codes.OK, codes.InvalidArgument, codes.NotFound:
		default:
			t.Fatalf("GetArtwork(%q) = %v", id, err)
		}
	})
}
