package saga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/saga"
)

func TestDefineRejectsBadDefinitions(t *testing.T) {
	fn := func(context.Context, saga.Call[order]) ([]byte, error) { return nil, nil }
	comp := func(name string) saga.Step[order] {
		return saga.Step[order]{Name: name, Class: saga.Compensatable, Action: fn, Compensation: fn}
	}
	pivot := saga.Step[order]{Name: "pivot", Class: saga.Pivot, Action: fn}
	retriable := saga.Step[order]{Name: "after", Class: saga.Retriable, Action: fn}
	readOnly := saga.Step[order]{Name: "look", Class: saga.ReadOnly, Action: fn}
	tests := []struct {
		name  string
		def   string
		steps []saga.Step[order]
		ok    bool
	}{
		{"full", "ok", []saga.Step[order]{readOnly, comp("a"), pivot, retriable}, true},
		{"no pivot", "ok", []saga.Step[order]{comp("a"), comp("b")}, true},
		{"pivot only", "ok", []saga.Step[order]{pivot}, true},
		{"bad name", "Bad Name", []saga.Step[order]{pivot}, false},
		{"no steps", "x", nil, false},
		{"duplicate step", "x", []saga.Step[order]{comp("a"), comp("a")}, false},
		{"compensation name clashes", "x", []saga.Step[order]{{Name: "a", Class: saga.Compensatable, Action: fn, Compensation: fn, CompensationName: "b"}, comp("b")}, false},
		{"no action", "x", []saga.Step[order]{{Name: "a", Class: saga.Pivot}}, false},
		{"no class", "x", []saga.Step[order]{{Name: "a", Action: fn}}, false},
		{"compensatable without compensation", "x", []saga.Step[order]{{Name: "a", Class: saga.Compensatable, Action: fn}}, false},
		{"read-only with compensation", "x", []saga.Step[order]{{Name: "a", Class: saga.ReadOnly, Action: fn, Compensation: fn}}, false},
		{"two pivots", "x", []saga.Step[order]{pivot, {Name: "p2", Class: saga.Pivot, Action: fn}}, false},
		{"retriable without pivot", "x", []saga.Step[order]{comp("a"), retriable}, false},
		{"retriable before pivot", "x", []saga.Step[order]{retriable, pivot}, false},
		{"compensatable after pivot", "x", []saga.Step[order]{pivot, comp("a")}, false},
		{"read-only after pivot", "x", []saga.Step[order]{pivot, readOnly}, false},
		{"retriable with compensation", "x", []saga.Step[order]{pivot, {Name: "r", Class: saga.Retriable, Action: fn, Compensation: fn}}, false},
		{"negative timeout", "x", []saga.Step[order]{{Name: "a", Class: saga.Pivot, Action: fn, Timeout: -time.Second}}, false},
	}
	for _, tt := range tests {
		_, err := saga.Define(tt.def, tt.steps, saga.DefinitionOptions[order]{})
		if (err == nil) != tt.ok {
			t.Errorf("Define(%s) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, saga.ErrInvalidDefinition) {
			t.Errorf("Define(%s) = %v, want it to wrap ErrInvalidDefinition", tt.name, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := saga.RetryPolicy{MaxAttempts: 10, Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 9: time.Second} {
		if got := p.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v, want %v", n, got, want)
		}
	}
	p.Jitter = 0.5
	for range 100 {
		if got := p.Backoff(3); got < 200*time.Millisecond || got > 400*time.Millisecond {
			t.Fatalf("Backoff(3) with jitter 0.5 = %v, want within [200ms, 400ms]", got)
		}
	}
}

func TestCreateChecksItsInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		other := saga.MustDefine("other", []saga.Step[order]{{Name: "x", Class: saga.Pivot, Action: p.fn("x", "a")}}, saga.DefinitionOptions[order]{})
		e, err := saga.New(db, saga.Options{}, def)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tests := []struct {
			name string
			def  saga.Definer
			id   string
			data any
			want error
		}{
			{"unregistered definition", other, "s1", order{}, saga.ErrUnknownDefinition},
			{"bad id", def, "a/b", order{}, nil},
			{"empty id", def, "", order{}, nil},
			{"wrong data type", def, "s1", "text", nil},
		}
		for _, tt := range tests {
			err := db.InTx(ctx, func(tx *storage.Tx) error { return e.Create(ctx, tx, tt.def, tt.id, tt.data) })
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Create(%s) = %v, want an error (%v)", tt.name, err, tt.want)
			}
		}
		create(t, db, e, def, "s1", false)
		err = db.InTx(ctx, func(tx *storage.Tx) error { return e.Create(ctx, tx, def, "s1", &order{ID: "s1"}) })
		if !errors.Is(err, saga.ErrExists) {
			t.Errorf("Create(duplicate) = %v, want ErrExists", err)
		}
		// A creating transaction that rolls back leaves no saga.
		_ = db.InTx(ctx, func(tx *storage.Tx) error {
			if err := e.Create(ctx, tx, def, "s2", order{}); err != nil {
				return err
			}
			return errBoom
		})
		if _, err := e.Get(ctx, "s2"); !errors.Is(err, saga.ErrNotFound) {
			t.Errorf("Get(rolled back) = %v, want ErrNotFound", err)
		}
	})
}

func TestListPages(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *storage.DB) {
		p, f := newParticipant(), &finishes{}
		def := purchase(p, f, "a")
		p.on("reserve", func(context.Context, saga.Call[order]) error { return saga.Fail("no_stock", nil) })
		e := start(t, db, saga.Options{}, def)
		ids := []string{"s1", "s2", "s3", "s4", "s5"}
		for _, id := range ids {
			create(t, db, e.Engine, def, id, true)
			time.Sleep(2 * time.Millisecond) // distinct creation times
		}
		for _, id := range ids {
			waitFor(t, e.Engine, id, saga.StateRejected)
		}
		var got []string
		tok := ""
		for range 10 {
			page, next, err := e.List(context.Background(), saga.ListOptions{Limit: 2, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				got = append(got, s.ID)
			}
			if tok = next; tok == "" {
				break
			}
		}
		if want := []string{"s5", "s4", "s3", "s2", "s1"}; !equal(got, want) {
			t.Errorf("List pages = %v, want %v (newest first)", got, want)
		}
		page, _, err := e.List(context.Background(), saga.ListOptions{State: saga.StateCompleted})
		if err != nil || len(page) != 0 {
			t.Errorf("List(completed) = %d sagas, %v, want 0", len(page), err)
		}
		if _, _, err := e.List(context.Background(), saga.ListOptions{PageToken: "garbage!"}); !errors.Is(err, saga.ErrBadPageToken) {
			t.Errorf("List(bad token) = %v, want ErrBadPageToken", err)
		}
	})
}

func FuzzDecodePageToken(f *testing.F) {
	f.Add(saga.EncodePageToken(time.Now(), "s1"))
	f.Add("")
	f.Add("fA|")
	f.Fuzz(func(t *testing.T, tok string) {
		at, id, err := saga.DecodePageToken(tok)
		if err != nil {
			return
		}
		// A token that decodes re-encodes to one that decodes the same.
		at2, id2, err := saga.DecodePageToken(saga.EncodePageToken(at, id))
		if err != nil || !at2.Equal(at) || id2 != id {
			t.Fatalf("round trip of %q = %v %q %v, want %v %q", tok, at2, id2, err, at, id)
		}
	})
}
