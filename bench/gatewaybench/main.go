// Command gatewaybench holds the programs bench/gateway.sh runs:
//
//	gatewaybench backend  -http ADDR -grpc ADDR
//	    the backend every proxy forwards to: any HTTP request is answered
//	    with the same 100-byte body; the gRPC port serves a fake catalog
//	    (GetTitle) for the JSON-to-gRPC route
//	gatewaybench gateway  -addr ADDR -admin ADDR -backend ADDR -catalog ADDR -token FILE
//	    the Marquee gateway (package gateway, as marquee gateway builds it)
//	    with JWT authentication and rate limiting on every route: a
//	    pass-through HTTP route to the backend and a transcoded route to the
//	    catalog; a bench-only fake identity serves its JWKS over gRPC, and a
//	    valid access token is written to FILE (and rewritten before it
//	    expires); pprof on the admin address
//	gatewaybench openloop -url URL -rate R -duration D [-H "K: V"]
//	    an open-loop load generator: requests are sent on a fixed schedule
//	    whatever the answers' latency, and each latency is measured from
//	    the moment its request was due (corrected for coordinated omission)
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	identityv1 "github.com/marquee-tv/marquee/gen/marquee/identity/v1"
	"github.com/marquee-tv/marquee/internal/gateway"
	"github.com/marquee-tv/marquee/internal/identity/token"
	"github.com/marquee-tv/marquee/internal/platform/peers"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gatewaybench backend|gateway|openloop [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(ctx, os.Args[2:])
	case "gateway":
		err = runGateway(ctx, os.Args[2:])
	case "openloop":
		err = openloop(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

// body is the backend's answer: 100 bytes.
var body = []byte(strings.Repeat("0123456789", 9) + "marquee!!\n")

func backend(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	httpAddr := fs.String("http", "127.0.0.1:0", "HTTP address")
	grpcAddr := fs.String("grpc", "127.0.0.1:0", "gRPC address (fake catalog)")
	fs.Parse(args)

	lis, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	go srv.Serve(lis)

	glis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return err
	}
	g := grpc.NewServer()
	catalogv1.RegisterCatalogServiceServer(g, fakeCatalog{})
	go g.Serve(glis)
	fmt.Printf("http %s grpc %s\n", lis.Addr(), glis.Addr())
	<-ctx.Done()
	g.Stop()
	return srv.Close()
}

type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
}

// GetTitle answers any id with a fixed title.
func (fakeCatalog) GetTitle(_ context.Context, req *catalogv1.GetTitleRequest) (*catalogv1.GetTitleResponse, error) {
	return &catalogv1.GetTitleResponse{Title: &catalogv1.Title{
		Id: req.GetId(), Name: "Benchmark", Kind: "movie", Year: 2026, Genres: []string{"drama"},
		MaturityRating: "PG", DurationSeconds: 5400,
	}}, nil
}

// fakeIdentity publishes one signing key.
type fakeIdentity struct {
	identityv1.UnimplementedIdentityServiceServer
	jwk token.JWK
}

