package catalog

import (
	"context"
	"fmt"

	"github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/profiles"
)

// TitleUpsertedSubject is the event published, through the outbox, in the
// transaction of every title write. Its data is the title as
// marquee.catalog.v1.Title JSON, seasons included.
const TitleUpsertedSubject = "marquee.catalog.title_upserted"

// Start wires the catalog into a program: its database, the outbox relay,
// the demo data and the gRPC service.
func Start(ctx context.Context, env *service.Env) error {
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, _, relay, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	var svc *Service
	publish := func(ctx context.Context, tx *storage.Tx, t domain.Title) error {
		ev, err := events.NewEvent(TitleUpsertedSubject, t.ID, svc.server.titleProto(t, true))
		if err != nil {
			return fmt.Errorf("title_upserted event: %w", err)
		}
		return events.Publish(ctx, tx, ev)
	}
	profilesConn, err := env.Peers.Conn("profiles")
	if err != nil {
		return err
	}
	svc, err = NewService(ctx, db, Options{
		Logger:       env.App.Logger(),
		OnTitleSaved: publish,
		Profiles:     profiles.NewMaturityLookup(profilesConn),
	})
	if err != nil {
		return err
	}
	if err := svc.Seed(ctx); err != nil {
		return err
	}
	relay.Notify()
	svc.Register(env.App.GRPC())
	return nil
}
