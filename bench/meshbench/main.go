//go:build linux

// Command meshbench measures what the Marquee sidecar pair costs a gRPC
// call (PRODUCT §9): the latency it adds at a fixed rate, and the CPU and
// memory of each sidecar, beside an HAProxy mTLS pair set up the same way
// and measured in the same run.
//
//	meshbench [-bin PATH] [-rate 1000] [-duration 20s] [-warmup 3s] [-rounds 2]
//	          [-proxy-cpus LIST] [-haproxy PATH] [-profile DIR] [-keep]
//
// One process serves the upstream application (a catalog answering
// GetTitle) and generates the load. Three paths lead to the application:
// direct; through `marquee sidecar` twice (the client's sidecar, mTLS,
// the server's sidecar), with `marquee control-plane` handing them
// certificates and configuration; and through two HAProxy processes
// configured as the same pair (see haproxy.go). Each path gets one gRPC
// connection, shared by all its requests as an application's would be.
//
// Each run is an open loop: requests are due at a fixed rate whatever the
// answers' latency, each is sent at its due time on a goroutine of its
// own, and its latency counts from its due time, so a stall is never
// hidden by requests not sent (coordinated omission). After a warm-up, a
// window of -duration is measured; paths run one after another, in
// -rounds rounds with the order rotated, and the summary is the median of
// the rounds, with the latency a proxy pair adds computed against the
// direct run of the same round. The CPU of each proxy process is read
// from /proc/PID/stat over its path's measured windows, its memory from
// /proc/PID/status (VmRSS at the end of its last window, and VmHWM).
//
// With -proxy-cpus, the four proxy processes run pinned to those CPUs
// (taskset); bench/mesh.sh pins them to CPU 1 and this program to CPU 0.
// The sidecars run with Go's default GOMAXPROCS (the number of CPUs they
// may use), HAProxy with one thread. Child processes' logs stay in the
// work directory; their ends are printed when something fails.
//
// With -profile, one more run of the sidecar path, after the rounds and
// not counted in them, takes a CPU profile of each sidecar (from its admin
// address) into DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	catalogv1 "github.com/marquee-tv/marquee/gen/marquee/catalog/v1"
)

// PRODUCT §9 goals for the sidecar pair at 1,000 requests per second.
const (
	goalAddedP50 = 150 * time.Microsecond
	goalAddedP99 = 500 * time.Microsecond
	goalCPU      = 0.1 // vCPU per sidecar
	goalRSSMB    = 25  // MB (10^6 bytes) per sidecar, resident at the end of the window
)

// published are the peers' figures PRODUCT §9 quotes; they are not
// measured here.
var published = []string{
	"Istio sidecar (Envoy): 0.20 vCPU and 60 MB per sidecar",
	"Linkerd proxy: about 20 MB",
	"Dapr sidecar: 0.48 vCPU",
}

type config struct {
	bin, haproxy   string
	rate, rounds   int
	warmup, window time.Duration
	proxyCPUs      string
	profile        string
	keep           bool
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "", "marquee binary (built from ./cmd/marquee when empty)")
	flag.StringVar(&c.haproxy, "haproxy", "haproxy", "HAProxy binary")
	flag.IntVar(&c.rate, "rate", 1000, "requests per second on every path")
	flag.DurationVar(&c.window, "duration", 20*time.Second, "measured window of each run")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "load before each measured window, not measured")
	flag.IntVar(&c.rounds, "rounds", 2, "rounds of the three paths, interleaved")
	flag.StringVar(&c.proxyCPUs, "proxy-cpus", "", "pin the sidecars and HAProxy to these CPUs (taskset list, e.g. 1); empty: no pinning")
	flag.StringVar(&c.profile, "profile", "", "after the rounds, profile the sidecars' CPU during one more run, into this directory")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory (logs, configurations)")
	flag.Parse()
	if err := c.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, c)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "meshbench: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshbench:", err)
		os.Exit(1)
	}
}