// ListSigningKeys publishes the one key.
func (f fakeIdentity) ListSigningKeys(context.Context, *identityv1.ListSigningKeysRequest) (*identityv1.ListSigningKeysResponse, error) {
	j := f.jwk
	return &identityv1.ListSigningKeysResponse{Keys: []*identityv1.JSONWebKey{{Kty: j.Kty, Crv: j.Crv, X: j.X, Y: j.Y, Kid: j.Kid, Alg: j.Alg, Use: j.Use}}}, nil
}

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "public address")
	admin := fs.String("admin", "127.0.0.1:0", "pprof address")
	backendAddr := fs.String("backend", "", "backend HTTP address")
	catalogAddr := fs.String("catalog", "", "backend gRPC address (fake catalog)")
	tokenFile := fs.String("token", "", "file to write an access token to")
	accessLog := fs.Bool("access-log", false, "write the access log (to /dev/null)")
	fs.Parse(args)

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	kid, err := token.Thumbprint(&priv.PublicKey)
	if err != nil {
		return err
	}
	jwk, err := token.PublicJWK(kid, &priv.PublicKey)
	if err != nil {
		return err
	}
	ilis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ig := grpc.NewServer()
	identityv1.RegisterIdentityServiceServer(ig, fakeIdentity{jwk: jwk})
	go ig.Serve(ilis)
	defer ig.Stop()

	writeToken := func() error {
		now := time.Now()
		tok, err := token.Sign(token.Claims{AccountID: "bench-account", Roles: []string{"viewer"}, SessionID: "bench-session",
			ID: now.String(), IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(token.TTL)}, kid, priv)
		if err != nil {
			return err
		}
		return os.WriteFile(*tokenFile, []byte(tok), 0o600)
	}
	if err := writeToken(); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(5 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				writeToken()
			}
		}
	}()

	dialer := peers.NewDialer(peers.Table{"identity": {ilis.Addr().String()}, "catalog": {*catalogAddr}})
	defer dialer.Close()
	routes := fmt.Sprintf(`{
  "rate_classes": {"bench": {"rate": 1000000, "per": "1s", "burst": 1000000}},
  "http_upstreams": {"backend": {"addresses": [%q]}},
  "routes": [
    {"prefix": "/", "kind": "http", "upstream": "backend", "auth": "required", "rate_class": "bench"},
    {"method": "GET", "path": "/api/v1/titles/{id}", "upstream": "catalog", "auth": "required", "rate_class": "bench"}
  ]
}`, *backendAddr)
	logger := slog.New(slog.DiscardHandler)
	if *accessLog {
		devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		logger = slog.New(slog.NewJSONHandler(devnull, nil))
	}
	gw, err := gateway.New(gateway.Config{Routes: []byte(routes), CoreUpstreams: []string{"identity"}}, dialer, logger)
	if err != nil {
		return err
	}
	defer gw.Close()
	go gw.Run(ctx)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = gw.Ready(rctx)
	cancel()
	if err != nil {
		return err
	}

	alis, err := net.Listen("tcp", *admin)
	if err != nil {
		return err
	}
	go http.Serve(alis, http.DefaultServeMux) // pprof
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(lis)
	fmt.Printf("gateway %s admin %s\n", lis.Addr(), alis.Addr())
	<-ctx.Done()
	return srv.Close()
}

func openloop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("openloop", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	rate := fs.Int("rate", 5000, "requests per second")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	warm := fs.Duration("warmup", time.Second, "how long to send before measuring")
	conns := fs.Int("c", 64, "connections (and concurrent requests) at most")
	var headers multiFlag
	fs.Var(&headers, "H", "request header K: V (repeatable)")
	fs.Parse(args)

	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	hdr := http.Header{}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		hdr.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}

	interval := time.Second / time.Duration(*rate)
	total := int((*warm + *dur) / interval)
	warmN := int(*warm / interval)
	lat := make([]time.Duration, total)
	var errs, non2xx atomic.Int64
	jobs := make(chan int, total)
	start := time.Now().Add(10 * time.Millisecond)
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() {
			for i := range jobs {
				due := start.Add(time.Duration(i) * interval)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
				req.Header = hdr
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					lat[i] = -1
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					non2xx.Add(1)
				}
				lat[i] = time.Since(due)
			}
		})
	}
	// The schedule: request i is due at start + i*interval; it is handed to
	// a worker then, or as soon as one is free, and its latency counts from
	// the due time either way.
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	measured := slices.DeleteFunc(slices.Clone(lat[warmN:]), func(d time.Duration) bool { return d < 0 })
	slices.Sort(measured)
	pct := func(p float64) time.Duration {
		if len(measured) == 0 {
			return 0
		}
		return measured[min(int(p*float64(len(measured))), len(measured)-1)]
	}
	elapsed := time.Since(start)
	fmt.Printf("rate %d/s for %v: %d measured, errors %d, non-2xx %d; p50 %s p90 %s p99 %s p99.9 %s max %s (achieved %.0f/s)\n",
		*rate, *dur, len(measured), errs.Load(), non2xx.Load(),
		us(pct(.5)), us(pct(.9)), us(pct(.99)), us(pct(.999)), us(pct(1)), float64(total)/elapsed.Seconds())
	return nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond)) }

type multiFlag []string

// String lists the values given.
func (m *multiFlag) String() string { return strings.Join(*m, ", ") }

// Set adds a value.
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
