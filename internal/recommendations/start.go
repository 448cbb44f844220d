package recommendations

import (
	"context"
	"fmt"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/service"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// Start wires the recommendations service into a program: its database,
// the event bus (the catalog and playback consumers), the profiles peer,
// the metrics (consumer lag, skipped events), a maintenance worker and the
// gRPC service, answering with the model env.Version names ("v1" or "v2").
//
// It seeds nothing: its data is derived from the catalog's and playback's
// events, demo data included.
func Start(ctx context.Context, env *service.Env) error {
	version, err := domain.ParseVersion(env.Version)
	if err != nil {
		return fmt.Errorf("recommendations: %w", err)
	}
	db, err := env.OpenDB(ctx, Migrations)
	if err != nil {
		return err
	}
	_, js, _, err := env.Events(ctx, db)
	if err != nil {
		return err
	}
	conn, err := env.Peers.Conn("profiles")
	if err != nil {
		return err
	}
	log := env.App.Logger()
	svc, err := NewService(ctx, db, Options{
		Version:    version,
		Profiles:   NewProfilesClient(conn),
		Logger:     log,
		Registerer: env.App.Metrics(),
	})
	if err != nil {
		return err
	}
	catalogEvents := events.NewConsumer(js, db, CatalogConsumer, []string{TitleUpsertedSubject}, svc.HandleCatalogEvent, log)
	viewingEvents := events.NewConsumer(js, db, PlaybackConsumer, PlaybackSubjects, svc.HandleViewingEvent, log)
	env.App.Go("catalog events", catalogEvents.Run)
	env.App.Go("playback events", viewingEvents.Run)
	env.App.Go("maintenance", svc.RunMaintenance)
	if err := env.App.Metrics().Register(NewLagCollector(js, log, CatalogConsumer, PlaybackConsumer)); err != nil {
		return fmt.Errorf("recommendations: metrics: %w", err)
	}
	svc.Register(env.App.GRPC())
	log.Info("recommendations wired", "version", string(version))
	return nil
}
