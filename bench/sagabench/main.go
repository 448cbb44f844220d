// Command sagabench measures the CreateOrder saga (PRODUCT §9): completed
// sagas per second and the latency from an order's creation to its end,
// on the whole system as `marquee dev` runs it (one OS process per
// service, participants' barriers on), driven over gRPC.
//
//	sagabench -bin PATH [-postgres URL] [-clients N] [-duration D] [-warmup W] [-profile DIR]
//
// N closed-loop clients each place a plan order for a fresh account with
// the approved test card (4242), wait until it has ended, and place the
// next. An order's end is seen by polling the orders database (read-only,
// every 10 ms) for the orders still PENDING, so that waiting costs the
// system under test next to nothing. After a warm-up of W, the sagas that
// end during D are counted; their latency is the time between the order's
// created_at and completed_at as orders recorded them (the saga's own
// span, create to terminal), and the client's view (the CreateOrder call
// to the end seen) is printed beside it. With -postgres, the services use
// a private schema on that server (dropped afterwards). With -profile,
// CPU profiles of orders, billing and playback are taken over the middle
// of the measured window and written to DIR, and the CPU each process
// used during the window is printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	billingv1 "github.com/marquee-tv/marquee/gen/marquee/billing/v1"
	ordersv1 "github.com/marquee-tv/marquee/gen/marquee/orders/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/test/sagachaos"
)

// Goal and peer figures of PRODUCT §9.
const (
	goal = 575.0
	peer = "dtm: 575 sagas/s on 4 cores with MySQL (published figure)"
)

func main() {
	bin := flag.String("bin", "", "marquee binary (built if empty)")
	pg := flag.String("postgres", "", "PostgreSQL server URL (default: SQLite)")
	clients := flag.Int("clients", 32, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "measured window")
	warmup := flag.Duration("warmup", 5*time.Second, "warm-up before the window")
	profile := flag.String("profile", "", "write CPU profiles of orders, billing and playback taken during the window to this directory")
	flag.Parse()
	if err := run(*bin, *pg, *clients, *duration, *warmup, *profile); err != nil {
		fmt.Fprintln(os.Stderr, "sagabench:", err)
		os.Exit(1)
	}
}