func (c *config) validate() error {
	switch {
	case flag.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	case c.rate < 1 || c.rate > 100_000:
		return errors.New("-rate must be between 1 and 100000")
	case c.window < time.Second || c.window > time.Hour:
		return errors.New("-duration must be between 1s and 1h")
	case c.warmup < 0 || c.warmup > 10*time.Minute:
		return errors.New("-warmup must be between 0 and 10m")
	case c.rounds < 1 || c.rounds > 50:
		return errors.New("-rounds must be between 1 and 50")
	}
	if c.proxyCPUs != "" {
		if _, err := countCPUs(c.proxyCPUs); err != nil {
			return fmt.Errorf("-proxy-cpus: %w", err)
		}
	}
	return nil
}

// countCPUs counts the CPUs of a taskset list such as "1" or "0,2-3".
func countCPUs(list string) (int, error) {
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("%q is not a CPU list", list)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

// target is one path to the application.
type target struct {
	name    string
	client  catalogv1.CatalogServiceClient
	proxies []*proxyProc
	runs    []*result
}

func (t *target) call(ctx context.Context) error {
	_, err := t.client.GetTitle(ctx, &catalogv1.GetTitleRequest{Id: "t1"})
	return err
}

// proxyProc accumulates one proxy process's CPU and memory over its
// path's measured windows.
type proxyProc struct {
	name     string
	c        *child
	cpu      time.Duration
	wall     time.Duration
	rss, hwm int64

	cpu0 time.Duration
	t0   time.Time
	err  error
}

func (p *proxyProc) windowStart() {
	p.t0 = time.Now()
	cpu, err := cpuTime(p.c.pid())
	p.cpu0, p.err = cpu, errors.Join(p.err, err)
}

func (p *proxyProc) windowEnd() {
	cpu, err := cpuTime(p.c.pid())
	rss, hwm, merr := memory(p.c.pid())
	p.err = errors.Join(p.err, err, merr)
	p.cpu += cpu - p.cpu0
	p.wall += time.Since(p.t0)
	p.rss, p.hwm = rss, hwm
}

func (p *proxyProc) vCPU() float64 {
	if p.wall <= 0 {
		return 0
	}
	return p.cpu.Seconds() / p.wall.Seconds()
}

func run(ctx context.Context, c config) (err error) {
	// The load generator's schedule thread sleeps in a system call and
	// holds its P meanwhile: a second P keeps the requests and the
	// application running even when this process is pinned to one CPU.
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	work, err := os.MkdirTemp("", "meshbench")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Printf("work directory (kept): %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	kids := &children{dir: work, cpus: c.proxyCPUs}
	if c.proxyCPUs != "" {
		if kids.taskset, err = exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("-proxy-cpus needs taskset (util-linux): %w", err)
		}
	}
	defer kids.stop()
	defer func() {
		if err != nil && ctx.Err() == nil && len(kids.list) > 0 {
			fmt.Println()
			fmt.Println("logs of the programs started:")
			kids.tails(os.Stdout, 40)
		}
	}()
	if c.haproxy, err = exec.LookPath(c.haproxy); err != nil {
		return fmt.Errorf("HAProxy not found (install it: apt-get install haproxy): %w", err)
	}
	if c.bin == "" {
		if c.bin, err = build(ctx, work); err != nil {
			return err
		}
	}
	marqueeVersion, err := exec.Command(c.bin, "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", c.bin, err)
	}

	appAddr, stopApp, err := startApp()
	if err != nil {
		return err
	}
	defer stopApp()
	mesh, err := startMesh(ctx, kids, c.bin, appAddr)
	if err != nil {
		return err
	}
	hap, err := startHAProxy(ctx, kids, c.haproxy, appAddr)
	if err != nil {
		return err
	}

	direct, err := dial(appAddr, "")
	if err != nil {
		return err
	}
	defer direct.Close()
	viaMesh, err := dial(mesh.outbound, serverService)
	if err != nil {
		return err
	}
	defer viaMesh.Close()
	viaHAProxy, err := dial(hap.addr, "")
	if err != nil {
		return err
	}
	defer viaHAProxy.Close()
	targets := []*target{
		{name: "direct", client: catalogv1.NewCatalogServiceClient(direct)},
		{name: "marquee sidecar pair", client: catalogv1.NewCatalogServiceClient(viaMesh), proxies: []*proxyProc{
			{name: "marquee client sidecar", c: mesh.clientSide}, {name: "marquee server sidecar", c: mesh.serverSide}}},
		{name: "HAProxy mTLS pair", client: catalogv1.NewCatalogServiceClient(viaHAProxy), proxies: []*proxyProc{
			{name: "HAProxy client side", c: hap.clientSide}, {name: "HAProxy server side", c: hap.serverSide}}},
	}
	for _, t := range targets {
		if err := waitRoute(ctx, kids, t); err != nil {
			return err
		}
	}

	header(c, strings.TrimSpace(firstLine(string(marqueeVersion))), hap.version)
	for r := range c.rounds {
		for i := range targets {
			t := targets[(r+i)%len(targets)]
			res, err := openLoop(ctx, t.call, c.rate, c.warmup, c.window,
				func() {
					for _, p := range t.proxies {
						p.windowStart()
					}
				},
				func() {
					for _, p := range t.proxies {
						p.windowEnd()
					}
				})
			if err != nil {
				return err
			}
			t.runs = append(t.runs, res)
			fmt.Printf("round %d  %-21s %s\n", r+1, t.name, runLine(res))
			if err := kids.exitedEarly(); err != nil {
				return err
			}
		}
	}
	for _, t := range targets {
		for _, p := range t.proxies {
			if p.err != nil {
				return fmt.Errorf("%s: reading /proc: %w", p.name, p.err)
			}
		}
	}
	fmt.Printf("load average at the end: %s\n\n", loadAverage())
	failed := summary(c, targets)
	if c.profile != "" && !failed {
		if err := profileSidecars(ctx, c, targets[1], mesh); err != nil {
			return err
		}
	}
	if failed {
		fmt.Println()
		fmt.Println("logs of the programs started:")
		kids.tails(os.Stdout, 40)
		return errors.New("some requests failed")
	}
	return nil
}

