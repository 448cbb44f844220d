package orders

import (
	"context"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/saga"
)

// Start wires orders into a program: its database (orders and saga
// tables), the outbox relay, its peers billing, playback and catalog, the
// gRPC service, and the saga engine, which resumes every unfinished saga
// at once. Orders has no demo data of its own.
func Start(ctx context.Context, env *service.Env) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	billingConn, err := env.Peers.Conn("billing")
	if err != nil {
		return err
	}
	playbackConn, err := env.Peers.Conn("playback")
	if err != nil {
		return err
	}
	catalogConn, err := env.Peers.Conn("catalog")
	if err != nil {
		return err
	}
	svc, err := NewService(ctx, db, Options{
		Billing:  billingv1.NewBillingServiceClient(billingConn),
		Playback: playbackv1.NewPlaybackServiceClient(playbackConn),
		Catalog:  catalogv1.NewCatalogServiceClient(catalogConn),
		Logger:   env.App.Logger(),
		Engine:   saga.Options{Registerer: env.App.Metrics()},
		Notify:   relay.Notify,
	})
	if err != nil {
		return err
	}
	svc.Register(env.App.GRPC())
	env.App.Go("saga engine", svc.Run)
	return nil
}
