package profiles

import (
	"context"
	"fmt"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	"github.com/marquee-tv/marquee/internal/platform/service"
)

// Start wires the profiles service into a program: its database, the
// outbox relay, the catalog peer (asked about titles put on a My List),
// the demo data when env.Credentials is set, and the gRPC service.
func Start(ctx context.Context, env *service.Env) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	if env.Peers == nil {
		return fmt.Errorf("profiles: no peer dialer (the catalog is needed)")
	}
	conn, err := env.Peers.Conn("catalog")
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	svc, err := NewService(ctx, db, Options{
		Catalog:     catalogv1.NewCatalogServiceClient(conn),
		Logger:      env.App.Logger(),
		OnPublished: relay.Notify,
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
	return nil
}
