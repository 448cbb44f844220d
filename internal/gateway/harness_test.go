package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/gateway/routes"
	"github.com/marquee-tv/marquee/internal/platform/peers"
)

// The platform's dialer is what the program passes to New.
var _ Dialer = (*peers.Dialer)(nil)

func TestMain(m *testing.M) {
	// As telemetry.Setup does in every program.
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	os.Exit(m.Run())
}

// fakeCatalog is a catalog that answers fixed titles and, for some ids,
// fixed errors; it records the metadata and deadline of every call by
// request id.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer

	mu    sync.Mutex
	calls map[string]upstreamCall
}

type upstreamCall struct {
	md          metadata.MD
	hasDeadline bool
	remaining   time.Duration
}

var fakeTitles = func() []*catalogv1.Title {
	var ts []*catalogv1.Title
	for i, name := range []string{"Arrival of the Tests", "Green Bars", "The Flaky One"} {
		ts = append(ts, &catalogv1.Title{
			Id:              "t" + strconv.Itoa(i+1),
			Name:            name,
			Kind:            "movie",
			Synopsis:        strings.Repeat("A story about software that works on the first try. ", 8),
			Year:            int32(2020 + i),
			Genres:          []string{"drama"},
			MaturityRating:  "PG-13",
			DurationSeconds: 5400,
			ArtworkUrl:      "/api/v1/titles/t" + strconv.Itoa(i+1) + "/artwork",
		})
	}
	return ts
}()

// fakeErrors are what GetTitle answers for these ids.
var fakeErrors = map[string]error{
	"invalid":         statusErr(codes.InvalidArgument, "id is malformed"),
	"unauthenticated": statusErr(codes.Unauthenticated, "sign in first"),
	"restricted": statusErr(codes.PermissionDenied, "above the profile's maturity level",
		&errdetails.ErrorInfo{Reason: "MATURITY_RESTRICTED", Domain: "marquee.playback"}),
	"not-entitled": statusErr(codes.PermissionDenied, "no plan or rental covers this title",
		&errdetails.ErrorInfo{Reason: "NOT_ENTITLED", Domain: "marquee.playback"}),
	"streams": statusErr(codes.FailedPrecondition, "all 2 streams of the plan are in use",
		&errdetails.ErrorInfo{Reason: "TOO_MANY_STREAMS", Domain: "marquee.playback"}),
	"precondition": statusErr(codes.FailedPrecondition, "title is not rentable"),
	"exists":       statusErr(codes.AlreadyExists, "title exists"),
	"busy": statusErr(codes.ResourceExhausted, "slow down",
		&errdetails.RetryInfo{RetryDelay: durationpb.New(2500 * time.Millisecond)}),
	"boom": statusErr(codes.Internal, "pq: password=hunter2 connection reset"),
	"down": statusErr(codes.Unavailable, "dial tcp 10.0.0.7:5432: connection refused",
		&errdetails.ErrorInfo{Reason: "PROCESSOR_UNAVAILABLE", Domain: "marquee.billing"}),
	"bad-reason": statusErr(codes.NotFound, "gone", &errdetails.ErrorInfo{Reason: "not upper"}),
}

func statusErr(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	s, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		panic(err)
	}
	return s.Err()
}

func (f *fakeCatalog) record(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	var id string
	if ids := md.Get("x-request-id"); len(ids) > 0 {
		id = ids[0]
	}
	dl, ok := ctx.Deadline()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) >= 10000 { // fuzzing makes many calls
		clear(f.calls)
	}
	f.calls[id] = upstreamCall{md: md.Copy(), hasDeadline: ok, remaining: time.Until(dl)}
}

// call returns the call made with request id id.
func (f *fakeCatalog) call(t *testing.T, id string) upstreamCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.calls[id]
	if !ok {
		t.Fatalf("no upstream call with x-request-id %q", id)
	}
	return c
}

