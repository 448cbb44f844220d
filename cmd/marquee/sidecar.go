package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	meshv1 "github.com/marquee-tv/marquee/gen/marquee/mesh/v1"
	"github.com/marquee-tv/marquee/internal/mesh/agent"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/sidecar"
	"github.com/marquee-tv/marquee/internal/platform/app"
)

func runSidecar(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee sidecar", flag.ContinueOnError)
	var pf programFlags
	pf.register(fs, "127.0.0.1:15020")
	service := fs.String("service", "", "the service this sidecar stands beside (required)")
	ver := fs.String("version", "v1", "the instance's version label, for traffic splits")
	instance := fs.String("instance", "", "instance id, unique in the mesh (default: SERVICE-HOSTNAME-PID)")
	inbound := fs.String("inbound", ":15006", "mTLS address that other sidecars call; empty for a caller-only program (the gateway)")
	advertise := fs.String("advertise", "", "inbound address to register (default: the inbound address as bound)")
	outbound := fs.String("outbound", "127.0.0.1:15001", "loopback address where the application sends requests by service name")
	appGRPC := fs.String("app-grpc", "127.0.0.1:50051", "the application's gRPC address")
	appHTTP := fs.String("app-http", "", "the application's HTTP address, for requests that are not gRPC (empty: refuse them)")
	appReady := fs.String("app-ready", "", "URL of the application's readiness check (its /readyz); empty means always ready")
	controlPlane := fs.String("control-plane", "127.0.0.1:15012", "the control plane's gRPC address")
	trustBundle := fs.String("trust-bundle", ".marquee/mesh/root.pem", "PEM file of the mesh root, to verify the control plane")
	joinToken := fs.String("join-token", "", "join token SERVICE.TOKEN (set it as MARQUEE_JOIN_TOKEN, not on the command line)")
	accessLog := fs.Bool("access-log", true, "log every request as JSON")
	drain := fs.Duration("drain-timeout", 10*time.Second, "how long in-flight requests may finish when stopping")
	if err := pf.parse(fs, args); err != nil {
		return err
	}
	if err := ca.ValidService(*service); err != nil {
		return fmt.Errorf("--service: %w", err)
	}
	if *joinToken == "" {
		return errors.New("no join token: set MARQUEE_JOIN_TOKEN")
	}
	if *instance == "" {
		host, _ := os.Hostname()
		host, _, _ = strings.Cut(strings.ToLower(host), ".")
		*instance = fmt.Sprintf("%s-%s-%d", *service, host, os.Getpid())
	}
	pem, err := os.ReadFile(*trustBundle)
	if err != nil {
		return fmt.Errorf("--trust-bundle: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("--trust-bundle %s: no PEM certificate", *trustBundle)
	}

	ctx, a, cleanup, err := pf.start(ctx, app.Config{Program: "sidecar"})
	if err != nil {
		return err
	}
	defer cleanup()
	log := a.Logger().With("service", *service, "instance", *instance)

	cpHost, _, err := net.SplitHostPort(*controlPlane)
	if err != nil {
		return fmt.Errorf("--control-plane %q: %w", *controlPlane, err)
	}
	// The certificate source asks the agent, which needs the proxy's
	// bound address: the agent is made last, before anything runs.
	var ag *agent.Agent
	certs := ca.NewWorkload(*service, func(ctx context.Context, csr []byte) ([]byte, [][]byte, error) {
		return ag.Issue(ctx, csr)
	}, log)
	proxy, err := sidecar.New(sidecar.Config{
		Service: *service, Version: *ver,
		InboundAddr: *inbound, OutboundAddr: *outbound,
		AppGRPC: *appGRPC, AppHTTP: *appHTTP,
		Certs: certs, Registerer: a.Metrics(), Log: log, AccessLog: *accessLog, DrainTimeout: *drain,
	})
	if err != nil {
		return err
	}
	addr := *advertise
	if addr == "" && *inbound != "" {
		addr = proxy.InboundAddr()
	}
	ag, err = agent.New(agent.Config{
		ControlPlane: *controlPlane,
		Token:        *joinToken,
		TLS:          &tls.Config{RootCAs: roots, ServerName: cpHost, MinVersion: tls.VersionTLS13},
		Instance:     &meshv1.Instance{Id: *instance, Service: *service, Version: *ver, Address: addr, MetricsAddress: pf.adminAddr},
		Health:       readiness(*appReady),
		Apply:        proxy.Apply,
		Log:          log,
	})
	if err != nil {
		return err
	}
	a.OnClose(ag.Close)
	a.AddCheck("mesh", func(context.Context) error {
		if !proxy.Ready() {
			return errors.New("no certificate or configuration yet")
		}
		return nil
	})
	a.Go("certificates", certs.Run)
	a.Go("agent", ag.Run)
	a.Go("proxy", proxy.Run)
	return a.Run(ctx)
}

// readiness polls the application's readiness URL.
func readiness(url string) func(context.Context) bool {
	if url == "" {
		return func(context.Context) bool { return true }
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	return func(ctx context.Context) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}
