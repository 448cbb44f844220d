package identity

import (
	"context"
	"fmt"

	"github.com/marquee-tv/marquee/internal/platform/seed"
	"github.com/marquee-tv/marquee/internal/platform/service"
)

// Start wires identity into a program with the default options: its
// database, the outbox relay, the signing keys (created on first start),
// the demo and admin accounts when env.Credentials is set, the gRPC
// service, and the maintenance worker that rotates signing keys on
// schedule and prunes what has expired.
func Start(ctx context.Context, env *service.Env) error {
	return StartWith(Options{})(ctx, env)
}

// StartWith is Start with options a program may set from its flags (for
// example KeyLifetime or KeyEncryptionKey). Logger, Notify and Metrics are
// always taken from env.
func StartWith(opts Options) func(context.Context, *service.Env) error {
	return func(ctx context.Context, env *service.Env) error { return start(ctx, env, opts) }
}

func start(ctx context.Context, env *service.Env, opts Options) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	opts.Logger, opts.Notify, opts.Metrics = env.App.Logger(), relay.Notify, env.App.Metrics()
	svc, err := NewService(ctx, db, opts)
	if err != nil {
		return err
	}
	if env.Credentials != "" {
		creds, err := seed.Load(env.Credentials)
		if err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		if err := svc.Seed(ctx, creds); err != nil {
			return err
		}
	}
	svc.Register(env.App.GRPC())
	env.App.Go("identity maintenance", svc.RunMaintenance)
	return nil
}
