package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/marquee-tv/marquee/internal/billing"
	"github.com/marquee-tv/marquee/internal/catalog"
	"github.com/marquee-tv/marquee/internal/identity"
	"github.com/marquee-tv/marquee/internal/orders"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/playback"
	"github.com/marquee-tv/marquee/internal/profiles"
	"github.com/marquee-tv/marquee/internal/recommendations"
)

// services maps each implemented service to the function that wires it.
var services = map[string]func(context.Context, *service.Env) error{
	"identity":        identity.Start,
	"catalog":         catalog.Start,
	"profiles":        profiles.Start,
	"recommendations": recommendations.Start,
	"billing":         billing.Start,
	"orders":          orders.Start,
	"playback":        playback.Start,
}

// startOrder lists services in the order marquee dev starts them.
var startOrder = []string{"identity", "profiles", "catalog", "recommendations", "billing", "playback", "orders"}

func implementedServices() []string {
	var out []string
	for _, s := range startOrder {
		if _, ok := services[s]; ok {
			out = append(out, s)
		}
	}
	return out
}

func serviceNames() string {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func runServe(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("serve: name a service (%s)", serviceNames())
	}
	name, args := args[0], args[1:]
	start, ok := services[name]
	if !ok {
		return fmt.Errorf("serve: unknown service %q (have %s)", name, serviceNames())
	}
	fs := flag.NewFlagSet("marquee serve "+name, flag.ContinueOnError)
	var pf programFlags
	pf.register(fs, "127.0.0.1:0")
	grpcAddr := fs.String("grpc-addr", ":"+peers.DefaultPort, "gRPC listen address")
	httpAddr := fs.String("http-addr", ":8080", "HTTP listen address, for services that serve HTTP (playback's media)")
	dataDir := fs.String("data", ".marquee", "data directory (SQLite databases)")
	postgres := fs.String("postgres", "", "PostgreSQL server URL; the service uses database marquee_"+name)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "NATS JetStream URL")
	peerTable := fs.String("peers", "", "addresses of peers by name: svc=host:port[,host:port][;svc=...]; unnamed peers resolve through DNS as <svc>:"+peers.DefaultPort)
	sidecarAddr := fs.String("sidecar", "", "send every call to peers through the mesh sidecar at this address (--peers is then not used)")
	ver := fs.String("version", "v1", "instance version label (v1, v2)")
	credentials := fs.String("credentials", "", "seed the demo data, with the demo and admin accounts of this credentials.json (marquee dev sets it)")
	if err := pf.parse(fs, args); err != nil {
		return err
	}
	if *ver != "v1" && *ver != "v2" {
		return errors.New("--version: want v1 or v2")
	}
	dialer, _, err := dialPeers(*peerTable, *sidecarAddr)
	if err != nil {
		return err
	}
	ctx, a, cleanup, err := pf.start(ctx, app.Config{Program: name, GRPCAddr: *grpcAddr, HTTPAddr: *httpAddr})
	if err != nil {
		dialer.Close()
		return err
	}
	defer cleanup()
	a.OnClose(dialer.Close)
	env := &service.Env{
		Name:        name,
		Version:     *ver,
		App:         a,
		Storage:     storage.Config{Service: name, DataDir: *dataDir, PostgresURL: *postgres},
		NATSURL:     *natsURL,
		Peers:       dialer,
		Credentials: *credentials,
	}
	if err := start(ctx, env); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return a.Run(ctx)
}
