// Package service is what a service instance is given to wire itself:
// its program lifecycle, where its database and the event bus are, how to
// reach its peers by name, and its version. Each service package exposes
// Start(ctx, *service.Env) error, which opens what it needs through Env so
// that every service opens, checks and closes things the same way.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/marquee-tv/marquee/internal/platform/app"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/storage"
)

// Env is one service instance's environment.
type Env struct {
	// Name is the service name, e.g. "catalog".
	Name string
	// Version is the instance's version label (v1, v2), which the mesh can
	// split traffic by.
	Version string
	App     *app.App
	// Storage says where the service's database lives.
	Storage storage.Config
	// NATSURL is the event bus.
	NATSURL string
	// Peers dials other services by name.
	Peers *peers.Dialer
	// Credentials, when set, is the credentials.json of the demo and admin
	// accounts: the service seeds its part of the demo data (see package
	// seed). Empty means seed nothing.
	Credentials string
}

// OpenDB opens and migrates the service's database, closes it at shutdown
// and makes readiness depend on it.
func (e *Env) OpenDB(ctx context.Context, m storage.Migrations) (*storage.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, e.Storage, m)
	if err != nil {
		return nil, err
	}
	e.App.OnClose(db.Close)
	e.App.AddCheck("database", db.Ping)
	e.App.Logger().Info("database open", "dialect", string(db.Dialect()), "name", db.Name())
	return db, nil
}

// Events connects to the event bus, makes sure the stream exists, and runs
// the outbox relay of db for the life of the program. The returned relay
// can be kicked (Notify) after a commit that published events.
func (e *Env) Events(ctx context.Context, db *storage.DB) (*nats.Conn, jetstream.JetStream, *events.Relay, error) {
	if e.NATSURL == "" {
		return nil, nil, nil, errors.New("service: no NATS URL (--nats)")
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, js, err := events.Connect(cctx, e.NATSURL, e.Name, e.App.Logger())
	if err != nil {
		return nil, nil, nil, err
	}
	e.App.OnClose(func() error { return nc.Drain() })
	if err := events.EnsureStream(cctx, js); err != nil {
		return nil, nil, nil, fmt.Errorf("service: event stream: %w", err)
	}
	relay := events.NewRelay(db, js, e.App.Logger())
	e.App.Go("outbox relay", relay.Run)
	return nc, js, relay, nil
}
