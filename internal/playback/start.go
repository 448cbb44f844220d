package playback

import (
	"context"
	"fmt"

	"github.com/marquee-tv/marquee/internal/platform/service"
)

// Start wires playback into a program: its database (with the media
// signing key), the outbox relay, the peers catalog and profiles, the demo
// data when env.Credentials is set, the gRPC service, the media handler as
// the program's HTTP handler, and the session expiry worker.
//
// The program must give playback an HTTP listener (app.Config.HTTPAddr):
// the gateway reverse-proxies /media/ to it.
func Start(ctx context.Context, env *service.Env) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	catalogConn, err := env.Peers.Conn("catalog")
	if err != nil {
		return fmt.Errorf("playback: %w", err)
	}
	profilesConn, err := env.Peers.Conn("profiles")
	if err != nil {
		return fmt.Errorf("playback: %w", err)
	}
	svc, err := NewService(ctx, db, Options{
		Catalog:  catalogConn,
		Profiles: profilesConn,
		Logger:   env.App.Logger(),
		Notify:   relay.Notify,
	})
	if err != nil {
		return err
	}
	if env.Credentials != "" {
		if err := svc.Seed(ctx); err != nil {
			return err
		}
	}
	svc.Register(env.App.GRPC())
	env.App.SetHandler(svc.MediaHandler())
	env.App.Go("session expiry", svc.RunExpiry)
	return nil
}
