package saga

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
)

// TestStaleOwnerWriteRefused: owner A drives a saga, stalls past its
// lease, and B takes it over. A's renewal and its write of the step's
// outcome are both refused, and B's progress stands.
func TestStaleOwnerWriteRefused(t *testing.T) {
	storagetest.ForEach(t, "sagafence", storage.Migrations{}, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		ok := func(context.Context, Call[struct{}]) ([]byte, error) { return []byte(`"ok"`), nil }
		def := MustDefine("fence", []Step[struct{}]{
			{Name: "one", Class: Compensatable, Action: ok, Compensation: ok},
			{Name: "two", Class: Pivot, Action: ok},
		}, DefinitionOptions[struct{}]{})
		a, err := New(db, Options{Owner: "A", Lease: time.Minute}, def)
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(db, Options{Owner: "B", Lease: time.Minute}, def)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *storage.Tx) error { return a.Create(ctx, tx, def, "s1", struct{}{}) }); err != nil {
			t.Fatal(err)
		}
		stale := &run{row: a.fresh["s1"].row, def: def.def(), outputs: map[int][]byte{}}

		// B cannot take a saga whose lease is live.
		if r, err := b.claim(ctx, "s1", false); err != nil || r != nil {
			t.Fatalf("B claim under A's live lease = %v, %v, want nothing", r, err)
		}
		// A stalls past its lease; B takes over.
		if _, err := db.Exec(ctx, `UPDATE marquee_saga SET lease_until = $1 WHERE id = 's1'`, ts(time.Now().Add(-time.Second))); err != nil {
			t.Fatal(err)
		}
		taken, err := b.claim(ctx, "s1", false)
		if err != nil || taken == nil {
			t.Fatalf("B claim after expiry = %v, %v, want the saga", taken, err)
		}
		if taken.row.token != 2 || taken.row.owner != "B" || taken.row.attempts != 2 {
			t.Fatalf("after takeover token=%d owner=%s attempts=%d, want 2, B, 2", taken.row.token, taken.row.owner, taken.row.attempts)
		}

		// A wakes up: its step outcome write is refused and changes nothing.
		err = a.commit(ctx, stale, a.next(stale, []byte(`"ok"`), nil, false))
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("stale owner's commit = %v, want ErrFenced", err)
		}
		lost := make(chan error, 1)
		stop := make(chan struct{})
		a.opts.Lease = 30 * time.Millisecond // renew at once
		go a.renew(ctx, "s1", 1, stop, func(cause error) { lost <- cause })
		select {
		case cause := <-lost:
			if !errors.Is(cause, errLeaseLost) {
				t.Errorf("stale renewal cause = %v, want errLeaseLost", cause)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("stale owner's renewal did not notice the takeover")
		}
		close(stop)
		row, err := loadSaga(ctx, db, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if row.owner != "B" || row.token != 2 || row.step != 0 || row.state != StateRunning {
			t.Fatalf("after the refused write: owner=%s token=%d step=%d state=%s, want B, 2, 0, running", row.owner, row.token, row.step, row.state)
		}
		// B's own write goes through.
		if err := b.commit(ctx, taken, b.next(taken, []byte(`"ok"`), nil, false)); err != nil {
			t.Fatalf("owner's commit = %v", err)
		}
		if row, _ := loadSaga(ctx, db, "s1"); row.step != 1 {
			t.Errorf("after B's write step = %d, want 1", row.step)
		}
		// An operator action fences B off in turn.
		if _, err := b.ForceCompensate(ctx, "s1", "ops", "test"); err != nil {
			t.Fatal(err)
		}
		err = b.commit(ctx, taken, b.next(taken, []byte(`"ok"`), nil, false))
		if !errors.Is(err, ErrFenced) {
			t.Errorf("commit after an operator took the saga = %v, want ErrFenced", err)
		}
	})
}
