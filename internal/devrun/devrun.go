// Package devrun is the supervisor behind `marquee dev`: it runs the whole
// system on one machine, each program as its own OS process started from
// the same binary, restarts a crashed process with backoff, and stops
// everything, leaving no process behind, when its context ends.
//
// Orphans are prevented twice over: children get SIGTERM from the kernel
// when the supervisor dies (Pdeathsig), and every child is told the
// supervisor's pid (--parent-pid) and exits when its parent changes.
package devrun

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/peers"
	"github.com/marquee-tv/marquee/internal/platform/seed"
)

// Config is what `marquee dev` is asked to run.
type Config struct {
	// Binary is the marquee executable that children run.
	Binary string
	// DataDir holds databases, logs and credentials.json.
	DataDir string
	// Addr is the gateway's public address.
	Addr string
	// ConsoleAddr is the console and control-plane admin address.
	ConsoleAddr string
	// PostgresURL, NATSURL and RedisURL point at external servers; empty
	// means embedded defaults (SQLite, an embedded NATS, no Redis).
	PostgresURL, NATSURL, RedisURL string
	// Services lists the services to run, in start order.
	Services []string
	// Replicas is the number of instances per service (default 1).
	Replicas map[string]int
	// Versions fixes the version label of every instance of a service
	// (recommendations=v2); by default the instances of recommendations
	// are v1, v2, and of other services v1.
	Versions map[string]string
	// Reset deletes DataDir before starting.
	Reset bool
	// Out receives the human-readable summary.
	Out io.Writer
	// Log receives the supervisor's own structured log.
	Log *slog.Logger
}

// ParseReplicas reads "recommendations=2,catalog=3".
func ParseReplicas(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, n, ok := strings.Cut(part, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 1 || count > 16 || name == "" {
			return nil, fmt.Errorf("bad replica count %q: want service=N with N from 1 to 16", part)
		}
		out[name] = count
	}
	return out, nil
}

// ParseVersions reads "recommendations=v2".
func ParseVersions(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, v, ok := strings.Cut(part, "=")
		if !ok || name == "" || (v != "v1" && v != "v2") {
			return nil, fmt.Errorf("bad version %q: want service=v1 or service=v2", part)
		}
		out[name] = v
	}
	return out, nil
}

