package billing

import (
	"context"

	"github.com/marquee-tv/marquee/internal/platform/service"
)

// Start wires billing into a program: its database, the outbox relay, the
// simulated card processor, the demo data (when env.Credentials is set)
// and the gRPC service. It needs no peers: billing calls no other service.
func Start(ctx context.Context, env *service.Env) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	svc, err := NewService(ctx, db, Options{Logger: env.App.Logger(), Committed: relay.Notify})
	if err != nil {
		return err
	}
	if env.Credentials != "" {
		if err := svc.Seed(ctx); err != nil {
			return err
		}
	}
	svc.Register(env.App.GRPC())
	return nil
}