func (f *fakeCatalog) ListTitles(ctx context.Context, req *catalogv1.ListTitlesRequest) (*catalogv1.ListTitlesResponse, error) {
	f.record(ctx)
	if req.GetPageSize() < 0 || req.GetPageSize() > 100 {
		return nil, status.Error(codes.InvalidArgument, "page_size must be 1..100")
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 20
	}
	start, _ := strconv.Atoi(req.GetPageToken())
	start = min(start, len(fakeTitles))
	end := min(start+size, len(fakeTitles))
	resp := &catalogv1.ListTitlesResponse{Titles: fakeTitles[start:end]}
	if end < len(fakeTitles) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

func (f *fakeCatalog) GetTitle(ctx context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	f.record(ctx)
	for _, t := range fakeTitles {
		if t.GetId() == req.GetId() {
			return &catalogv1.GetTitleResponse{Title: t}, nil
		}
	}
	if req.GetId() == "slow" {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err, ok := fakeErrors[req.GetId()]; ok {
		return nil, err
	}
	return nil, status.Errorf(codes.NotFound, "title %s not found", req.GetId())
}

// testUpstream is a running fake of every service the tests call (catalog
// and identity, with the health service), on one gRPC server that counts
// the calls it serves.
type testUpstream struct {
	addr     string
	catalog  *fakeCatalog
	identity *fakeIdentity
	health   *health.Server
	server   *grpc.Server
	// served counts the calls that reached a service, by full method name;
	// health checks and the gateway's own identity calls (signing keys, API
	// key checks) are not counted by calls.
	mu     sync.Mutex
	served map[string]int
}

func startUpstream(t testing.TB) *testUpstream {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &testUpstream{
		addr:     lis.Addr().String(),
		catalog:  &fakeCatalog{calls: map[string]upstreamCall{}},
		identity: newFakeIdentity(t),
		health:   health.NewServer(),
		served:   map[string]int{},
	}
	u.server = grpc.NewServer(grpc.ChainUnaryInterceptor(u.count))
	catalogv1.RegisterCatalogServiceServer(u.server, u.catalog)
	identityv1.RegisterIdentityServiceServer(u.server, u.identity)
	healthpb.RegisterHealthServer(u.server, u.health)
	go u.server.Serve(lis) // the listener is open: calls queue until it accepts
	t.Cleanup(u.server.Stop)
	return u
}

func (u *testUpstream) count(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, "/grpc.health.") {
		u.mu.Lock()
		u.served[info.FullMethod]++
		u.mu.Unlock()
	}
	return h(ctx, req)
}

// calls returns the number of calls served so far.
func (u *testUpstream) calls() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for m, c := range u.served {
		if !strings.HasSuffix(m, "/ListSigningKeys") && !strings.HasSuffix(m, "/VerifyAPIKey") {
			n += c
		}
	}
	return n
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// testGateway is a Gateway served over real HTTP.
type testGateway struct {
	*Gateway
	url  string
	logs *lockedBuffer
}

// newGateway builds a gateway whose upstreams are all at addr; setup, when
// not nil, runs before it starts serving.
func newGateway(t testing.TB, addr string, cfg Config, setup func(*Gateway)) *testGateway {
	t.Helper()
	table := peers.Table{}
	for _, u := range upstreams {
		table[u.service] = []string{addr}
	}
	dialer := peers.NewDialer(table)
	t.Cleanup(func() { dialer.Close() })
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g, err := New(cfg, dialer, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if setup != nil {
		setup(g)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &testGateway{Gateway: g, url: srv.URL, logs: logs}
}

// client does not decompress by itself, so tests see what was sent.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true}}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (g *testGateway) do(t *testing.T, method, path string, header http.Header, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, g.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (g *testGateway) get(t *testing.T, path string) response {
	t.Helper()
	return g.do(t, http.MethodGet, path, nil, nil)
}

// errorOf decodes an error body, failing unless it has exactly the
// PRODUCT shape.
func errorOf(t testing.TB, r response) errorFields {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	var b struct {
		Error *errorFields `json:"error"`
	}
	if err := dec.Decode(&b); err != nil || b.Error == nil {
		t.Fatalf("body %q is not the error shape: %v", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return *b.Error
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// accessLine waits for the access log line of request id and returns it.
func (g *testGateway) accessLine(t *testing.T, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(g.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for request %s in:\n%s", id, g.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func describe(r response) string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}

// generousRoutes is the default routing document with every rate class
// raised out of the way, for tests that send many requests.
func generousRoutes(t testing.TB) []byte {
	t.Helper()
	var d map[string]json.RawMessage
	if err := json.Unmarshal(routes.Default, &d); err != nil {
		t.Fatal(err)
	}
	var classes map[string]map[string]any
	if err := json.Unmarshal(d["rate_classes"], &classes); err != nil {
		t.Fatal(err)
	}
	for _, c := range classes {
		c["rate"], c["per"], c["burst"] = 1e6, "1s", 1000000
	}
	b, err := json.Marshal(classes)
	if err != nil {
		t.Fatal(err)
	}
	d["rate_classes"] = b
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
