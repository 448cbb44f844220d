package profiles_test

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/profiles"
)

// fakeCatalog is a hand-written catalog server: GetTitle answers the
// titles in ratings, NotFound for others, and Unavailable while down.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	mu      sync.Mutex
	ratings map[string]string
	down    bool
	calls   []string // ids asked for
	callers []string // account id in the metadata of each call
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{ratings: map[string]string{
		"t-g": "G", "t-pg": "PG", "t-tvy": "TV-Y", "t-pg13": "PG-13", "t-14": "TV-14", "t-r": "R", "t-ma": "TV-MA",
	}}
}

func (c *fakeCatalog) GetTitle(ctx context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, req.GetId())
	caller, _ := principal.FromContext(ctx)
	c.callers = append(c.callers, caller.AccountID)
	if c.down {
		return nil, status.Error(codes.Unavailable, "catalog is down")
	}
	if req.GetProfileId() != "" || req.GetMaturityLevel() != "" {
		return nil, status.Error(codes.InvalidArgument, "the fake expects no maturity filter")
	}
	r, ok := c.ratings[req.GetId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such title")
	}
	return &catalogv1.GetTitleResponse{Title: &catalogv1.Title{Id: req.GetId(), Name: "Title " + req.GetId(), MaturityRating: r}}, nil
}

func (c *fakeCatalog) setDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

func (c *fakeCatalog) takeCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// serveGRPC serves register on 127.0.0.1:0 until the test ends and returns
// a connection to it.
func serveGRPC(t testing.TB, register func(grpc.ServiceRegistrar)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	gs := grpc.NewServer()
	register(gs)
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
	return conn
}

// harness is the profiles service on a real gRPC server, with a fake
// catalog on another.
type harness struct {
	db      *storage.DB
	svc     *profiles.Service
	client  profilesv1.ProfilesServiceClient
	conn    *grpc.ClientConn
	catalog *fakeCatalog
	now     time.Time
	mu      sync.Mutex
	lastSeq int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	db := storagetest.OpenSQLite(t, "profiles", profiles.Migrations)
	h := &harness{db: db, catalog: newFakeCatalog(), now: time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)}
	catalogConn := serveGRPC(t, func(r grpc.ServiceRegistrar) { catalogv1.RegisterCatalogServiceServer(r, h.catalog) })
	svc, err := profiles.NewService(context.Background(), db, profiles.Options{
		Catalog: catalogv1.NewCatalogServiceClient(catalogConn),
		Now:     h.clock,
	})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	h.svc = svc
	h.conn = serveGRPC(t, svc.Register)
	h.client = profilesv1.NewProfilesServiceClient(h.conn)
	return h
}

// clock advances a second on every reading, so times are distinct.
func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = h.now.Add(time.Second)
	return h.now
}

// as returns a client context carrying account as the caller, as the
// gateway sends it.
func as(account string, roles ...string) context.Context {
	if len(roles) == 0 {
		roles = []string{principal.RoleViewer}
	}
	return principal.NewOutgoingContext(context.Background(), principal.Principal{AccountID: account, Roles: roles})
}

// event is an outbox row as a consumer sees it.
type event struct {
	Subject string
	Entity  string
	Data    profiles.EventData
}

// events returns the outbox rows written since the last call.
func (h *harness) events(t *testing.T) []event {
	t.Helper()
	rows, err := h.db.Query(context.Background(), "SELECT seq, subject, ce_subject, data FROM marquee_outbox WHERE seq > $1 ORDER BY seq", h.lastSeq)
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var data []byte
		if err := rows.Scan(&h.lastSeq, &e.Subject, &e.Entity, &data); err != nil {
			t.Fatalf("read outbox: %v", err)
		}
		if err := json.Unmarshal(data, &e.Data); err != nil {
			t.Fatalf("outbox data %s: %v", data, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

func subjectsOf(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Subject
	}
	return out
}

// wantStatus checks err is a status with code, an ErrorInfo with reason,
// and (for invalid arguments) exactly the field violations fields.
func wantStatus(t *testing.T, what string, err error, code codes.Code, reason string, fields ...string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Errorf("%s: error = %v, want code %v", what, err, code)
		return
	}
	if got := rpcerr.Reason(err); got != reason {
		t.Errorf("%s: reason = %q, want %q (%v)", what, got, reason, err)
	}
	if code != codes.InvalidArgument {
		return
	}
	var got []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				got = append(got, v.GetField())
				if v.GetDescription() == "" {
					t.Errorf("%s: field violation %s has no description", what, v.GetField())
				}
			}
		}
	}
	if !slices.Equal(got, fields) {
		t.Errorf("%s: field violations = %q, want %q", what, got, fields)
	}
}

func (h *harness) create(t testing.TB, account, name, maturity string) *profilesv1.Profile {
	t.Helper()
	resp, err := h.client.CreateProfile(as(account), &profilesv1.CreateProfileRequest{Name: name, MaturityLevel: maturity})
	if err != nil {
		t.Fatalf("CreateProfile(%s, %q): %v", account, name, err)
	}
	return resp.GetProfile()
}

func (h *harness) myList(t *testing.T, account, profileID string) []string {
	t.Helper()
	resp, err := h.client.ListMyList(as(account), &profilesv1.ListMyListRequest{ProfileId: profileID})
	if err != nil {
		t.Fatalf("ListMyList(%s): %v", profileID, err)
	}
	var out []string
	for _, it := range resp.GetItems() {
		out = append(out, it.GetTitleId())
	}
	return out
}
