package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/marquee-tv/marquee/gen/openapi"
	"github.com/marquee-tv/marquee/internal/gateway"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/peers"
)

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee gateway", flag.ContinueOnError)
	var pf programFlags
	pf.register(fs, "127.0.0.1:0")
	addr := fs.String("addr", "127.0.0.1:8080", "public address: API and web app")
	peerTable := fs.String("peers", "", "addresses of services by name: svc=host:port[,host:port][;svc=...]")
	timeout := fs.Duration("request-timeout", gateway.DefaultRequestTimeout, "deadline of each request")
	maxBody := fs.Int64("max-body", gateway.DefaultMaxBodyBytes, "largest request body in bytes")
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
	table, err := peers.ParseTable(*peerTable)
	if err != nil {
		return err
	}
	ctx, a, cleanup, err := pf.start(ctx, app.Config{Program: "gateway", HTTPAddr: *addr})
	if err != nil {
		return err
	}
	defer cleanup()
	dialer := peers.NewDialer(table)
	a.OnClose(dialer.Close)
	gw, err := gateway.New(gateway.Config{
		RequestTimeout: *timeout,
		MaxBodyBytes:   *maxBody,
		OpenAPI:        openapi.Swagger,
		Registerer:     a.Metrics(),
	}, dialer, a.Logger())
	if err != nil {
		return err
	}
	a.SetHandler(gw)
	a.AddCheck("upstreams", gw.Ready)
	return a.Run(ctx)
}
