package events

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures an in-process NATS server with JetStream, as
// `marquee dev` runs it.
type EmbeddedOptions struct {
	// Host is the listen address; empty means 127.0.0.1.
	Host string
	// Port is the client port; 0 or -1 picks a free one (never the standard
	// 4222, which a machine may already use). Read the chosen address back
	// with ClientURL.
	Port int
	// StoreDir holds JetStream's files; it is created if missing. Restarting
	// on the same directory keeps streams, consumers and their positions.
	StoreDir string
	// Logger receives the server's notices, warnings and errors; nil keeps
	// the server quiet.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections;
	// zero means 10 seconds.
	ReadyTimeout time.Duration
}

// StartEmbedded starts a NATS server with JetStream in this process and
// returns once it accepts connections. Stop it with Shutdown on the
// returned server (WaitForShutdown blocks until it is fully down).
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("events: embedded NATS needs a store directory")
	}
	if err := os.MkdirAll(opts.StoreDir, 0o755); err != nil {
		return nil, fmt.Errorf("events: embedded NATS: %w", err)
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ready := opts.ReadyTimeout
	if ready <= 0 {
		ready = 10 * time.Second
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "marquee-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true,
		NoLog:      opts.Logger == nil,
	})
	if err != nil {
		return nil, fmt.Errorf("events: embedded NATS: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLogger(serverLogger{opts.Logger.With("component", "nats-server")}, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(ready) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("events: embedded NATS on %s:%d not ready after %s", host, port, ready)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("events: embedded NATS started without JetStream")
	}
	return srv, nil
}

// serverLogger forwards the NATS server's log lines to slog.
type serverLogger struct{ l *slog.Logger }

var _ server.Logger = serverLogger{}

func (s serverLogger) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
