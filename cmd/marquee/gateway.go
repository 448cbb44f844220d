package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/gen/openapi"
	"github.com/marquee-tv/marquee/internal/gateway"
	"github.com/marquee-tv/marquee/internal/gateway/home"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/webapp"
)

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee gateway", flag.ContinueOnError)
	var pf programFlags
	pf.register(fs, "127.0.0.1:0")
	addr := fs.String("addr", "127.0.0.1:8080", "public address: API and web app")
	peerTable := fs.String("peers", "", "addresses of services by name: svc=host:port[,host:port][;svc=...]; playback's media endpoint is the peer playback-http")
	sidecarAddr := fs.String("sidecar", "", "send every call to services through the mesh sidecar at this address (--peers is then not used)")
	timeout := fs.Duration("request-timeout", gateway.DefaultRequestTimeout, "deadline of a request whose route sets none")
	maxBody := fs.Int64("max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes")
	routesFile := fs.String("routes", "", "routing configuration file, reloaded on change and on SIGHUP (default: the built-in routes of the public API)")
	redisURL := fs.String("redis", "", "Redis URL (redis://host:port/db) to share rate limits between gateway replicas (default: in-process)")
	natsURL := fs.String("nats", "", "NATS URL, to refuse revoked sessions' tokens at once (default: they work until they expire)")
	corsOrigins := fs.String("cors-origins", "", "comma-separated origins allowed to call the API from a browser")
	trusted := fs.String("trusted-proxies", "", "comma-separated networks (CIDR) of proxies whose X-Forwarded-For is believed")
	if err := pf.parse(fs, args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	}
	if *timeout <= 0 || *timeout > 5*time.Minute {
		return fmt.Errorf("--request-timeout must be between 0 and 5m")
	}
	if *maxBody <= 0 {
		return fmt.Errorf("--max-body must be positive")
	}
	dialer, media, err := dialPeers(*peerTable, *sidecarAddr)
	if err != nil {
		return err
	}
	var proxies []netip.Prefix
	for _, s := range splitList(*trusted) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--trusted-proxies: %w", err)
		}
		proxies = append(proxies, p)
	}
	ctx, a, cleanup, err := pf.start(ctx, app.Config{Program: "gateway", HTTPAddr: *addr})
	if err != nil {
		dialer.Close()
		return err
	}
	defer cleanup()
	a.OnClose(dialer.Close)
	// playback's media endpoint: its HTTP addresses, or the sidecar, which
	// routes by the Host "playback".
	upstreams := map[string][]string{"playback-media": media}
	var hosts map[string]string
	if *sidecarAddr != "" {
		hosts = map[string]string{"playback-media": "playback"}
	}
	gw, err := gateway.New(gateway.Config{
		RequestTimeout: *timeout,
		MaxBodyBytes:   *maxBody,
		OpenAPI:        openapi.Swagger,
		Registerer:     a.Metrics(),
		RoutesFile:     *routesFile,
		HTTPUpstreams:  upstreams,
		UpstreamHosts:  hosts,
		Home:           home.New(home.Config{Registerer: a.Metrics()}, dialer, a.Logger()),
		Web:            webapp.Handler(),
		CORSOrigins:    splitList(*corsOrigins),
		TrustedProxies: proxies,
		RedisURL:       *redisURL,
		NATSURL:        *natsURL,
	}, dialer, a.Logger())
	if err != nil {
		return err
	}
	a.OnClose(gw.Close)
	a.SetHandler(gw)
	a.AddCheck("upstreams", gw.Ready)
	a.Go("gateway", gw.Run)
	return a.Run(ctx)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// dialPeers returns the Dialer of a program's peers: through the mesh
// sidecar at sidecarAddr when set, else at the addresses of table. media
// is where playback's HTTP endpoint is reached.
func dialPeers(table, sidecarAddr string) (d *peers.Dialer, media []string, err error) {
	if sidecarAddr != "" {
		if table != "" {
			return nil, nil, errors.New("--peers and --sidecar exclude each other: with a sidecar, it knows where peers are")
		}
		d, err := peers.NewSidecarDialer(sidecarAddr)
		return d, []string{sidecarAddr}, err
	}
	t, err := peers.ParseTable(table)
	if err != nil {
		return nil, nil, err
	}
	return peers.NewDialer(t), t["playback-http"], nil
}
