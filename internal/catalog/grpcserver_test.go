package catalog_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	"github.com/marquee-tv/marquee/internal/catalog"
	"github.com/marquee-tv/marquee/internal/catalog/demo"
	"github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// now is the test clock: after the withdrawn title's window ended and
// before the coming-soon title's opens.
var now = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// profiles is a hand-written fake of the profiles service.
var profiles = catalog.ProfileMaturityFunc(func(ctx context.Context, id string) (string, error) {
	switch id {
	case "p-kids":
		return "kids", nil
	case "p-teen":
		return "teen", nil
	case "p-adult":
		return "adult", nil
	case "p-down":
		return "", errors.New("connection refused")
	}
	return "", fmt.Errorf("profile %s: %w", id, domain.ErrNotFound)
})

// serve starts the service on a real gRPC server on 127.0.0.1:0 and returns
// a client to it.
func serve(t *testing.T, db *storage.DB, opts catalog.Options) catalogv1.CatalogServiceClient {
	t.Helper()
	ctx := context.Background()
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	svc, err := catalog.NewService(ctx, db, opts)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	if err := svc.Seed(ctx); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.GracefulStop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return catalogv1.NewCatalogServiceClient(conn)
}

// wantStatus checks err is a status with code, an ErrorInfo with reason
// in the catalog domain, and (for invalid arguments) exactly the field
// violations fields.
func wantStatus(t *testing.T, what string, err error, code codes.Code, reason string, fields ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Errorf("%s: error = %v, want code %v", what, err, code)
		return
	}
	var info *errdetails.ErrorInfo
	var gotFields []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				gotFields = append(gotFields, v.GetField())
				if v.GetDescription() == "" {
					t.Errorf("%s: field violation %s has no description", what, v.GetField())
				}
			}
		}
	}
	if info == nil || info.GetReason() != reason || info.GetDomain() != catalog.ErrorDomain {
		t.Errorf("%s: ErrorInfo = %v, want reason %s in domain %s", what, info, reason, catalog.ErrorDomain)
	}
	if code == codes.InvalidArgument && !slices.Equal(gotFields, fields) {
		t.Errorf("%s: field violations = %q, want %q", what, gotFields, fields)
	}
}

func TestServer(t *testing.T) {
	storagetest.ForEach(t, "catalog", catalog.Migrations, func(t *testing.T, db *storage.DB) {
		client := serve(t, db, catalog.Options{Profiles: profiles})
		titles := demo.Titles()
		t.Run("Browse", func(t *testing.T) { testBrowse(t, client, titles) })
		t.Run("Validation", func(t *testing.T) { testValidation(t, client) })
		t.Run("NotFound", func(t *testing.T) { testNotFound(t, client) })
		t.Run("Maturity", func(t *testing.T) { testMaturity(t, client, titles) })
		t.Run("Search", func(t *testing.T) { testSearch(t, client, titles) })
		t.Run("GetTitle", func(t *testing.T) { testGetTitle(t, client) })
		t.Run("BatchGet", func(t *testing.T) { testBatchGet(t, client) })
		t.Run("Genres", func(t *testing.T) { testGenres(t, client, titles) })
		t.Run("Artwork", func(t *testing.T) { testArtwork(t, client) })
	})
}

func listAll(t *testing.T, c catalogv1.CatalogServiceClient, req *catalogv1.ListTitlesRequest) []*catalogv1.Title {
	t.Helper()
	var all []*catalogv1.Title
	for range 200 {
		resp, err := c.ListTitles(context.Background(), req)
		if err != nil {
			t.Fatalf("ListTitles(%v): %v", req, err)
		}
		all = append(all, resp.GetTitles()...)
		if resp.GetNextPageToken() == "" {
			return all
		}
		req.PageToken = resp.GetNextPageToken()
	}
	t.Fatal("paging does not end")
	return nil
}

func titleIDs(ts []*catalogv1.Title) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.GetId())
	}
	return out
}

