// Package events is Marquee's event bus: domain events written through a
// transactional outbox, relayed to NATS JetStream, and handled by idempotent
// consumers.
//
// The life of an event:
//
//  1. A service calls Publish inside the local transaction that changes its
//     state, so the event row (table marquee_outbox) commits or rolls back
//     with the change.
//  2. Its Relay reads unpublished rows in commit-visible seq order and
//     publishes each to the stream MARQUEE (see EnsureStream) on subject
//     marquee.<service>.<event>, as a CloudEvents 1.0 binary-mode message
//     whose Nats-Msg-Id is the event id, then marks the row published. When
//     NATS is down, rows wait in the table and the relay retries with backoff.
//     A row published twice (a relay that died between publishing and
//     marking) is dropped by the stream's duplicate window.
//  3. A Consumer (durable JetStream consumer, explicit ack) runs, in one local
//     transaction of the consuming service, the insert of (consumer, event id)
//     into marquee_inbox and the handler; an event id seen before is
//     acknowledged without calling the handler, so every handler effect
//     happens once however often the event is delivered.
//
// Both tables are created in every service database by package storage.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// SubjectPrefix starts every event subject: marquee.<service>.<event>.
const SubjectPrefix = "marquee."

// MaxDataSize bounds an event's JSON data, well under NATS's default 1 MiB
// payload limit, so that a row the relay cannot publish is refused at write
// time instead of blocking the outbox.
const MaxDataSize = 512 << 10

// ErrInvalidEvent reports an event that cannot be written: a malformed
// subject, a missing attribute, or data that is not JSON. Errors returned by
// Publish and NewEvent for such events wrap it.
var ErrInvalidEvent = errors.New("events: invalid event")

// Event is a domain event: a NATS subject, the CloudEvents 1.0 context
// attributes, and JSON data.
type Event struct {
	// Subject is the NATS subject, marquee.<service>.<event>, for example
	// marquee.playback.progress.
	Subject string
	// ID is the CloudEvents id, unique per event; Publish fills a random
	// UUID when it is empty. Consumers deduplicate on it.
	ID string
	// Source is the CloudEvents source; Publish derives marquee/<service>
	// from Subject when it is empty.
	Source string
	// Type is the CloudEvents type; Publish uses Subject when it is empty
	// (for example marquee.catalog.title_upserted).
	Type string
	// Time is when the event happened; Publish uses the current time when
	// it is zero. It is kept in UTC at microsecond precision.
	Time time.Time
	// Entity is the CloudEvents subject: the id of the entity the event is
	// about (a title id, an order id). It may be empty.
	Entity string
	// Data is the JSON payload.
	Data []byte
	// TraceParent is the W3C traceparent of the span that produced the
	// event, if any; Publish takes it from the context.
	TraceParent string
}

var subjectRE = regexp.MustCompile(`^marquee(\.[A-Za-z0-9_-]+){2,}$`)

// ServiceOf returns the <service> token of an event subject
// marquee.<service>.<event>, or "" when subject has no such token.
func ServiceOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return ""
	}
	svc, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	return svc
}

// NewEvent builds an event on subject about entity, with a fresh id, the
// current time, and payload marshalled as JSON: a proto.Message with
// protojson (proto field names, as the HTTP API uses), []byte or
// json.RawMessage as given, and anything else with encoding/json.
func NewEvent(subject, entity string, payload any) (Event, error) {
	data, err := MarshalData(payload)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Subject: subject, Entity: entity, Data: data}
	if err := ev.normalize(time.Now()); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// MarshalData encodes payload as event data (see NewEvent).
func MarshalData(payload any) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	switch p := payload.(type) {
	case proto.Message:
		b, err = protojson.MarshalOptions{UseProtoNames: true}.Marshal(p)
	case json.RawMessage:
		b = p
	case []byte:
		b = p
	default:
		b, err = json.Marshal(p)
	}
	if err != nil {
		return nil, fmt.Errorf("events: marshal data: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: data is not valid JSON", ErrInvalidEvent)
	}
	return b, nil
}

// Decode unmarshals the event's data into v: a proto.Message with protojson
// (unknown fields ignored, so producers may add fields), anything else with
// encoding/json.
func (e Event) Decode(v any) error {
	var err error
	if m, ok := v.(proto.Message); ok {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(e.Data, m)
	} else {
		err = json.Unmarshal(e.Data, v)
	}
	if err != nil {
		return fmt.Errorf("events: decode %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// normalize fills defaults and validates e.
func (e *Event) normalize(now time.Time) error {
	if !subjectRE.MatchString(e.Subject) {
		return fmt.Errorf("%w: subject %q is not marquee.<service>.<event>", ErrInvalidEvent, e.Subject)
	}
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.Source == "" {
		e.Source = "marquee/" + ServiceOf(e.Subject)
	}
	if e.Type == "" {
		e.Type = e.Subject
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	switch {
	case len(e.Data) > MaxDataSize:
		return fmt.Errorf("%w: %s data is %d bytes, over %d", ErrInvalidEvent, e.Subject, len(e.Data), MaxDataSize)
	case !json.Valid(e.Data):
		return fmt.Errorf("%w: %s data is not valid JSON", ErrInvalidEvent, e.Subject)
	}
	return nil
}
