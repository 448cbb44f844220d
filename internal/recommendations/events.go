package recommendations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	catalogdomain "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/recommendations/domain"
)

// Subjects consumed.
const (
	// TitleUpsertedSubject is the catalog's event for every title write.
	TitleUpsertedSubject = "marquee.catalog.title_upserted"
	// Playback's viewing events.
	PlaybackStartedSubject   = "marquee.playback.started"
	PlaybackProgressSubject  = "marquee.playback.progress"
	PlaybackStoppedSubject   = "marquee.playback.stopped"
	PlaybackCompletedSubject = "marquee.playback.completed"
)

// Durable consumer names, shared by every instance of the service (so each
// event is applied once to the shared projection).
const (
	CatalogConsumer  = "recommendations-catalog"
	PlaybackConsumer = "recommendations-playback"
)

// PlaybackSubjects are the viewing events consumed.
var PlaybackSubjects = []string{PlaybackStartedSubject, PlaybackProgressSubject, PlaybackStoppedSubject, PlaybackCompletedSubject}

// ErrUnusableEvent reports event data this service cannot use; the event is
// acknowledged without effect (redelivering it would not help).
var ErrUnusableEvent = errors.New("recommendations: unusable event")

// HandleCatalogEvent is the events.Handler of marquee.catalog.title_upserted:
// it writes the title into the projection in tx, unless the projection
// holds it from a newer event. Unusable data is logged, counted in
// marquee_recommendations_events_skipped_total and acknowledged.
func (s *Service) HandleCatalogEvent(ctx context.Context, tx *storage.Tx, ev events.Event) error {
	t, err := DecodeTitle(ev)
	if err != nil {
		return s.skip(ctx, ev, err)
	}
	_, err = s.store.ApplyTitle(ctx, tx, t)
	return err
}

// HandleViewingEvent is the events.Handler of the playback events: it folds
// the event into the viewing projection in tx (see domain.Apply). Unusable
// data is logged, counted and acknowledged.
func (s *Service) HandleViewingEvent(ctx context.Context, tx *storage.Tx, ev events.Event) error {
	v, err := DecodeViewing(ev)
	if err != nil {
		return s.skip(ctx, ev, err)
	}
	_, _, err = s.store.ApplyViewing(ctx, tx, v)
	return err
}

func (s *Service) skip(ctx context.Context, ev events.Event, err error) error {
	s.skipped.WithLabelValues(ev.Subject).Inc()
	s.log.WarnContext(ctx, "recommendations: skipping an event it cannot use", "subject", ev.Subject, "id", ev.ID, "err", err)
	return nil
}

// DecodeTitle reads a title_upserted event: its data is a
// marquee.catalog.v1.Title in protojson (unknown fields ignored). The id
// must be a well-formed title id. The event time orders upserts.
func DecodeTitle(ev events.Event) (domain.Title, error) {
	var p catalogv1.Title
	if err := ev.Decode(&p); err != nil {
		return domain.Title{}, fmt.Errorf("%w: %w", ErrUnusableEvent, err)
	}
	if !catalogdomain.ValidID(p.GetId()) {
		return domain.Title{}, fmt.Errorf("%w: title id %q", ErrUnusableEvent, clip(p.GetId()))
	}
	t := domain.Title{
		ID:         p.GetId(),
		Name:       p.GetName(),
		Kind:       p.GetKind(),
		ArtworkURL: p.GetArtworkUrl(),
		Rating:     catalogdomain.Rating(p.GetMaturityRating()),
		Year:       int(p.GetYear()),
		Available:  p.GetAvailable(),
		Version:    eventTime(ev),
	}
	for _, g := range p.GetGenres() {
		if g = strings.TrimSpace(g); g != "" && !strings.Contains(g, ",") {
			t.Genres = append(t.Genres, g)
		}
	}
	if p.GetAvailableFrom() != nil && p.GetAvailableFrom().IsValid() {
		t.AvailableFrom = p.GetAvailableFrom().AsTime()
	}
	if p.GetAvailableUntil() != nil && p.GetAvailableUntil().IsValid() {
		t.AvailableUntil = p.GetAvailableUntil().AsTime()
	}
	var lastSeason, lastEpisode int32 = math.MinInt32, math.MinInt32
	for _, se := range p.GetSeasons() {
		for _, e := range se.GetEpisodes() {
			if se.GetNumber() > lastSeason || (se.GetNumber() == lastSeason && e.GetNumber() > lastEpisode) {
				lastSeason, lastEpisode, t.LastEpisodeID = se.GetNumber(), e.GetNumber(), e.GetId()
			}
		}
	}
	return t, nil
}