func testBrowse(t *testing.T, c catalogv1.CatalogServiceClient, titles []domain.Title) {
	ctx := context.Background()
	first, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{})
	if err != nil {
		t.Fatalf("ListTitles: %v", err)
	}
	if len(first.GetTitles()) != 20 || first.GetNextPageToken() == "" {
		t.Errorf("first page: %d titles, token %q; want 20 and a token", len(first.GetTitles()), first.GetNextPageToken())
	}
	big, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{PageSize: 1000})
	if err != nil || len(big.GetTitles()) != len(titles) || big.GetNextPageToken() != "" {
		t.Errorf("ListTitles(page_size 1000) = %d titles, %v; want all %d (page_size reduced to 100)", len(big.GetTitles()), err, len(titles))
	}
	all := listAll(t, c, &catalogv1.ListTitlesRequest{PageSize: 50})
	if len(all) != len(titles) {
		t.Fatalf("browsing lists %d titles, want %d", len(all), len(titles))
	}
	for _, title := range all {
		if len(title.GetSeasons()) != 0 {
			t.Errorf("listed %s carries seasons", title.GetId())
		}
		if want := "/api/v1/titles/" + title.GetId() + "/artwork"; title.GetArtworkUrl() != want {
			t.Errorf("%s artwork_url = %q, want %q", title.GetId(), title.GetArtworkUrl(), want)
		}
		wantAvailable := title.GetId() != demo.WithdrawnTitleID && title.GetId() != demo.ComingSoonTitleID
		if title.GetAvailable() != wantAvailable {
			t.Errorf("%s available = %v, want %v", title.GetId(), title.GetAvailable(), wantAvailable)
		}
	}
	series := listAll(t, c, &catalogv1.ListTitlesRequest{Kind: "series", Genre: "drama"})
	for _, title := range series {
		if title.GetKind() != "series" || !slices.Contains(title.GetGenres(), "drama") {
			t.Errorf("series/drama lists %s (%s %v)", title.GetId(), title.GetKind(), title.GetGenres())
		}
	}
	if len(series) == 0 {
		t.Error("no drama series listed")
	}
}

func testValidation(t *testing.T, c catalogv1.CatalogServiceClient) {
	ctx := context.Background()
	comedy, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Genre: "comedy", PageSize: 1})
	if err != nil || comedy.GetNextPageToken() == "" {
		t.Fatalf("ListTitles(comedy) = %v; want a next page", err)
	}
	tampered := []byte(comedy.GetNextPageToken())
	tampered[len(tampered)/2] ^= 1
	ids := make([]string, catalog.MaxBatchIDs+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("t-%04d", i)
	}
	tests := []struct {
		name   string
		call   func() error
		fields []string
	}{
		{"negative page_size", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{PageSize: -1})
			return err
		}, []string{"page_size"}},
		{"garbage page_token", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{PageToken: "bad token"})
			return err
		}, []string{"page_token"}},
		{"tampered page_token", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Genre: "comedy", PageToken: string(tampered)})
			return err
		}, []string{"page_token"}},
		{"page_token of another genre", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Genre: "drama", PageToken: comedy.GetNextPageToken()})
			return err
		}, []string{"page_token"}},
		{"browse page_token used for search", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Genre: "comedy", Q: "harbor", PageToken: comedy.GetNextPageToken()})
			return err
		}, []string{"page_token"}},
		{"bad genre", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Genre: "Sci Fi"})
			return err
		}, []string{"genre"}},
		{"bad kind", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Kind: "film"})
			return err
		}, []string{"kind"}},
		{"bad maturity_level", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{MaturityLevel: "toddler"})
			return err
		}, []string{"maturity_level"}},
		{"long q", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Q: strings.Repeat("harbor ", 40)})
			return err
		}, []string{"q"}},
		{"q without words", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{Q: "!!! ***"})
			return err
		}, []string{"q"}},
		{"bad profile_id", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{ProfileId: "p/../1"})
			return err
		}, []string{"profile_id"}},
		{"unknown profile_id", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{ProfileId: "p-nobody"})
			return err
		}, []string{"profile_id"}},
		{"several at once", func() error {
			_, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{PageSize: -5, Kind: "film", Genre: "-"})
			return err
		}, []string{"genre", "kind", "page_size"}},
		{"GetTitle without id", func() error {
			_, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{})
			return err
		}, []string{"id"}},
		{"GetTitle bad id", func() error {
			_, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: "../etc/passwd"})
			return err
		}, []string{"id"}},
		{"GetTitle bad id and level", func() error {
			_, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: "a b", MaturityLevel: "KIDS"})
			return err
		}, []string{"id", "maturity_level"}},
		{"BatchGet too many", func() error {
			_, err := c.BatchGetTitles(ctx, &catalogv1.BatchGetTitlesRequest{Ids: ids})
			return err
		}, []string{"ids"}},
		{"BatchGet bad id", func() error {
			_, err := c.BatchGetTitles(ctx, &catalogv1.BatchGetTitlesRequest{Ids: []string{"t-0001", "", "t 3"}})
			return err
		}, []string{"ids[1]", "ids[2]"}},
		{"SearchTitles without q", func() error {
			_, err := c.SearchTitles(ctx, &catalogv1.SearchTitlesRequest{})
			return err
		}, []string{"q"}},
		{"SearchTitles negative page_size", func() error {
			_, err := c.SearchTitles(ctx, &catalogv1.SearchTitlesRequest{Q: "harbor", PageSize: -1})
			return err
		}, []string{"page_size"}},
		{"GetArtwork without id", func() error {
			_, err := c.GetArtwork(ctx, &catalogv1.GetArtworkRequest{})
			return err
		}, []string{"id"}},
	}
	for _, tt := range tests {
		wantStatus(t, tt.name, tt.call(), codes.InvalidArgument, catalog.ReasonInvalidArgument, tt.fields...)
	}
}

