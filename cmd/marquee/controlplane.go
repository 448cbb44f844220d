package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/marquee-tv/marquee/internal/console"
	"github.com/marquee-tv/marquee/internal/mesh/ca"
	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
	"github.com/marquee-tv/marquee/internal/mesh/policy"
	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

func runControlPlane(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee control-plane", flag.ContinueOnError)
	var pf programFlags
	pf.register(fs, "127.0.0.1:0")
	consoleAddr := fs.String("console-addr", "127.0.0.1:9090", "console and admin API address")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:15012", "address sidecars connect to (gRPC over TLS)")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "comma-separated names and IPs in the certificate of the gRPC address")
	dataDir := fs.String("data", ".marquee", "data directory: SQLite database, mesh/root.pem")
	postgres := fs.String("postgres", "", "PostgreSQL server URL; the control plane uses database marquee_mesh")
	gatewayURL := fs.String("gateway", "http://127.0.0.1:8080", "the gateway, where the console passes the public API and finds the signing keys")
	policyFile := fs.String("policy", "", "mesh policy stored when the database has none (default: the built-in policy)")
	secretFile := fs.String("join-secret-file", "", "file of the secret that join tokens are made with, created when missing (default DATA/mesh/join.key)")
	certTTL := fs.Duration("cert-ttl", time.Hour, "lifetime of workload certificates (renewed at half-life)")
	otlpAddr := fs.String("otlp-addr", "", "address where the console receives traces over OTLP/gRPC, plaintext (empty: none)")
	natsURL := fs.String("nats", "", "NATS URL of the event bus, whose consumer lag the console shows (empty: none)")
	if err := pf.parse(fs, args); err != nil {
		return err
	}
	if *certTTL < 10*time.Second || *certTTL > 24*time.Hour {
		return errors.New("--cert-ttl must be between 10s and 24h")
	}
	gw, err := url.Parse(*gatewayURL)
	if err != nil {
		return fmt.Errorf("--gateway: %w", err)
	}
	initial := policy.Default()
	if *policyFile != "" {
		b, err := os.ReadFile(*policyFile)
		if err != nil {
			return err
		}
		if initial, err = policy.Parse(b); err != nil {
			return fmt.Errorf("%s: %w", *policyFile, err)
		}
	}
	meshDir := filepath.Join(*dataDir, "mesh")
	if err := os.MkdirAll(meshDir, 0o700); err != nil {
		return err
	}
	if *secretFile == "" {
		*secretFile = filepath.Join(meshDir, "join.key")
	}
	secret, err := ca.LoadOrCreateJoinSecret(*secretFile)
	if err != nil {
		return err
	}

	db, err := storage.Open(ctx, storage.Config{Service: "mesh", DataDir: *dataDir, PostgresURL: *postgres}, storage.Migrations{})
	if err != nil {
		return err
	}
	defer db.Close()
	authority, err := ca.Open(ctx, db)
	if err != nil {
		return err
	}
	// Sidecars verify the control plane with the mesh root, read from here.
	if err := os.WriteFile(filepath.Join(meshDir, "root.pem"), authority.RootPEM(), 0o644); err != nil {
		return err
	}
	serving, err := authority.ServingCertificate(splitList(*hosts), 24*time.Hour)
	if err != nil {
		return err
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serving}, MinVersion: tls.VersionTLS13})

	ctx, a, cleanup, err := pf.start(ctx, app.Config{
		Program: "control-plane", GRPCAddr: *grpcAddr, HTTPAddr: *consoleAddr,
		GRPCOptions: []grpc.ServerOption{grpc.Creds(creds)},
	})
	if err != nil {
		return err
	}
	defer cleanup()
	cp, err := controlplane.New(ctx, controlplane.Config{
		DB: db, Authority: authority, JoinSecret: secret, InitialPolicy: initial, CertTTL: *certTTL,
		Registerer: a.Metrics(), Log: a.Logger(),
	})
	if err != nil {
		return err
	}
	cp.RegisterGRPC(a.GRPC())
	// Sidecars' streams never end by themselves: end them when stopping,
	// so that the gRPC server's graceful stop does not wait for them (the
	// sidecars reconnect to another control plane, or to this one again).
	go func() {
		<-ctx.Done()
		cp.Close()
	}()
	h, err := console.New(console.Config{Mesh: cp.Handler(), Gateway: gw, Log: a.Logger(),
		Instances: cp.Instances, OTLPAddr: *otlpAddr, NATSURL: *natsURL})
	if err != nil {
		return err
	}
	a.SetHandler(h)
	a.Go("console", h.Run)
	a.AddCheck("database", db.Ping)
	a.Go("control-plane", cp.Run)
	return a.Run(ctx)
}
