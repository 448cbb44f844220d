package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/typepb"

	"github.com/marquee-tv/marquee/internal/platform/events"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

func TestNewEventDefaults(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Microsecond)
	ev, err := events.NewEvent("marquee.catalog.title_upserted", "tt-1", map[string]int{"year": 1999})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(ev.ID); err != nil {
		t.Errorf("ID = %q, want a UUID", ev.ID)
	}
	if ev.Source != "marquee/catalog" {
		t.Errorf("Source = %q, want marquee/catalog", ev.Source)
	}
	if ev.Type != "marquee.catalog.title_upserted" {
		t.Errorf("Type = %q, want marquee.catalog.title_upserted", ev.Type)
	}
	if ev.Time.Before(before) || ev.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want a UTC time not before %v", ev.Time, before)
	}
	if string(ev.Data) != `{"year":1999}` {
		t.Errorf("Data = %s, want {\"year\":1999}", ev.Data)
	}
}

func TestNewEventRefusesInvalid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		subject string
		payload any
	}{
		{"no prefix", "catalog.title_upserted", 1},
		{"no event token", "marquee.catalog", 1},
		{"wildcard", "marquee.catalog.*", 1},
		{"empty token", "marquee..title", 1},
		{"space", "marquee.catalog.title upserted", 1},
		{"raw data not JSON", "marquee.catalog.title_upserted", []byte("{")},
		{"too large", "marquee.catalog.title_upserted", json.RawMessage(`"` + strings.Repeat("x", events.MaxDataSize) + `"`)},
	} {
		_, err := events.NewEvent(tc.subject, "id", tc.payload)
		if !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("%s: NewEvent(%.40q) error = %v, want ErrInvalidEvent", tc.name, tc.subject, err)
		}
	}
}

func TestServiceOf(t *testing.T) {
	for in, want := range map[string]string{
		"marquee.playback.progress": "playback",
		"marquee.orders.saga.step":  "orders",
		"marquee.orders":            "",
		"other.orders.completed":    "",
	} {
		if got := events.ServiceOf(in); got != want {
			t.Errorf("ServiceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProtoDataUsesProtoNames(t *testing.T) {
	in := &typepb.Field{Name: "title", JsonName: "titleJson", TypeUrl: "type.googleapis.com/x"}
	ev, err := events.NewEvent("marquee.catalog.field", "f", in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(ev.Data, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["type_url"]; !ok {
		t.Errorf("Data = %s, want proto field names (type_url)", ev.Data)
	}
	out := &typepb.Field{}
	if err := ev.Decode(out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Errorf("Decode(%s) = %v, want %v", ev.Data, out, in)
	}
}

func TestPublishWritesRowAndRefusesBadEvents(t *testing.T) {
	storagetest.ForEach(t, "eventspublish", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		at := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
		ev := events.Event{Subject: "marquee.billing.charged", ID: "ev-1", Time: at, Entity: "ch-1", Data: []byte(`{"amount":799}`)}
		if err := db.InTx(ctx, func(tx *storage.Tx) error { return events.Publish(ctx, tx, ev) }); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		var (
			subject, typ, source, entity, data, tp string
			stored                                 time.Time
		)
		err := db.QueryRow(ctx, "SELECT subject, type, source, ce_subject, time, data, trace_parent FROM marquee_outbox WHERE id = 'ev-1'").
			Scan(&subject, &typ, &source, &entity, &stored, &data, &tp)
		if err != nil {
			t.Fatal(err)
		}
		if subject != ev.Subject || typ != ev.Subject || source != "marquee/billing" || entity != "ch-1" || data != `{"amount":799}` || tp != "" {
			t.Errorf("row = %q %q %q %q %q %q", subject, typ, source, entity, data, tp)
		}
		if want := at.UTC().Truncate(time.Microsecond); !stored.Equal(want) {
			t.Errorf("stored time = %v, want %v", stored, want)
		}

		err = db.InTx(ctx, func(tx *storage.Tx) error { return events.Publish(ctx, tx, ev) })
		if !errors.Is(err, events.ErrDuplicateEvent) {
			t.Errorf("Publish of the same id again: %v, want ErrDuplicateEvent", err)
		}
		bad := events.Event{Subject: "marquee.billing.charged", Data: []byte("not json")}
		err = db.InTx(ctx, func(tx *storage.Tx) error { return events.Publish(ctx, tx, bad) })
		if !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("Publish with bad data: %v, want ErrInvalidEvent", err)
		}
		// A rolled-back transaction leaves no event.
		rollback := errors.New("rollback")
		err = db.InTx(ctx, func(tx *storage.Tx) error {
			if err := events.Publish(ctx, tx, events.Event{Subject: "marquee.billing.charged", ID: "ev-2", Data: []byte("{}")}); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatal(err)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM marquee_outbox"); n != 1 {
			t.Errorf("outbox has %d rows, want 1", n)
		}
	})
}