func testNotFound(t *testing.T, c catalogv1.CatalogServiceClient) {
	ctx := context.Background()
	_, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: "t-9999"})
	wantStatus(t, "GetTitle(t-9999)", err, codes.NotFound, catalog.ReasonNotFound)
	_, err = c.GetArtwork(ctx, &catalogv1.GetArtworkRequest{Id: "t-9999"})
	wantStatus(t, "GetArtwork(t-9999)", err, codes.NotFound, catalog.ReasonNotFound)
}

func testMaturity(t *testing.T, c catalogv1.CatalogServiceClient, titles []domain.Title) {
	ctx := context.Background()
	for _, level := range []domain.Level{domain.LevelKids, domain.LevelTeen} {
		var want []string
		for _, title := range titles {
			if domain.Allows(level, title.Rating) {
				want = append(want, title.ID)
			}
		}
		slices.Sort(want)
		for _, req := range []*catalogv1.ListTitlesRequest{
			{MaturityLevel: string(level)},
			{ProfileId: "p-" + string(level)},
			{ProfileId: "p-" + string(level), MaturityLevel: "adult"}, // cannot widen a profile
		} {
			got := titleIDs(listAll(t, c, req))
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("ListTitles(%v) = %q, want %q", req, got, want)
			}
		}
	}
	got := listAll(t, c, &catalogv1.ListTitlesRequest{ProfileId: "p-adult", MaturityLevel: "kids"})
	for _, title := range got {
		if !domain.Allows(domain.LevelKids, domain.Rating(title.GetMaturityRating())) {
			t.Errorf("adult profile with maturity_level kids lists %s rated %s", title.GetId(), title.GetMaturityRating())
		}
	}
	var restricted string
	for _, title := range titles {
		if title.Rating == domain.RatingR {
			restricted = title.ID
			break
		}
	}
	_, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: restricted, ProfileId: "p-kids"})
	wantStatus(t, "GetTitle(R-rated, kids profile)", err, codes.PermissionDenied, catalog.ReasonMaturityRestricted)
	if _, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: restricted, MaturityLevel: "adult"}); err != nil {
		t.Errorf("GetTitle(R-rated, adult) = %v, want ok", err)
	}
	_, err = c.ListTitles(ctx, &catalogv1.ListTitlesRequest{ProfileId: "p-down"})
	wantStatus(t, "ListTitles(profile lookup failing)", err, codes.Unavailable, catalog.ReasonUnavailable)
}

