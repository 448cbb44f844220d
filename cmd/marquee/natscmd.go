package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/config"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/logging"
)

// runNATS is the embedded NATS JetStream server that marquee dev runs as
// its own process.
func runNATS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee nats", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:14222", "client address")
	store := fs.String("store", ".marquee/nats", "JetStream storage directory")
	parentPID := fs.Int("parent-pid", 0, "exit when this process is no longer the parent")
	if err := config.Parse(fs, args, os.Getenv); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*addr)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("--addr %q: want host:port", *addr)
	}
	log := logging.New(os.Stderr, "nats", slog.LevelInfo)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *parentPID > 0 {
		go watchParent(ctx, cancel, *parentPID, log)
	}
	srv, err := events.StartEmbedded(events.EmbeddedOptions{Host: host, Port: port, StoreDir: *store, Logger: log})
	if err != nil {
		return err
	}
	log.Info("NATS JetStream ready", "url", srv.ClientURL())
	<-ctx.Done()
	srv.Shutdown()
	done := make(chan struct{})
	go func() { srv.WaitForShutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	return nil
}
