package profiles_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/catalog"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/profiles"
	profilesdomain "github.com/marquee-tv/marquee/internal/profiles/domain"
)

var _ catalog.Profiles = (*profiles.MaturityLookup)(nil)

// incoming returns a server-side context whose caller is account, as a
// service handling a forwarded call sees it.
func incoming(account string, roles ...string) context.Context {
	return metadata.NewIncomingContext(context.Background(), principal.Principal{AccountID: account, Roles: roles}.MD())
}

// countingConn counts the GetProfile calls made through it.
type countingConn struct {
	grpc.ClientConnInterface
	mu    sync.Mutex
	calls int
}

func (c *countingConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestMaturityLookup(t *testing.T) {
	h := newHarness(t)
	kids := h.create(t, alice, "Kids", "kids")
	teen := h.create(t, alice, "Sam", "teen")
	lookup := profiles.NewMaturityLookup(h.conn, profiles.WithCacheTTL(0))
	tests := []struct {
		what      string
		ctx       context.Context
		id        string
		want      string
		wantFound bool
	}{
		{"gateway-style caller", as(alice), kids.GetId(), "kids", true},
		{"forwarded caller", incoming(alice, principal.RoleViewer), teen.GetId(), "teen", true},
		{"admin of another account", as("acct-admin", principal.RoleAdmin), teen.GetId(), "teen", true},
		{"another account", as(bob), kids.GetId(), "", false},
		{"another account, forwarded", incoming(bob), kids.GetId(), "", false},
		{"missing profile", as(alice), "00000000-0000-4000-8000-000000000000", "", false},
		{"malformed id", as(alice), "../x", "", false},
	}
	for _, tt := range tests {
		got, err := lookup.ProfileMaturity(tt.ctx, tt.id)
		if tt.wantFound {
			if got != tt.want || err != nil {
				t.Errorf("%s: ProfileMaturity(%s) = %q, %v; want %q", tt.what, tt.id, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, catalogdomain.ErrNotFound) || !errors.Is(err, profilesdomain.ErrNotFound) || status.Code(err) != codes.NotFound {
			t.Errorf("%s: ProfileMaturity(%s) = %q, %v; want a NotFound error matching ErrNotFound", tt.what, tt.id, got, err)
		}
	}
	// No caller at all is not "not found": the lookup failed.
	if _, err := lookup.ProfileMaturity(context.Background(), kids.GetId()); err == nil || errors.Is(err, catalogdomain.ErrNotFound) || status.Code(err) != codes.Unauthenticated {
		t.Errorf("ProfileMaturity without a caller = %v, want Unauthenticated", err)
	}
}

func TestMaturityLookupCache(t *testing.T) {
	h := newHarness(t)
	p := h.create(t, alice, "Alex", "adult")
	conn := &countingConn{ClientConnInterface: h.conn}
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	lookup := profiles.NewMaturityLookup(conn, profiles.WithCacheTTL(3*time.Second), profiles.WithClock(clock))

	level := func(ctx context.Context) string {
		t.Helper()
		got, err := lookup.ProfileMaturity(ctx, p.GetId())
		if err != nil {
			t.Fatalf("ProfileMaturity: %v", err)
		}
		return got
	}
	if got := level(as(alice)); got != "adult" || conn.count() != 1 {
		t.Fatalf("first lookup = %q after %d calls, want adult after 1", got, conn.count())
	}
	if _, err := h.client.UpdateProfile(as(alice), &profilesv1.UpdateProfileRequest{Id: p.GetId(), MaturityLevel: proto.String("kids")}); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Second)
	if got := level(incoming(alice, principal.RoleViewer)); got != "adult" || conn.count() != 1 {
		t.Errorf("lookup within the TTL = %q after %d calls, want the cached adult after 1", got, conn.count())
	}
	// Another caller does not get Alice's cached answer.
	if _, err := lookup.ProfileMaturity(as(bob), p.GetId()); !errors.Is(err, catalogdomain.ErrNotFound) || conn.count() != 2 {
		t.Errorf("lookup by bob = %v after %d calls, want not found after 2", err, conn.count())
	}
	// Not-found answers are not cached.
	if _, err := lookup.ProfileMaturity(as(bob), p.GetId()); !errors.Is(err, catalogdomain.ErrNotFound) || conn.count() != 3 {
		t.Errorf("second lookup by bob = %v after %d calls, want not found after 3", err, conn.count())
	}
	advance(time.Second)
	if got := level(as(alice)); got != "kids" || conn.count() != 4 {
		t.Errorf("lookup after the TTL = %q after %d calls, want kids after 4", got, conn.count())
	}
}

// TestCatalogUsesTheLookup runs the real catalog service with the lookup
// over the real profiles service: a kids profile cannot open an R title,
// and another account's profile is refused.
func TestCatalogUsesTheLookup(t *testing.T) {
	h := newHarness(t)
	kids := h.create(t, alice, "Kids", "kids")
	ctx := context.Background()
	db := storagetest.OpenSQLite(t, "catalog", catalog.Migrations)
	svc, err := catalog.NewService(ctx, db, catalog.Options{Profiles: profiles.NewMaturityLookup(h.conn)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	client := catalogv1.NewCatalogServiceClient(serveGRPC(t, svc.Register))
	// t-0005 is rated G, t-0002 R in the catalog demo.
	if _, err := client.GetTitle(as(alice), &catalogv1.GetTitleRequest{Id: "t-0005", ProfileId: kids.GetId()}); err != nil {
		t.Errorf("GetTitle(G title, kids profile) = %v", err)
	}
	_, err = client.GetTitle(as(alice), &catalogv1.GetTitleRequest{Id: "t-0002", ProfileId: kids.GetId()})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("GetTitle(R title, kids profile) = %v, want PermissionDenied", err)
	}
	_, err = client.GetTitle(as(bob), &catalogv1.GetTitleRequest{Id: "t-0005", ProfileId: kids.GetId()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetTitle with another account's profile = %v, want InvalidArgument (no such profile)", err)
	}
}