func testSearch(t *testing.T, c catalogv1.CatalogServiceClient, titles []domain.Title) {
	ctx := context.Background()
	target := titles[4] // a movie rated G
	word := strings.Fields(target.Name)[len(strings.Fields(target.Name))-1]
	resp, err := c.SearchTitles(ctx, &catalogv1.SearchTitlesRequest{Q: strings.ToLower(word), PageSize: 100})
	if err != nil {
		t.Fatalf("SearchTitles(%q): %v", word, err)
	}
	if !slices.Contains(titleIDs(resp.GetTitles()), target.ID) {
		t.Errorf("SearchTitles(%q) = %q, want it to find %s %q", word, titleIDs(resp.GetTitles()), target.ID, target.Name)
	}
	exact, err := c.SearchTitles(ctx, &catalogv1.SearchTitlesRequest{Q: target.Name})
	if err != nil || len(exact.GetTitles()) == 0 || exact.GetTitles()[0].GetId() != target.ID {
		t.Errorf("SearchTitles(%q) = %q, %v; want %s first", target.Name, titleIDs(exact.GetTitles()), err, target.ID)
	}
	// ListTitles with q searches, with the same order and paging.
	viaList := titleIDs(listAll(t, c, &catalogv1.ListTitlesRequest{Q: "they", PageSize: 7}))
	var viaSearch []string
	req := &catalogv1.SearchTitlesRequest{Q: "they", PageSize: 30}
	for {
		resp, err := c.SearchTitles(ctx, req)
		if err != nil {
			t.Fatalf("SearchTitles: %v", err)
		}
		viaSearch = append(viaSearch, titleIDs(resp.GetTitles())...)
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	if len(viaList) < 20 || !slices.Equal(viaList, viaSearch) {
		t.Errorf("ListTitles(q) = %q,\nSearchTitles = %q; want the same, many", viaList, viaSearch)
	}
	kids, err := c.SearchTitles(ctx, &catalogv1.SearchTitlesRequest{Q: "they", ProfileId: "p-kids", PageSize: 100})
	if err != nil {
		t.Fatalf("SearchTitles(kids): %v", err)
	}
	for _, title := range kids.GetTitles() {
		if !domain.Allows(domain.LevelKids, domain.Rating(title.GetMaturityRating())) {
			t.Errorf("kids search finds %s rated %s", title.GetId(), title.GetMaturityRating())
		}
	}
	if len(kids.GetTitles()) == 0 || len(kids.GetTitles()) >= len(viaSearch) {
		t.Errorf("kids search finds %d of %d titles, want fewer but some", len(kids.GetTitles()), len(viaSearch))
	}
}

func testGetTitle(t *testing.T, c catalogv1.CatalogServiceClient) {
	ctx := context.Background()
	resp, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: "t-0003"})
	if err != nil {
		t.Fatalf("GetTitle(t-0003): %v", err)
	}
	s := resp.GetTitle()
	if s.GetKind() != "series" || len(s.GetSeasons()) == 0 || len(s.GetSeasons()[0].GetEpisodes()) == 0 {
		t.Fatalf("GetTitle(t-0003) = %v, want a series with seasons and episodes", s)
	}
	for _, se := range s.GetSeasons() {
		for _, e := range se.GetEpisodes() {
			if e.GetId() == "" || e.GetMediaAssetId() == "" || e.GetDurationSeconds() <= 0 {
				t.Errorf("episode %v lacks an id, media asset or duration", e)
			}
		}
	}
	w, err := c.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: catalog.WithdrawnTitleID})
	if err != nil {
		t.Fatalf("GetTitle(%s): %v", catalog.WithdrawnTitleID, err)
	}
	wt := w.GetTitle()
	if !wt.GetRentable() || wt.GetAvailable() || wt.GetAvailableUntil() == nil || !wt.GetAvailableUntil().AsTime().Before(now) ||
		wt.GetMediaAssetId() == "" || wt.GetKind() != "movie" || wt.GetDurationSeconds() <= 0 {
		t.Errorf("GetTitle(%s) = %v, want a rentable movie whose window has ended", catalog.WithdrawnTitleID, wt)
	}
}

func testBatchGet(t *testing.T, c catalogv1.CatalogServiceClient) {
	ctx := context.Background()
	resp, err := c.BatchGetTitles(ctx, &catalogv1.BatchGetTitlesRequest{Ids: []string{"t-0005", "t-9999", "t-0002", "t-0001"}})
	if err != nil {
		t.Fatalf("BatchGetTitles: %v", err)
	}
	if got, want := titleIDs(resp.GetTitles()), []string{"t-0005", "t-0002", "t-0001"}; !slices.Equal(got, want) {
		t.Errorf("BatchGetTitles = %q, want %q", got, want)
	}
	// t-0002 is rated R and t-0001 PG-13: a kids batch keeps t-0005 (G) only.
	resp, err = c.BatchGetTitles(ctx, &catalogv1.BatchGetTitlesRequest{Ids: []string{"t-0005", "t-0002", "t-0001"}, MaturityLevel: "kids"})
	if err != nil {
		t.Fatalf("BatchGetTitles(kids): %v", err)
	}
	if got, want := titleIDs(resp.GetTitles()), []string{"t-0005"}; !slices.Equal(got, want) {
		t.Errorf("BatchGetTitles(kids) = %q, want %q", got, want)
	}
	if resp, err := c.BatchGetTitles(ctx, &catalogv1.BatchGetTitlesRequest{}); err != nil || len(resp.GetTitles()) != 0 {
		t.Errorf("BatchGetTitles(no ids) = %v, %v; want empty", resp, err)
	}
}