func run(bin, pg string, clients int, duration, warmup time.Duration, profile string) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "sagabench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if bin == "" {
		if bin, err = sagachaos.Build(ctx, work); err != nil {
			return err
		}
	}
	url := ""
	engine := "SQLite"
	if pg != "" {
		schema := fmt.Sprintf("sagabench_%d", os.Getpid())
		var cleanup func(context.Context) error
		if url, cleanup, err = sagachaos.PreparePostgres(ctx, pg, schema); err != nil {
			return err
		}
		defer func() {
			if err := cleanup(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, "sagabench: drop schema:", err)
			}
		}()
		engine = "PostgreSQL"
	}
	// Without the mesh: this measures the saga engine and its participants
	// (bench/mesh.sh measures the sidecars).
	sys, err := sagachaos.Start(ctx, sagachaos.Options{Binary: bin, DataDir: filepath.Join(work, "data"), PostgresURL: url, Extra: []string{"--mesh=off"}})
	if err != nil {
		return err
	}
	defer sys.Close()
	dbs, err := sagachaos.OpenDBs(sys.DataDir(), url)
	if err != nil {
		return err
	}
	defer dbs.Close()
	conn, err := grpc.NewClient(sys.Instance("orders").GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	orders := ordersv1.NewOrdersServiceClient(conn)

	w := &watcher{dbs: dbs, waiting: map[string]chan struct{}{}}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go w.run(wctx)

	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+duration)
	var (
		mu        sync.Mutex
		createLat []time.Duration // CreateOrder calls begun in the window
		clientLat []time.Duration // CreateOrder to end seen, orders begun in the window
		failures  atomic.Int64
		firstErr  atomic.Value
	)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(to) {
				acct := uuid.NewString()
				began := time.Now()
				cctx, cancel := context.WithTimeout(principal.NewOutgoingContext(ctx, principal.Principal{AccountID: acct, Roles: []string{principal.RoleViewer}}), 30*time.Second)
				resp, err := orders.CreateOrder(cctx, &ordersv1.CreateOrderRequest{
					PlanId: "basic", IdempotencyKey: uuid.NewString(),
					Payment: &billingv1.PaymentCard{CardNumber: "4242424242424242", ExpMonth: 12, ExpYear: int32(time.Now().Year() + 3), Cvc: "123"},
				})
				cancel()
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(100 * time.Millisecond)
					continue
				}
				created := time.Since(began)
				select {
				case <-w.register(resp.GetOrderId()):
				case <-time.After(time.Minute):
					failures.Add(1)
					firstErr.CompareAndSwap(nil, "order "+resp.GetOrderId()+" not ended after a minute")
					continue
				}
				if began.After(from) && began.Before(to) {
					mu.Lock()
					createLat = append(createLat, created)
					clientLat = append(clientLat, time.Since(began))
					mu.Unlock()
				}
			}
		})
	}

	// CPU of the processes over the window, and profiles in its middle.
	procs := []string{"orders", "billing", "playback", "catalog", "identity", "profiles", "recommendations"}
	time.Sleep(time.Until(from))
	cpu0, busy0, all0 := cpuOf(sys, procs), 0.0, 0.0
	busy0, all0 = machineCPU()
	pg0 := postgresCPU()
	commits0 := commits(ctx, pg)
	var profiles sync.WaitGroup
	if profile != "" {
		if err := os.MkdirAll(profile, 0o755); err != nil {
			return err
		}
		secs := max(1, int(duration.Seconds()/2))
		time.Sleep(duration / 4)
		for _, svc := range []string{"orders", "billing", "playback"} {
			profiles.Go(func() {
				if err := fetchProfile(sys.Instance(svc).Admin, secs, filepath.Join(profile, svc+".pprof")); err != nil {
					fmt.Fprintf(os.Stderr, "sagabench: profile of %s: %v\n", svc, err)
				}
			})
		}
	}
	time.Sleep(time.Until(to))
	cpu1 := cpuOf(sys, procs)
	busy1, all1 := machineCPU()
	pg1 := postgresCPU()
	commits1 := commits(ctx, pg)
	wg.Wait()
	profiles.Wait()

	snap, err := dbs.Snapshot(ctx)
	if err != nil {
		return err
	}
	var sagaLat []time.Duration
	done, notCompleted := 0, 0
	for _, o := range snap.Orders {
		if o.Status != "COMPLETED" {
			notCompleted++
			continue
		}
		if o.CompletedAt.After(from) && !o.CompletedAt.After(to) {
			done++
		}
		if o.CreatedAt.After(from) && o.CreatedAt.Before(to) {
			sagaLat = append(sagaLat, o.CompletedAt.Sub(o.CreatedAt))
		}
	}
	rate := float64(done) / duration.Seconds()
	fmt.Printf("engine      %s, %d clients, %s measured after %s warm-up\n", engine, clients, duration, warmup)
	fmt.Printf("completed   %d CreateOrder sagas in the window: %.0f sagas/s   (goal > %.0f/s, %.2f× the goal; peer %s)\n", done, rate, goal, rate/goal, peer)
	fmt.Printf("saga        create → completed (orders' timestamps): p50 %s  p99 %s  max %s  (%d sagas)\n", q(sagaLat, 0.50), q(sagaLat, 0.99), q(sagaLat, 1), len(sagaLat))
	fmt.Printf("client      CreateOrder call: p50 %s  p99 %s;  call to end seen (10 ms polls): p50 %s  p99 %s\n", q(createLat, 0.5), q(createLat, 0.99), q(clientLat, 0.5), q(clientLat, 0.99))
	if n := failures.Load(); n > 0 || notCompleted > 0 {
		fmt.Printf("failures    %d calls failed (first: %v); %d orders not COMPLETED\n", n, firstErr.Load(), notCompleted)
	}
	if rep := sagachaos.Check(snap); len(rep.Violations) > 0 {
		fmt.Printf("invariants  %d violations, first: %s\n", len(rep.Violations), rep.Violations[0])
	}
	window := duration.Seconds()
	var parts []string
	total := 0.0
	for _, p := range procs {
		used := (cpu1[p] - cpu0[p]) / window
		total += used
		parts = append(parts, fmt.Sprintf("%s %.2f", p, used))
	}
	server := ""
	if pg != "" {
		used := 0.0
		for pid, t := range pg1 {
			if t0, ok := pg0[pid]; ok {
				used += t - t0
			}
		}
		server = fmt.Sprintf("; PostgreSQL server processes %.2f", used/window)
	}
	fmt.Printf("cpu         cores used in the window: %s (services %.2f, %.1f ms per saga); nats %.2f; sagabench %.2f%s; the machine %.0f%% busy of %d cores (anything else included)\n",
		strings.Join(parts, ", "), total, 1000*total/max(rate, 1), (cpu1["nats"]-cpu0["nats"])/window, (cpu1["sagabench"]-cpu0["sagabench"])/window,
		server, 100*(busy1-busy0)/(all1-all0), numCPU())
	if len(commits0) > 0 && done > 0 {
		var cs []string
		for _, db := range []string{"orders", "billing", "playback"} {
			cs = append(cs, fmt.Sprintf("%s %.1f", db, float64(commits1[db]-commits0[db])/float64(done)))
		}
		fmt.Printf("commits     per completed saga (pg_stat_database, the window): %s\n", strings.Join(cs, ", "))
	}
	return sys.Stop(30 * time.Second)
}