// profileSidecars runs the sidecar path once more, not counted, while
// taking a CPU profile of each sidecar over its measured window.
func profileSidecars(ctx context.Context, c config, t *target, mesh *meshPair) error {
	if err := os.MkdirAll(c.profile, 0o755); err != nil {
		return err
	}
	secs := max(1, int(c.window.Seconds()))
	errs := make(chan error, 2)
	var files []string
	start := func() {
		for _, s := range []struct{ name, admin string }{{"sidecar-client", mesh.clientAdmin}, {"sidecar-server", mesh.serverAdmin}} {
			file := filepath.Join(c.profile, s.name+".pprof")
			files = append(files, file)
			go func() { errs <- fetchProfile(ctx, s.admin, secs, file) }()
		}
	}
	if _, err := openLoop(ctx, t.call, c.rate, c.warmup, c.window, start, func() {}); err != nil {
		return err
	}
	if err := errors.Join(<-errs, <-errs); err != nil {
		return err
	}
	fmt.Println()
	fmt.Printf("CPU profiles of the sidecars over one more %s run at %d req/s: %s\n", c.window, c.rate, strings.Join(files, " "))
	fmt.Printf("  (go tool pprof -top %s FILE)\n", c.bin)
	return nil
}

func fetchProfile(ctx context.Context, admin string, secs int, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile of %s: %s", admin, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// dial opens the one connection a path's requests share. authority is the
// destination service, which the client sidecar routes by.
func dial(addr, authority string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	return grpc.NewClient("passthrough:///"+addr, opts...)
}

// waitRoute calls t until a call succeeds: the sidecars are ready before
// they have routes to each other.
func waitRoute(ctx context.Context, kids *children, t *target) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := t.call(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if e := kids.exitedEarly(); e != nil {
			return e
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no successful call in %s; last error: %w", t.name, readyTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// build builds the marquee binary of the module holding the working
// directory.
func build(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	bin := filepath.Join(dir, "marquee")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/marquee")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/marquee: %v\n%s", err, out)
	}
	return bin, nil
}

func header(c config, marquee, haproxy string) {
	fmt.Printf("run:     %s %s\n", filepath.Base(os.Args[0]), strings.Join(os.Args[1:], " "))
	cores, model := cpuInfo()
	fmt.Printf("machine: %d cores, %s; load average %s\n", cores, model, loadAverage())
	if l := loadAverage1(); l > float64(cores) {
		fmt.Printf("note:    the machine is busy (load average %.1f on %d cores): the figures measure that as much as the proxies\n", l, cores)
	}
	fmt.Printf("marquee: %s; peer: %s; %s\n", marquee, haproxy, runtime.Version())
	fmt.Printf("load:    open loop, %d req/s of GetTitle (gRPC, ~100-byte answer), one connection per path; "+
		"latency from each request's due time; %s warm-up + %s measured per run, %d rounds, order rotated\n",
		c.rate, c.warmup, c.window, c.rounds)
	if c.proxyCPUs != "" {
		n, _ := countCPUs(c.proxyCPUs)
		fmt.Printf("cpus:    sidecars and HAProxy pinned to CPU %s (sidecars GOMAXPROCS default = %d, HAProxy nbthread 1); "+
			"load generator and application in this process (GOMAXPROCS %d, CPUs of its own affinity)\n",
			c.proxyCPUs, n, runtime.GOMAXPROCS(0))
	} else {
		fmt.Printf("cpus:    nothing pinned (sidecars GOMAXPROCS default = %d, HAProxy nbthread 1)\n", runtime.NumCPU())
	}
	fmt.Println("config:  sidecars: policy allows bench-client → bench-server, no retries, faults or timeouts, access log off; " +
		"HAProxy: TLS 1.3, client certificates verified, http-reuse always, no log")
	fmt.Println()
}

func runLine(r *result) string {
	s := fmt.Sprintf("p50 %5s  p90 %5s  p99 %6s  p99.9 %6s  max %7s µs  errors %d/%d  (send lag p50 %s p99 %s µs)",
		us(percentile(r.lat, .5)), us(percentile(r.lat, .9)), us(percentile(r.lat, .99)),
		us(percentile(r.lat, .999)), us(percentile(r.lat, 1)), r.errors, r.requests,
		us(percentile(r.lag, .5)), us(percentile(r.lag, .99)))
	if r.warmErrs > 0 {
		s += fmt.Sprintf("  warm-up errors %d", r.warmErrs)
	}
	if r.firstErr != "" {
		s += "\n         first error: " + r.firstErr
	}
	return s
}

// stat is one latency statistic of every round of a path.
type stat func(*result) time.Duration

func pct(q float64) stat { return func(r *result) time.Duration { return percentile(r.lat, q) } }

// medianOf returns the median over rounds of f(round i).
func medianOf(n int, f func(i int) time.Duration) time.Duration {
	v := make([]time.Duration, n)
	for i := range v {
		v[i] = f(i)
	}
	slices.Sort(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// summary prints the tables and the goals; it reports whether any
// measured request failed.
func summary(c config, targets []*target) (failed bool) {
	direct, mesh, hap := targets[0], targets[1], targets[2]
	rounds := len(direct.runs)
	med := func(t *target, s stat) time.Duration {
		return medianOf(rounds, func(i int) time.Duration { return s(t.runs[i]) })
	}
	added := func(t *target, s stat) time.Duration {
		return medianOf(rounds, func(i int) time.Duration { return s(t.runs[i]) - s(direct.runs[i]) })
	}

	fmt.Printf("latency at %d req/s, µs (median of %d rounds of %s; added = the path's figure minus direct's in the same round)\n",
		c.rate, rounds, c.window)
	fmt.Printf("%-22s %7s %7s %7s %7s %11s %11s %8s\n", "path", "p50", "p90", "p99", "p99.9", "added p50", "added p99", "errors")
	for _, t := range targets {
		errs, reqs := 0, 0
		for _, r := range t.runs {
			errs += r.errors
			reqs += r.requests
		}
		failed = failed || errs > 0
		a50, a99 := "-", "-"
		if t != direct {
			a50, a99 = signed(added(t, pct(.5))), signed(added(t, pct(.99)))
		}
		fmt.Printf("%-22s %7s %7s %7s %7s %11s %11s %8s\n", t.name,
			us(med(t, pct(.5))), us(med(t, pct(.9))), us(med(t, pct(.99))), us(med(t, pct(.999))),
			a50, a99, fmt.Sprintf("%d/%d", errs, reqs))
	}
	fmt.Println()
	fmt.Printf("per proxy process at %d req/s (CPU over its path's measured windows; RSS at the end of the last one; MB = 10^6 bytes)\n", c.rate)
	fmt.Printf("%-24s %10s %8s %13s\n", "process", "CPU vCPU", "RSS MB", "peak RSS MB")
	for _, t := range targets[1:] {
		for _, p := range t.proxies {
			fmt.Printf("%-24s %10.3f %8.1f %13.1f\n", p.name, p.vCPU(), mb(p.rss), mb(p.hwm))
		}
	}

	fmt.Println()
	fmt.Printf("PRODUCT §9 goals, sidecar pair at 1,000 req/s (this run: %d req/s):\n", c.rate)
	m50, m99 := added(mesh, pct(.5)), added(mesh, pct(.99))
	h50, h99 := added(hap, pct(.5)), added(hap, pct(.99))
	goal := func(name, got string, ok bool) {
		verdict := "met"
		if !ok {
			verdict = "NOT met"
		}
		fmt.Printf("  %-36s %-52s %s\n", name, got, verdict)
	}
	goal("added latency p50 under 150 µs", us(m50)+" µs", m50 < goalAddedP50)
	goal("added latency p99 under 500 µs", us(m99)+" µs", m99 < goalAddedP99)
	goal("no worse than the HAProxy pair",
		fmt.Sprintf("added p50 %s vs %s µs, p99 %s vs %s µs", us(m50), us(h50), us(m99), us(h99)),
		m50 <= h50 && m99 <= h99)
	cli, srv := mesh.proxies[0], mesh.proxies[1]
	goal("under 0.1 vCPU per sidecar",
		fmt.Sprintf("client %.3f, server %.3f vCPU", cli.vCPU(), srv.vCPU()),
		cli.vCPU() < goalCPU && srv.vCPU() < goalCPU)
	goal("under 25 MB RSS per sidecar",
		fmt.Sprintf("client %.1f, server %.1f MB (peak %.1f, %.1f)", mb(cli.rss), mb(srv.rss), mb(cli.hwm), mb(srv.hwm)),
		mb(cli.rss) < goalRSSMB && mb(srv.rss) < goalRSSMB)
	fmt.Println("published, not measured here:")
	for _, p := range published {
		fmt.Println("  " + p)
	}
	return failed
}

func us(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }

func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + us(d)
	}
	return us(d)
}

func mb(b int64) float64 { return float64(b) / 1e6 }

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// loadAverage1 is the one-minute load average, 0 when unknown.
func loadAverage1() float64 {
	f, _ := strconv.ParseFloat(strings.Split(loadAverage(), " ")[0], 64)
	return f
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// cpuInfo returns the machine's number of CPUs (not only those this
// process may use) and their model.
func cpuInfo() (n int, model string) {
	model = "?"
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU(), model
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name":
			model = strings.TrimSpace(v)
		}
	}
	return max(n, 1), model
}