// Run starts the system and supervises it until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	started := time.Now()
	for name := range cfg.Replicas {
		if !slices.Contains(cfg.Services, name) {
			return fmt.Errorf("--replicas names %q, which is not a service here (have %s)", name, strings.Join(cfg.Services, ", "))
		}
	}
	for name := range cfg.Versions {
		if !slices.Contains(cfg.Services, name) {
			return fmt.Errorf("--versions names %q, which is not a service here (have %s)", name, strings.Join(cfg.Services, ", "))
		}
	}
	if cfg.Reset {
		if err := os.RemoveAll(cfg.DataDir); err != nil {
			return fmt.Errorf("reset %s: %w", cfg.DataDir, err)
		}
	}
	logDir := filepath.Join(cfg.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	credsFile := filepath.Join(cfg.DataDir, "credentials.json")
	creds, err := loadOrCreateCredentials(credsFile)
	if err != nil {
		return err
	}

	s := &supervisor{cfg: cfg, logDir: logDir, parent: os.Getpid()}
	defer s.stopAll()

	natsURL := cfg.NATSURL
	if natsURL == "" {
		port, err := newPorts(1)
		if err != nil {
			return err
		}
		addr := hostPort(port[0])
		natsURL = "nats://" + addr
		p := s.start(ctx, "nats", []string{"nats", "--addr", addr, "--store", filepath.Join(cfg.DataDir, "nats")}, tcpReady(addr))
		if err := p.waitReady(ctx, 20*time.Second); err != nil {
			return err
		}
	}

	// Every instance gets its ports up front, so the table of peers is known
	// before any starts and stays the same across restarts.
	type instance struct {
		service, name, version, grpcAddr, httpAddr, adminAddr string
	}
	var instances []instance
	table := peers.Table{}
	for _, svc := range cfg.Services {
		n := max(cfg.Replicas[svc], 1)
		for i := 1; i <= n; i++ {
			ports, err := newPorts(3)
			if err != nil {
				return err
			}
			name := svc
			if n > 1 {
				name = fmt.Sprintf("%s-%d", svc, i)
			}
			inst := instance{svc, name, instanceVersion(cfg, svc, i), hostPort(ports[0]), hostPort(ports[1]), hostPort(ports[2])}
			instances = append(instances, inst)
			table[svc] = append(table[svc], inst.grpcAddr)
			// A service's HTTP endpoint (playback's media) is the peer <svc>-http.
			table[svc+"-http"] = append(table[svc+"-http"], inst.httpAddr)
		}
	}
	common := []string{"--data", cfg.DataDir, "--nats", natsURL, "--peers", table.String(), "--credentials", credsFile}
	if cfg.PostgresURL != "" {
		common = append(common, "--postgres", cfg.PostgresURL)
	}
	var procs []*proc
	for _, inst := range instances {
		args := append([]string{"serve", inst.service, "--version", inst.version,
			"--grpc-addr", inst.grpcAddr, "--http-addr", inst.httpAddr, "--admin-addr", inst.adminAddr}, common...)
		procs = append(procs, s.start(ctx, inst.name, args, httpReady("http://"+inst.adminAddr+"/readyz")))
	}
	gwPort, err := newPorts(1)
	if err != nil {
		return err
	}
	gwAdmin := gwPort[0]
	gwArgs := []string{"gateway", "--addr", cfg.Addr, "--admin-addr", hostPort(gwAdmin), "--peers", table.String(), "--nats", natsURL, "--ops-addr", cfg.ConsoleAddr}
	if cfg.RedisURL != "" {
		gwArgs = append(gwArgs, "--redis", cfg.RedisURL)
	}
	procs = append(procs, s.start(ctx, "gateway", gwArgs, httpReady("http://"+hostPort(gwAdmin)+"/readyz")))
	for _, p := range procs {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}

	fmt.Fprintf(cfg.Out, "\nMarquee is ready in %s\n\n", time.Since(started).Round(time.Millisecond))
	fmt.Fprintf(cfg.Out, "  API and web app   http://%s\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  titles            http://%s/api/v1/titles\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  API description   http://%s/api/openapi.json\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  operations        http://%s (marquee saga ...)\n", cfg.ConsoleAddr)
	fmt.Fprintf(cfg.Out, "  demo viewer       %s / %s\n", creds.Demo.Email, creds.Demo.Password)
	fmt.Fprintf(cfg.Out, "  admin             %s / %s\n", creds.Admin.Email, creds.Admin.Password)
	fmt.Fprintf(cfg.Out, "  events (NATS)     %s\n", natsURL)
	for _, inst := range instances {
		fmt.Fprintf(cfg.Out, "  %-17s %s  grpc %s  admin http://%s\n", inst.name, inst.version, inst.grpcAddr, inst.adminAddr)
	}
	fmt.Fprintf(cfg.Out, "  data and logs     %s\n\nCtrl-C stops everything.\n", cfg.DataDir)

	<-ctx.Done()
	fmt.Fprintln(cfg.Out, "\nstopping...")
	return nil
}

func loadOrCreateCredentials(path string) (seed.Credentials, error) {
	if _, err := os.Stat(path); err == nil {
		c, err := seed.Load(path)
		if err != nil {
			return c, fmt.Errorf("%w (delete it or run with --reset)", err)
		}
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return seed.Credentials{}, err
	}
	c := seed.Credentials{
		Demo:  seed.Account{Email: "demo@marquee.local", Password: randomPassword()},
		Admin: seed.Account{Email: "admin@marquee.local", Password: randomPassword()},
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return c, os.WriteFile(path, append(b, '\n'), 0o600)
}

func randomPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// instanceVersion is the version label of instance i (from 1) of svc:
// Versions[svc] when set, else v<i> for services that ship several versions
// (recommendations=2 runs v1 and v2 side by side), else v1.
func instanceVersion(cfg Config, svc string, i int) string {
	if v := cfg.Versions[svc]; v != "" {
		return v
	}
	if svc == "recommendations" && i <= 2 {
		return fmt.Sprintf("v%d", i)
	}
	return "v1"
}

// handedOut remembers the ports already planned, which are free until
// their programs bind them and must not be handed out twice.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// newPorts returns n distinct loopback ports, free now and not handed out
// before. A port is drawn from below the kernel's ephemeral range: the
// kernel's own pick (port 0) comes from that range, which outgoing
// connections (to PostgreSQL, NATS, the peers) also take their source
// ports from, and one of them could take the port before the child binds
// it.
func newPorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	lo := ephemeralLow()
	const floor = 20000
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries == 1000 {
			return nil, fmt.Errorf("find a free port: none free between %d and %d", floor, lo)
		}
		r, err := rand.Int(rand.Reader, big.NewInt(int64(lo-floor)))
		if err != nil {
			return nil, err
		}
		port := floor + int(r.Int64())
		if handedOut.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", hostPort(port))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return linuxDefault
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= 21000 {
		return linuxDefault
	}
	return lo
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func tcpReady(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

var readyClient = &http.Client{Timeout: time.Second}

func httpReady(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := readyClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}