// watcher tells clients when their orders end, by polling the orders
// still PENDING.
type watcher struct {
	dbs     *sagachaos.DBs
	mu      sync.Mutex
	waiting map[string]chan struct{}
}

func (w *watcher) register(id string) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	w.waiting[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Orders registered before the query began are either in its
		// answer or ended.
		w.mu.Lock()
		ids := make([]string, 0, len(w.waiting))
		for id := range w.waiting {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		pending, err := w.dbs.PendingPlanOrders(ctx)
		if err != nil {
			continue
		}
		w.mu.Lock()
		for _, id := range ids {
			if !pending[id] {
				close(w.waiting[id])
				delete(w.waiting, id)
			}
		}
		w.mu.Unlock()
	}
}

// q returns the p-quantile of ds.
func q(ds []time.Duration, p float64) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return s[i].Round(100 * time.Microsecond).String()
}

// cpuOf returns the CPU seconds each service's process has used, and
// those of NATS ("nats") and of this benchmark ("sagabench").
func cpuOf(sys *sagachaos.System, services []string) map[string]float64 {
	out := map[string]float64{}
	for _, svc := range services {
		for _, pid := range sys.PIDs(svc) {
			out[svc] += cpuSeconds(strconv.Itoa(pid))
		}
	}
	for _, pid := range sys.ProgramPIDs("nats") {
		out["nats"] += cpuSeconds(strconv.Itoa(pid))
	}
	out["sagabench"] = cpuSeconds("self")
	return out
}

// cpuSeconds returns the user and system CPU time of process pid.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks, 100 Hz on Linux
}

func fetchProfile(admin string, secs int, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// postgresCPU returns the CPU seconds of every PostgreSQL server process
// on the machine, by pid.
func postgresCPU() map[string]float64 {
	out := map[string]float64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			out[e.Name()] = cpuSeconds(e.Name())
		}
	}
	return out
}

// commits returns the transactions committed so far in the databases of
// orders, billing and playback on the PostgreSQL server at url (none
// without one).
func commits(ctx context.Context, url string) map[string]int64 {
	out := map[string]int64{}
	if url == "" {
		return out
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return out
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname, xact_commit FROM pg_stat_database WHERE datname IN ('marquee_orders', 'marquee_billing', 'marquee_playback')`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int64
		if rows.Scan(&name, &n) == nil {
			out[strings.TrimPrefix(name, "marquee_")] = n
		}
	}
	return out
}

// machineCPU returns the busy and total jiffies of the machine (/proc/stat).
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}
