package sagachaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	playbackv1 "github.com/marquee-tv/marquee/gen/marquee/playback/v1"
)

// The fault-injection test of the CreateOrder saga (PRODUCT §5): the built
// binary runs under `marquee dev`; orders are placed over gRPC at a steady
// rate, with the product's test cards, plans and rentals (the withdrawn
// title among them), retried and re-sent with their Idempotency-Key; orders,
// billing and playback are killed with SIGKILL at random instants and
// restarted by the supervisor; participant calls are replayed to billing
// and playback duplicated and out of order, for sagas the engine ran and
// for sagas it never ran; then, once every process is healthy again, every
// saga must end, and Check finds no broken invariant in the databases.
//
// Environment (all optional):
//
//	MARQUEE_CHAOS_ORDERS    orders to place (default 1500)
//	MARQUEE_CHAOS_SEED      seed of the workload and of the kill schedule (default: the clock; printed)
//	MARQUEE_CHAOS_RATE      orders placed per second (default 50)
//	MARQUEE_CHAOS_CLIENTS   concurrent clients (default 16)
//	MARQUEE_CHAOS_KILL      interval between kills, min-max (default 500ms-2s); "off" kills nothing
//	MARQUEE_CHAOS_DRAIN     bound on the wait for every saga to end (default 200s)
//	MARQUEE_CHAOS_BINARY    a marquee binary to run (default: built from this module)
//	MARQUEE_TEST_POSTGRES   also run on this PostgreSQL server, in a private schema
//	MARQUEE_CHAOS_POSTGRES_ORDERS  orders of the PostgreSQL run (default 1000)
//
// A seed reproduces the workload (accounts, cards, kinds, duplicates, replays)
// and the kill schedule (targets and intervals); the instants at which
// processes die relative to the sagas depend on timing and differ between
// runs.

type config struct {
	orders           int
	seed             uint64
	rate             float64
	clients          int
	killMin, killMax time.Duration
	drain            time.Duration
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func loadConfig(t *testing.T) config {
	c := config{
		orders:  envInt(t, "MARQUEE_CHAOS_ORDERS", 1500),
		seed:    uint64(time.Now().UnixNano()) % 1_000_000_000,
		rate:    float64(envInt(t, "MARQUEE_CHAOS_RATE", 50)),
		clients: envInt(t, "MARQUEE_CHAOS_CLIENTS", 16),
		killMin: 500 * time.Millisecond, killMax: 2 * time.Second,
		drain: envDuration(t, "MARQUEE_CHAOS_DRAIN", 200*time.Second),
	}
	if v := os.Getenv("MARQUEE_CHAOS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("MARQUEE_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		c.seed = n
	}
	switch v := os.Getenv("MARQUEE_CHAOS_KILL"); v {
	case "":
	case "off":
		c.killMin, c.killMax = 0, 0
	default:
		lo, hi, ok := strings.Cut(v, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if !ok || err1 != nil || err2 != nil || a <= 0 || b < a {
			t.Fatalf("MARQUEE_CHAOS_KILL=%q: want min-max durations (500ms-2s) or off", v)
		}
		c.killMin, c.killMax = a, b
	}
	return c
}

func TestCreateOrderSagaUnderChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system under fault injection for a few minutes; skipped with -short")
	}
	cfg := loadConfig(t)
	bin := os.Getenv("MARQUEE_CHAOS_BINARY")
	if bin == "" {
		var err error
		if bin, err = Build(context.Background(), t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	// The two runs overlap: most of a run is spent waiting for sagas to
	// resume once the faults stop.
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runChaos(t, cfg, bin, "")
	})
	pg := os.Getenv("MARQUEE_TEST_POSTGRES")
	if pg == "" {
		t.Log("PostgreSQL run skipped: MARQUEE_TEST_POSTGRES is unset")
		return
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.orders = envInt(t, "MARQUEE_CHAOS_POSTGRES_ORDERS", 1000)
		ctx := context.Background()
		schema := fmt.Sprintf("sagachaos_%d_%d", os.Getpid(), cfg.seed)
		url, cleanup, err := PreparePostgres(ctx, pg, schema)
		if err != nil {
			t.Fatalf("PostgreSQL at MARQUEE_TEST_POSTGRES: %v", err)
		}
		t.Cleanup(func() {
			if err := cleanup(context.Background()); err != nil {
				t.Errorf("drop schema %s: %v", schema, err)
			}
		})
		runChaos(t, c, bin, url)
	})
}

// dial opens a client connection that reconnects quickly to a restarted
// server.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// run is one chaos run: the system, its clients and what the run saw.
type run struct {
	t       *testing.T
	cfg     config
	sys     *System
	dbs     *DBs
	orders  ordersv1.OrdersServiceClient
	billing billingv1.BillingServiceClient
	play    playbackv1.PlaybackServiceClient
	catalog catalogv1.CatalogServiceClient

	rentable []string // rentable, available titles

	placed  *placed
	ledger  *ledger
	kills   *kills
	replays sync.WaitGroup // replayed deliveries still being sent
}

