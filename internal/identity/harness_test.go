package identity_test

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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/identity"
	"github.com/marquee-tv/marquee/internal/identity/password"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/rpcerr"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// clock is the services' settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	c       identityv1.IdentityServiceClient
	svc     *identity.Service
	db      *storage.DB
	clock   *clock
	notices int
	mu      sync.Mutex
}

// serve starts the service on a real gRPC server on 127.0.0.1:0, with cheap
// password hashing and a test clock unless opts says otherwise.
func serve(t *testing.T, db *storage.DB, opts identity.Options) *harness {
	t.Helper()
	h := &harness{db: db, clock: &clock{t: t0}}
	if opts.Now == nil {
		opts.Now = h.clock.now
	}
	if opts.Password == (password.Params{}) {
		opts.Password = password.Cheap
	}
	opts.Notify = func() { h.mu.Lock(); h.notices++; h.mu.Unlock() }
	svc, err := identity.NewService(context.Background(), db, opts)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	h.svc = svc
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	h.c = identityv1.NewIdentityServiceClient(conn)
	return h
}

// as is a context calling as the principal the gateway would set.
func as(p principal.Principal) context.Context {
	return principal.NewOutgoingContext(context.Background(), p)
}

// from is a context of an anonymous call from client address addr.
func from(addr string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), principal.KeyClientAddr, addr)
}

// caller is the principal the gateway derives from an access token.
func caller(t *testing.T, h *harness, access string) principal.Principal {
	t.Helper()
	c := verify(t, h, access)
	return principal.Principal{AccountID: c.AccountID, Roles: c.Roles, SessionID: c.SessionID}
}

// verify checks an access token the way the gateway does: against the
// JWKS the service publishes, at the service's time.
func verify(t *testing.T, h *harness, access string) token.Claims {
	t.Helper()
	c, err := token.Verify(access, jwks(t, h), h.clock.now())
	if err != nil {
		t.Fatalf("access token does not verify against the published JWKS: %v", err)
	}
	return c
}

func jwks(t *testing.T, h *harness) *token.Keyset {
	t.Helper()
	resp, err := h.c.ListSigningKeys(context.Background(), &identityv1.ListSigningKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := token.KeysetFromProto(resp)
	if err != nil {
		t.Fatalf("published JWKS: %v", err)
	}
	return ks
}

// wantErr checks err has the code and reason, and for invalid arguments
// exactly the field violations fields.
func wantErr(t *testing.T, what string, err error, code codes.Code, reason string, fields ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if err == nil || st.Code() != code || rpcerr.Reason(err) != reason {
		t.Errorf("%s: error = %v (reason %q), want %v %s", what, err, rpcerr.Reason(err), code, reason)
		return st
	}
	if code == codes.InvalidArgument {
		var got []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					got = append(got, v.GetField())
				}
			}
		}
		if !slices.Equal(got, fields) {
			t.Errorf("%s: field violations = %v, want %v", what, got, fields)
		}
	}
	return st
}

// outbox returns the data of the events on subject in the outbox.
func outbox(t *testing.T, db *storage.DB, subject string) []map[string]any {
	t.Helper()
	rows, err := db.Query(context.Background(), "SELECT data FROM marquee_outbox WHERE subject = $1 ORDER BY seq", subject)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("event data %s: %v", data, err)
		}
		out = append(out, m)
	}
	return out
}

func signUp(t *testing.T, h *harness, email, pw string) *identityv1.SignUpResponse {
	t.Helper()
	resp, err := h.c.SignUp(context.Background(), &identityv1.SignUpRequest{Email: email, Password: pw, Name: "Test User"})
	if err != nil {
		t.Fatalf("SignUp(%s): %v", email, err)
	}
	return resp
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
