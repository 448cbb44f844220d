package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/config"
	"github.com/marquee-tv/marquee/internal/platform/logging"
	"github.com/marquee-tv/marquee/internal/platform/telemetry"
)

// programFlags are the flags every long-running program shares.
type programFlags struct {
	adminAddr    string
	logLevel     string
	drainDelay   time.Duration
	parentPID    int
	otlpEndpoint string
}

func (f *programFlags) register(fs *flag.FlagSet, adminDefault string) {
	fs.StringVar(&f.adminAddr, "admin-addr", adminDefault, "admin address: /metrics, /healthz, /readyz, /debug/pprof/")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&f.drainDelay, "drain-delay", 0, "how long to stay up, not ready, before stopping")
	fs.IntVar(&f.parentPID, "parent-pid", 0, "exit when this process is no longer the parent (set by marquee dev)")
}

// parse fills fs from args and MARQUEE_* variables and validates the shared
// flags. OTEL_EXPORTER_OTLP_ENDPOINT is read here, with the other settings.
func (f *programFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := config.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	f.otlpEndpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if _, err := parseLevel(f.logLevel); err != nil {
		return err
	}
	if f.drainDelay < 0 {
		return fmt.Errorf("--drain-delay must not be negative")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return l, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// start builds the program's logger, tracing and App. The returned context
// also ends when the parent named by --parent-pid goes away.
func (f *programFlags) start(ctx context.Context, cfg app.Config) (context.Context, *app.App, func(), error) {
	level, _ := parseLevel(f.logLevel)
	log := logging.New(os.Stderr, cfg.Program, level)
	slog.SetDefault(log)
	shutdownTracing, err := telemetry.Setup(ctx, cfg.Program, version(), f.otlpEndpoint)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg.AdminAddr = f.adminAddr
	cfg.DrainDelay = f.drainDelay
	a, err := app.New(cfg, log)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	if f.parentPID > 0 {
		go watchParent(ctx, cancel, f.parentPID, log)
	}
	cleanup := func() {
		cancel()
		flush, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := shutdownTracing(flush); err != nil {
			log.Warn("flushing traces", "err", err)
		}
	}
	return ctx, a, cleanup, nil
}

// watchParent cancels the program when its supervisor is gone, so a killed
// marquee dev leaves no process behind.
func watchParent(ctx context.Context, cancel context.CancelFunc, pid int, log *slog.Logger) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if os.Getppid() != pid {
				log.Warn("supervisor is gone; stopping", "supervisor_pid", pid)
				cancel()
				return
			}
		}
	}
}
