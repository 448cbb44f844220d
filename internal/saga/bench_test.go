package saga_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/platform/storage/storagetest"
	"github.com/marquee-tv/marquee/internal/saga"
)

// BenchmarkThroughput measures the orchestrator alone: sagas of two
// compensatable-then-pivot steps whose participants answer at once, each
// created in its own transaction by one of 32 concurrent callers. It
// reports completed sagas per second.
func BenchmarkThroughput(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var db *storage.DB
			if backend == "sqlite" {
				db = storagetest.OpenSQLite(b, "sagabench", storage.Migrations{})
			} else {
				db = storagetest.OpenPostgres(b, "sagabench", storage.Migrations{})
			}
			ctx := context.Background()
			if err := saga.Migrate(ctx, db); err != nil {
				b.Fatal(err)
			}
			var done atomic.Int64
			finished := make(chan struct{}, 1)
			var target atomic.Int64
			ok := func(context.Context, saga.Call[order]) ([]byte, error) { return []byte(`{"id":"x"}`), nil }
			def := saga.MustDefine("bench", []saga.Step[order]{
				{Name: "charge", Class: saga.Compensatable, Action: ok, Compensation: ok},
				{Name: "grant", Class: saga.Pivot, Action: ok, Compensation: ok},
			}, saga.DefinitionOptions[order]{AfterFinish: func(saga.Finish[order]) {
				if done.Add(1) == target.Load() {
					finished <- struct{}{}
				}
			}})
			e, err := saga.New(db, saga.Options{Concurrency: 64, Registerer: prometheus.NewRegistry()}, def)
			if err != nil {
				b.Fatal(err)
			}
			run(b, e)
			target.Store(int64(b.N))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var next atomic.Int64
			for w := range 32 {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("b%d-%d", w, i)
						if err := db.InTx(ctx, func(tx *storage.Tx) error { return e.Create(ctx, tx, def, id, order{ID: id}) }); err != nil {
							b.Error(err)
							return
						}
						e.Notify(id)
					}
				})
			}
			wg.Wait()
			select {
			case <-finished:
			case <-time.After(2 * time.Minute):
				b.Fatalf("%d of %d sagas finished", done.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sagas/s")
		})
	}
}