func runChaos(t *testing.T, cfg config, bin, postgresURL string) {
	began := time.Now()
	t.Logf("seed %d (MARQUEE_CHAOS_SEED=%d reproduces this workload and kill schedule); %d orders at %.0f/s by %d clients; kills every %s-%s",
		cfg.seed, cfg.seed, cfg.orders, cfg.rate, cfg.clients, cfg.killMin, cfg.killMax)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys, err := Start(ctx, Options{Binary: bin, DataDir: t.TempDir(), PostgresURL: postgresURL})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			sys.Close()
		}
	})
	dbs, err := OpenDBs(sys.DataDir(), postgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dbs.Close()
	r := &run{
		t: t, cfg: cfg, sys: sys, dbs: dbs,
		orders:  ordersv1.NewOrdersServiceClient(dial(t, sys.Instance("orders").GRPC)),
		billing: billingv1.NewBillingServiceClient(dial(t, sys.Instance("billing").GRPC)),
		play:    playbackv1.NewPlaybackServiceClient(dial(t, sys.Instance("playback").GRPC)),
		catalog: catalogv1.NewCatalogServiceClient(dial(t, sys.Instance("catalog").GRPC)),
		placed:  newPlaced(),
		ledger:  newLedger(),
		kills:   &kills{},
	}
	if r.rentable, err = rentableTitles(ctx, r.catalog); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	work := makeWorkload(rng, cfg.orders, r.rentable)
	t.Logf("system ready in %s; workload: %d accounts, %d orders (%s)", time.Since(began).Round(time.Millisecond), len(work), cfg.orders, work.describe())

	// Chaos: place the orders, kill processes, replay participant calls.
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaos sync.WaitGroup
	if cfg.killMax > 0 {
		chaos.Go(func() { r.killLoop(chaosCtx, rand.New(rand.NewPCG(cfg.seed, 2))) })
	}
	chaos.Go(func() { r.replayLoop(chaosCtx, rand.New(rand.NewPCG(cfg.seed, 3))) })
	placeStart := time.Now()
	budget := time.Duration(float64(cfg.orders)/cfg.rate*3*float64(time.Second)) + time.Minute
	placeCtx, placeDone := context.WithTimeout(ctx, budget)
	r.place(placeCtx, work)
	placeDone()
	placing := time.Since(placeStart)
	if placing > budget {
		t.Errorf("placing %d orders took longer than %s: the system does not keep up under these faults", cfg.orders, budget)
	}
	// Keep the faults coming a little longer, so the last sagas meet them too.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
	}
	stopChaos()
	chaos.Wait()
	t.Logf("placed %d orders in %s (%d CreateOrder calls retried); %s",
		r.placed.count(), placing.Round(time.Millisecond), r.placed.retries.Load(), r.kills.summary())

	// Recovery: every process healthy again, every saga ends.
	if err := sys.WaitReady(ctx, 60*time.Second, "orders", "billing", "playback"); err != nil {
		t.Fatal(err)
	}
	drainStart := time.Now()
	if err := r.drain(ctx); err != nil {
		t.Error(err)
	}
	t.Logf("every saga ended %s after the faults stopped", time.Since(drainStart).Round(time.Millisecond))

	// Duplicates after the fact, fresh sagas answered out of order, and
	// the same Idempotency-Key answering the same order.
	r.replayFinished(ctx, rand.New(rand.NewPCG(cfg.seed, 4)))
	r.freshScenarios(ctx, rand.New(rand.NewPCG(cfg.seed, 5)), 24)
	r.resendKeys(ctx, rand.New(rand.NewPCG(cfg.seed, 6)))
	r.replays.Wait()

	if err := sys.Stop(40 * time.Second); err != nil {
		t.Errorf("stopping marquee dev: %v", err)
	}
	stopped = true

	snap, err := dbs.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep := Check(snap)
	var extra []string
	extra = append(extra, r.placed.verify(snap)...)
	extra = append(extra, r.ledger.verify(snap)...)
	for file, what := range sys.Panics() {
		extra = append(extra, fmt.Sprintf("%s: %s", file, what))
	}
	sort.Strings(extra)
	rep.Violations = append(rep.Violations, extra...)

	t.Logf("seed %d: %d sagas; kills %s; duplicates replayed %s; second plan orders refused ORDER_IN_PROGRESS %d, accepted %d; orders the faults failed: %s; CreateOrder answered INTERNAL (retried): %v; run took %s\n%s",
		cfg.seed, rep.Sagas, r.kills.summary(), r.ledger.summary(), r.placed.inProgress, r.placed.secondAccepted, r.placed.faultFailures(snap), r.placed.internal,
		time.Since(began).Round(time.Second), rep.Summary())
	if n := len(rep.Violations); n > 0 {
		t.Errorf("%d violations (seed %d); the end of each process's log:\n%s", n, cfg.seed, sys.ChildLogs(20))
	}
	if cfg.killMax > 0 && r.kills.total() == 0 {
		t.Error("no process was killed: the run injected no fault")
	}
	if rep.Sagas < cfg.orders {
		t.Errorf("%d sagas for %d orders placed", rep.Sagas, cfg.orders)
	}
}

// drain waits, within cfg.drain, until no saga is running or compensating.
func (r *run) drain(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.drain)
	last := time.Now()
	for {
		states, err := r.dbs.SagaStates(ctx)
		if err == nil && states["running"] == 0 && states["compensating"] == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sagas still unfinished %s after the faults stopped: %v (%v)", r.cfg.drain, states, err)
		}
		if time.Since(last) > 15*time.Second {
			r.t.Logf("waiting for sagas to end: %v", states)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// rentableTitles lists the catalog's rentable titles available now.
func rentableTitles(ctx context.Context, c catalogv1.CatalogServiceClient) ([]string, error) {
	var ids []string
	token := ""
	for {
		resp, err := c.ListTitles(ctx, &catalogv1.ListTitlesRequest{PageSize: 100, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("catalog ListTitles: %w", err)
		}
		for _, t := range resp.GetTitles() {
			if t.GetRentable() && t.GetAvailable() {
				ids = append(ids, t.GetId())
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("the catalog has no rentable title available now")
	}
	sort.Strings(ids)
	return ids, nil
}
