package recommendations_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	profilesv1 "github.com/marquee-tv/marquee/gen/marquee/profiles/v1"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/recommendations"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
	"github.com/marquee-tv/marquee/internal/recommendations/store"
)

func rawEvent(subject, data string) events.Event {
	return events.Event{Subject: subject, ID: "e1", Data: []byte(data), Time: now}
}

func TestDecodeViewing(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    string
		want    domain.ViewingEvent
		wantErr bool
	}{
		{"progress", recommendations.PlaybackProgressSubject,
			`{"account_id":"a","profile_id":"p","title_id":"t","episode_id":"e","position_seconds":42,"duration_seconds":100,"session_id":"s","extra":{"x":1}}`,
			domain.ViewingEvent{Kind: domain.Progress, AccountID: "a", ProfileID: "p", TitleID: "t", EpisodeID: "e", Position: 42, Duration: 100, At: now}, false},
		{"started, minimal", recommendations.PlaybackStartedSubject, `{"profile_id":"p","title_id":"t"}`,
			domain.ViewingEvent{Kind: domain.Started, ProfileID: "p", TitleID: "t", At: now}, false},
		{"completed, int64 as strings", recommendations.PlaybackCompletedSubject, `{"profile_id":"p","title_id":"t","position_seconds":"100","duration_seconds":"100"}`,
			domain.ViewingEvent{Kind: domain.Completed, ProfileID: "p", TitleID: "t", Position: 100, Duration: 100, At: now}, false},
		{"stopped is progress, camelCase, fractions", recommendations.PlaybackStoppedSubject, `{"profileId":"p","titleId":"t","positionSeconds":12.7,"durationSeconds":null}`,
			domain.ViewingEvent{Kind: domain.Progress, ProfileID: "p", TitleID: "t", Position: 12, At: now}, false},
		{"negative and huge numbers", recommendations.PlaybackProgressSubject, `{"profile_id":"p","title_id":"t","position_seconds":-5,"duration_seconds":1e12}`,
			domain.ViewingEvent{Kind: domain.Progress, ProfileID: "p", TitleID: "t", Position: 0, Duration: 2147483647, At: now}, false},
		{"no profile", recommendations.PlaybackProgressSubject, `{"title_id":"t"}`, domain.ViewingEvent{}, true},
		{"bad title id", recommendations.PlaybackProgressSubject, `{"profile_id":"p","title_id":"t/../x"}`, domain.ViewingEvent{}, true},
		{"profile not a string", recommendations.PlaybackProgressSubject, `{"profile_id":7,"title_id":"t"}`, domain.ViewingEvent{}, true},
		{"position not a number", recommendations.PlaybackProgressSubject, `{"profile_id":"p","title_id":"t","position_seconds":"soon"}`, domain.ViewingEvent{}, true},
		{"not an object", recommendations.PlaybackProgressSubject, `[1,2]`, domain.ViewingEvent{}, true},
		{"null", recommendations.PlaybackProgressSubject, `null`, domain.ViewingEvent{}, true},
		{"other subject", "marquee.playback.paused", `{"profile_id":"p","title_id":"t"}`, domain.ViewingEvent{}, true},
	}
	for _, tt := range tests {
		got, err := recommendations.DecodeViewing(rawEvent(tt.subject, tt.data))
		if tt.wantErr {
			if !errors.Is(err, recommendations.ErrUnusableEvent) {
				t.Errorf("%s: DecodeViewing(%s) = %+v, %v; want ErrUnusableEvent", tt.name, tt.data, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: DecodeViewing(%s) = %+v, %v; want %+v", tt.name, tt.data, got, err, tt.want)
		}
	}
}

func TestDecodeTitle(t *testing.T) {
	ti := demoTitles()[6] // the series
	ev := titleEvent(t, ti, now)
	got, err := recommendations.DecodeTitle(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "t-series" || got.Kind != "series" || got.Rating != "TV-14" || got.LastEpisodeID != "t-series-2-1" ||
		!got.Version.Equal(now) || !got.AvailableFrom.Equal(now.Add(-365*24*time.Hour)) || got.Name != "Harbour Lights" {
		t.Errorf("DecodeTitle(series) = %+v", got)
	}
	for _, data := range []string{`{"id":""}`, `{"id":"a b"}`, `{"name":"no id"}`, `not json`, `{"id":"x","year":"nope"}`} {
		if _, err := recommendations.DecodeTitle(rawEvent(recommendations.TitleUpsertedSubject, data)); !errors.Is(err, recommendations.ErrUnusableEvent) {
			t.Errorf("DecodeTitle(%s) = %v, want ErrUnusableEvent", data, err)
		}
	}
}

// TestUnusableEventsAreSkipped: a handler acknowledges (returns nil) data
// it cannot use, changes nothing, and counts it.
func TestUnusableEventsAreSkipped(t *testing.T) {
	db := storagetest.OpenSQLite(t, "recommendations", recommendations.Migrations)
	reg := prometheus.NewRegistry()
	svc, err := recommendations.NewService(context.Background(), db, recommendations.Options{
		Version: domain.V1, Profiles: recommendations.NewProfilesClient(nil), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ev := range []events.Event{
		rawEvent(recommendations.PlaybackProgressSubject, `{"title_id":"t"}`),
		rawEvent(recommendations.TitleUpsertedSubject, `{"id":""}`),
	} {
		handle := svc.HandleViewingEvent
		if ev.Subject == recommendations.TitleUpsertedSubject {
			handle = svc.HandleCatalogEvent
		}
		if err := db.InTx(ctx, func(tx *storage.Tx) error { return handle(ctx, tx, ev) }); err != nil {
			t.Errorf("handle unusable %s = %v, want nil (acknowledged)", ev.Subject, err)
		}
	}
	if n := skippedCount(t, reg, recommendations.PlaybackProgressSubject); n != 1 {
		t.Errorf("skipped progress events = %v, want 1", n)
	}
	titles, _ := svc.Store().Titles(ctx)
	if len(titles) != 0 {
		t.Errorf("an unusable title event wrote %v", titles)
	}
}

// skippedCount reads the skipped counter of subject from reg.
func skippedCount(t *testing.T, reg *prometheus.Registry, subject string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "marquee_recommendations_events_skipped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "subject" && l.GetValue() == subject {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestConsumerAppliesAnEventOnce delivers the same events twice (distinct
// stream messages with the same ce-id) to the real consumers: counts
// change once. Run on SQLite and PostgreSQL.
func TestConsumerAppliesAnEventOnce(t *testing.T) {
	storagetest.ForEach(t, "recommendations", recommendations.Migrations, func(t *testing.T, db *storage.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		js := startNATS(t)
		fp := newFakeProfiles()
		paddr, _ := serveGRPC(t, func(s *grpc.Server) { profilesv1.RegisterProfilesServiceServer(s, fp) })
		conn, err := dialer(t, paddr).Conn("profiles")
		if err != nil {
			t.Fatal(err)
		}
		svc, err := recommendations.NewService(ctx, db, recommendations.Options{Version: domain.V2, Profiles: recommendations.NewProfilesClient(conn)})
		if err != nil {
			t.Fatal(err)
		}
		viewing := events.NewConsumer(js, db, recommendations.PlaybackConsumer, recommendations.PlaybackSubjects, svc.HandleViewingEvent, nil)
		catalog := events.NewConsumer(js, db, recommendations.CatalogConsumer, []string{recommendations.TitleUpsertedSubject}, svc.HandleCatalogEvent, nil)
		goRun(t, "viewing consumer", viewing.Run)
		goRun(t, "catalog consumer", catalog.Run)

		at := time.Now().UTC()
		started := viewEvent(t, recommendations.PlaybackStartedSubject, map[string]any{"profile_id": "p-x", "title_id": "t-comedy-1"}, at)
		other := viewEvent(t, recommendations.PlaybackStartedSubject, map[string]any{"profile_id": "p-x", "title_id": "t-comedy-2"}, at.Add(time.Second))
		ti := titleEvent(t, title("t-comedy-1", "Laugh Track", "PG", 2023, "comedy"), at)
		for i, ev := range []events.Event{started, started, ti, other, ti, other} {
			if _, err := js.PublishMsg(ctx, events.Message(ev), jetstream.WithMsgID(fmt.Sprintf("msg-%d", i))); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
		eventually(t, 15*time.Second, "every message handled", func() (bool, string) {
			lv, err1 := viewing.Lag(ctx)
			lc, err2 := catalog.Lag(ctx)
			if err := errors.Join(err1, err2); err != nil {
				return false, err.Error()
			}
			return lv.Pending+uint64(lv.AckPending)+lc.Pending+uint64(lc.AckPending) == 0, fmt.Sprintf("lag %+v %+v", lv, lc)
		})
		st := svc.Store()
		stats, err := st.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]store.Stats{"t-comedy-1": {Viewers: 1, Plays: 1}, "t-comedy-2": {Viewers: 1, Plays: 1}}
		for id, w := range want {
			if stats[id] != w {
				t.Errorf("after duplicates, Stats[%s] = %+v, want %+v", id, stats[id], w)
			}
		}
		co, err := st.CoViews(ctx, []string{"t-comedy-1"}, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(co) != 1 || co[0].Both != 1 {
			t.Errorf("after duplicates, co-views of t-comedy-1 = %+v, want one pair counted once", co)
		}
		acts, _ := st.Activity(ctx, at.Add(-time.Hour))
		plays := 0
		for _, a := range acts {
			plays += a.Plays
		}
		if plays != 2 {
			t.Errorf("after duplicates, plays in activity = %d, want 2", plays)
		}
		if _, ok, _ := st.Title(ctx, "t-comedy-1"); !ok {
			t.Error("the title event was not applied")
		}
	})
}
