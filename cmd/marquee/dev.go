package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/marquee-tv/marquee/internal/devrun"
	"github.com/marquee-tv/marquee/internal/platform/config"
	"github.com/marquee-tv/marquee/internal/platform/logging"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee dev", flag.ContinueOnError)
	cfg := devrun.Config{Out: os.Stdout}
	fs.StringVar(&cfg.DataDir, "data", ".marquee", "data directory: databases, logs, credentials.json")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "gateway address (API and web app)")
	fs.StringVar(&cfg.ConsoleAddr, "console-addr", "127.0.0.1:9090", "console and control-plane admin address")
	fs.StringVar(&cfg.PostgresURL, "postgres", "", "PostgreSQL server URL; each service gets its own database marquee_<service> (default: SQLite files in --data)")
	fs.StringVar(&cfg.NATSURL, "nats", "", "external NATS JetStream URL (default: an embedded server)")
	fs.StringVar(&cfg.RedisURL, "redis", "", "Redis URL for shared gateway rate limits (default: in-process)")
	replicas := fs.String("replicas", "", "instances per service, e.g. recommendations=2,catalog=2")
	versions := fs.String("versions", "", "version of every instance of a service, e.g. recommendations=v2 (default: recommendations instances are v1, v2; others v1)")
	mesh := fs.String("mesh", "on", "on: every program behind a sidecar, strict mTLS, policy from the control plane; off: services call each other directly (as under Istio)")
	fs.BoolVar(&cfg.Reset, "reset", false, "delete the data directory first")
	logLevel := fs.String("log-level", "info", "supervisor log level")
	if err := config.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return err
	}
	if cfg.Replicas, err = devrun.ParseReplicas(*replicas); err != nil {
		return fmt.Errorf("--replicas: %w", err)
	}
	if cfg.Versions, err = devrun.ParseVersions(*versions); err != nil {
		return fmt.Errorf("--versions: %w", err)
	}
	for _, a := range []string{cfg.Addr, cfg.ConsoleAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
	}
	switch *mesh {
	case "on":
		cfg.Mesh = true
	case "off":
	default:
		return fmt.Errorf("--mesh %q: want on or off", *mesh)
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find the marquee binary: %w", err)
	}
	cfg.Log = logging.New(os.Stderr, "dev", level)
	cfg.Services = implementedServices()
	return devrun.Run(ctx, cfg)
}