func testGenres(t *testing.T, c catalogv1.CatalogServiceClient, titles []domain.Title) {
	resp, err := c.ListGenres(context.Background(), &catalogv1.ListGenresRequest{})
	if err != nil {
		t.Fatalf("ListGenres: %v", err)
	}
	want := map[string]int32{}
	for _, title := range titles {
		for _, g := range title.Genres {
			want[g]++
		}
	}
	if len(resp.GetGenres()) != len(demo.Genres()) {
		t.Errorf("ListGenres = %d genres, want %d", len(resp.GetGenres()), len(demo.Genres()))
	}
	for _, g := range resp.GetGenres() {
		if g.GetTitleCount() != want[g.GetId()] || g.GetName() == "" {
			t.Errorf("genre %v, want count %d and a name", g, want[g.GetId()])
		}
	}
}

func testArtwork(t *testing.T, c catalogv1.CatalogServiceClient) {
	resp, err := c.GetArtwork(context.Background(), &catalogv1.GetArtworkRequest{Id: "t-0013"})
	if err != nil {
		t.Fatalf("GetArtwork: %v", err)
	}
	if resp.GetContentType() != "image/svg+xml" {
		t.Errorf("content type = %q, want image/svg+xml", resp.GetContentType())
	}
	dec := xml.NewDecoder(bytes.NewReader(resp.GetData()))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("artwork is not well-formed XML: %v", err)
		}
	}
	if !bytes.Contains(resp.GetData(), []byte("<svg")) {
		t.Error("artwork has no <svg> element")
	}
}

func TestProfileIDWithoutLookup(t *testing.T) {
	client := serve(t, storagetest.OpenSQLite(t, "catalog", catalog.Migrations), catalog.Options{})
	_, err := client.ListTitles(context.Background(), &catalogv1.ListTitlesRequest{ProfileId: "p-kids"})
	wantStatus(t, "ListTitles(profile_id) without a profile lookup", err, codes.InvalidArgument, catalog.ReasonInvalidArgument, "profile_id")
	st, _ := status.FromError(err)
	if !strings.Contains(st.Message(), "profile lookup not available") {
		t.Errorf("message = %q, want it to say profile lookup is not available", st.Message())
	}
}

func TestInternalErrorsAreNotShown(t *testing.T) {
	db := storagetest.OpenSQLite(t, "catalog", catalog.Migrations)
	client := serve(t, db, catalog.Options{})
	db.Close() // every query now fails
	_, err := client.ListTitles(context.Background(), &catalogv1.ListTitlesRequest{})
	wantStatus(t, "ListTitles on a closed database", err, codes.Internal, catalog.ReasonInternal)
	if st, _ := status.FromError(err); st.Message() != "internal error" {
		t.Errorf("message = %q, want %q", st.Message(), "internal error")
	}
}

func TestNewServiceRefusesAnUnmigratedDatabase(t *testing.T) {
	db := storagetest.OpenSQLite(t, "catalog", storage.Migrations{})
	if _, err := catalog.NewService(context.Background(), db, catalog.Options{}); err == nil {
		t.Error("NewService over a database without the catalog schema = nil error, want one")
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "catalog", catalog.Migrations)
	var events int
	svc, err := catalog.NewService(ctx, db, catalog.Options{OnTitleSaved: func(context.Context, *storage.Tx, domain.Title) error {
		events++
		return nil
	}})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	for range 2 {
		if err := svc.Seed(ctx); err != nil {
			t.Fatalf("Seed: %v", err)
		}
	}
	if events != len(demo.Titles()) {
		t.Errorf("seeding twice saved %d titles, want %d", events, len(demo.Titles()))
	}
}