// DecodeViewing reads a playback event. The kind comes from the subject
// (started, progress, completed; stopped counts as progress). The data is
// a JSON object of which it relies on:
//
//	profile_id        required, a well-formed id
//	title_id          required, a well-formed id (for a series, the series)
//	account_id        optional
//	episode_id        optional, the episode playing
//	position_seconds  optional, a number or a numeric string (int64 in protojson)
//	duration_seconds  optional, likewise
//
// lowerCamelCase spellings (profileId, ...) are accepted too; other fields
// are ignored. The event's time (ce-time) is when it happened.
func DecodeViewing(ev events.Event) (domain.ViewingEvent, error) {
	var kind domain.EventKind
	switch ev.Subject {
	case PlaybackStartedSubject:
		kind = domain.Started
	case PlaybackProgressSubject, PlaybackStoppedSubject:
		kind = domain.Progress
	case PlaybackCompletedSubject:
		kind = domain.Completed
	default:
		return domain.ViewingEvent{}, fmt.Errorf("%w: subject %q is not a viewing event", ErrUnusableEvent, ev.Subject)
	}
	var data map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	if err := dec.Decode(&data); err != nil || data == nil {
		return domain.ViewingEvent{}, fmt.Errorf("%w: data is not a JSON object", ErrUnusableEvent)
	}
	v := domain.ViewingEvent{Kind: kind, At: eventTime(ev)}
	var errs []error
	str := func(snake, camel string) string {
		raw, ok := data[snake]
		if !ok {
			raw, ok = data[camel]
		}
		if !ok || string(raw) == "null" {
			return ""
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			errs = append(errs, fmt.Errorf("%s is not a string", snake))
		}
		return s
	}
	num := func(snake, camel string) int {
		raw, ok := data[snake]
		if !ok {
			raw, ok = data[camel]
		}
		if !ok {
			return 0
		}
		n, err := seconds(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", snake, err))
		}
		return n
	}
	v.ProfileID = str("profile_id", "profileId")
	v.TitleID = str("title_id", "titleId")
	v.AccountID = str("account_id", "accountId")
	v.EpisodeID = str("episode_id", "episodeId")
	v.Position = num("position_seconds", "positionSeconds")
	v.Duration = num("duration_seconds", "durationSeconds")
	if !catalogdomain.ValidID(v.ProfileID) {
		errs = append(errs, fmt.Errorf("profile_id %q is not an id", clip(v.ProfileID)))
	}
	if !catalogdomain.ValidID(v.TitleID) {
		errs = append(errs, fmt.Errorf("title_id %q is not an id", clip(v.TitleID)))
	}
	if len(v.AccountID) > 128 || len(v.EpisodeID) > 128 {
		errs = append(errs, errors.New("account_id or episode_id over 128 bytes"))
	}
	if err := errors.Join(errs...); err != nil {
		return domain.ViewingEvent{}, fmt.Errorf("%w: %w", ErrUnusableEvent, err)
	}
	return v, nil
}

// seconds reads a count of seconds: a JSON number (a fraction is cut), a
// numeric string, or null; negative values are 0 and huge ones are capped.
func seconds(raw json.RawMessage) (int, error) {
	var f float64
	switch {
	case string(raw) == "null":
		return 0, nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", clip(s))
		}
		f = v
	default:
		if err := json.Unmarshal(raw, &f); err != nil {
			return 0, errors.New("not a number")
		}
	}
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0, nil
	case f > math.MaxInt32:
		return math.MaxInt32, nil
	}
	return int(f), nil
}

// eventTime is when ev happened: its ce-time, or now when it has none.
func eventTime(ev events.Event) time.Time {
	if ev.Time.IsZero() {
		return time.Now().UTC()
	}
	return ev.Time.UTC()
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
