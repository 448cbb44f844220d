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
	"syscall"
	"time"

	"github.com/marquee-tv/marquee/internal/mesh/ca"
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
	// Mesh runs every program with a sidecar (strict mTLS, policy from the
	// control plane); off, services call each other directly.
	Mesh bool
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
		p := s.start(ctx, spec{name: "nats", stage: stageBus, ready: tcpReady(addr),
			args: []string{"nats", "--addr", addr, "--store", filepath.Join(cfg.DataDir, "nats")}})
		if err := p.waitReady(ctx, 20*time.Second); err != nil {
			return err
		}
	}

	// Every program gets its ports up front, so the addresses are known
	// before any starts and stay the same across restarts.
	instances, err := planInstances(cfg)
	if err != nil {
		return err
	}
	gw, err := newEndpoint("gateway", "gateway", "v1")
	if err != nil {
		return err
	}
	cp, err := newPorts(3) // gRPC for sidecars, admin, OTLP trace receiver
	if err != nil {
		return err
	}
	cpGRPC, cpAdmin, cpOTLP := hostPort(cp[0]), hostPort(cp[1]), hostPort(cp[2])
	// Every program but the control plane sends its traces to the console
	// (the console's own polling would fill it with its own).
	otlpEnv := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + cpOTLP, "OTEL_EXPORTER_OTLP_INSECURE=true"}

	// The control plane serves the console in both modes; with the mesh
	// on, it is also where sidecars get certificates and configuration.
	cpArgs := []string{"control-plane", "--console-addr", cfg.ConsoleAddr, "--grpc-addr", cpGRPC, "--admin-addr", cpAdmin,
		"--data", cfg.DataDir, "--gateway", "http://" + cfg.Addr, "--otlp-addr", cpOTLP, "--nats", natsURL}
	if cfg.PostgresURL != "" {
		cpArgs = append(cpArgs, "--postgres", cfg.PostgresURL)
	}
	cpProc := s.start(ctx, spec{name: "control-plane", stage: stageControlPlane, args: cpArgs, ready: httpReady("http://" + cpAdmin + "/readyz")})
	if err := cpProc.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}

	// With the mesh on, every instance and the gateway get a sidecar, ready
	// (certificate and configuration in hand) before its application
	// starts, so an application never runs without its sidecar.
	if cfg.Mesh {
		secret, err := ca.LoadOrCreateJoinSecret(filepath.Join(cfg.DataDir, "mesh", "join.key"))
		if err != nil {
			return err
		}
		var sidecars []*proc
		for _, e := range append(slices.Clone(instances), gw) {
			args := []string{"sidecar", "--service", e.service, "--version", e.version, "--instance", e.name,
				"--outbound", e.outbound, "--admin-addr", e.sidecarAdmin,
				"--app-grpc", e.grpcAddr, "--app-http", e.httpAddr, "--app-ready", "http://" + e.adminAddr + "/readyz",
				"--control-plane", cpGRPC, "--trust-bundle", filepath.Join(cfg.DataDir, "mesh", "root.pem"),
				"--inbound", e.inbound}
			sidecars = append(sidecars, s.start(ctx, spec{name: e.name + ".sidecar", stage: stageSidecar, args: args,
				env:   append([]string{"MARQUEE_JOIN_TOKEN=" + ca.JoinToken(secret, e.service)}, otlpEnv...),
				ready: httpReady("http://" + e.sidecarAdmin + "/readyz")}))
		}
		for _, p := range sidecars {
			if err := p.waitReady(ctx, 30*time.Second); err != nil {
				return err
			}
		}
	}

	table := peers.Table{}
	for _, e := range instances {
		table[e.service] = append(table[e.service], e.grpcAddr)
		// A service's HTTP endpoint (playback's media) is the peer <svc>-http.
		table[e.service+"-http"] = append(table[e.service+"-http"], e.httpAddr)
	}
	// peerArgs tells a program how to reach the others: through its
	// sidecar, or straight at their addresses.
	peerArgs := func(e endpoint) []string {
		if cfg.Mesh {
			return []string{"--sidecar", e.outbound}
		}
		return []string{"--peers", table.String()}
	}
	common := []string{"--data", cfg.DataDir, "--nats", natsURL, "--credentials", credsFile}
	if cfg.PostgresURL != "" {
		common = append(common, "--postgres", cfg.PostgresURL)
	}
	var procs []*proc
	for _, e := range instances {
		args := slices.Concat([]string{"serve", e.service, "--version", e.version,
			"--grpc-addr", e.grpcAddr, "--http-addr", e.httpAddr, "--admin-addr", e.adminAddr}, common, peerArgs(e))
		procs = append(procs, s.start(ctx, spec{name: e.name, stage: stageService, args: args, env: otlpEnv, ready: httpReady("http://" + e.adminAddr + "/readyz")}))
	}
	for _, p := range procs {
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	// The gateway comes last: it is ready once it holds identity's signing
	// keys, and the sooner identity answers the sooner that is.
	gwArgs := slices.Concat([]string{"gateway", "--addr", cfg.Addr, "--admin-addr", gw.adminAddr, "--nats", natsURL}, peerArgs(gw))
	if cfg.RedisURL != "" {
		gwArgs = append(gwArgs, "--redis", cfg.RedisURL)
	}
	gwProc := s.start(ctx, spec{name: "gateway", stage: stageGateway, args: gwArgs, env: otlpEnv, ready: httpReady("http://" + gw.adminAddr + "/readyz")})
	if err := gwProc.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}

	fmt.Fprintf(cfg.Out, "\nMarquee is ready in %s\n\n", time.Since(started).Round(time.Millisecond))
	fmt.Fprintf(cfg.Out, "  API and web app   http://%s\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  titles            http://%s/api/v1/titles\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  API description   http://%s/api/openapi.json\n", cfg.Addr)
	fmt.Fprintf(cfg.Out, "  console           http://%s (marquee status, mesh, saga)\n", cfg.ConsoleAddr)
	fmt.Fprintf(cfg.Out, "  demo viewer       %s / %s\n", creds.Demo.Email, creds.Demo.Password)
	fmt.Fprintf(cfg.Out, "  admin             %s / %s\n", creds.Admin.Email, creds.Admin.Password)
	fmt.Fprintf(cfg.Out, "  events (NATS)     %s\n", natsURL)
	mesh := "off (services call each other directly)"
	if cfg.Mesh {
		mesh = "on, strict mTLS; control plane " + cpGRPC
	}
	fmt.Fprintf(cfg.Out, "  mesh              %s\n", mesh)
	for _, e := range instances {
		fmt.Fprintf(cfg.Out, "  %-17s %s  grpc %s  admin http://%s\n", e.name, e.version, e.grpcAddr, e.adminAddr)
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

// endpoint is one program's planned addresses: its own, and its
// sidecar's when the mesh is on.
type endpoint struct {
	service, name, version          string
	grpcAddr, httpAddr, adminAddr   string
	inbound, outbound, sidecarAdmin string
}

// newEndpoint plans the addresses of one program; a caller-only program
// (the gateway) has no inbound.
func newEndpoint(service, name, version string) (endpoint, error) {
	ports, err := newPorts(6)
	if err != nil {
		return endpoint{}, err
	}
	e := endpoint{service: service, name: name, version: version,
		grpcAddr: hostPort(ports[0]), httpAddr: hostPort(ports[1]), adminAddr: hostPort(ports[2]),
		inbound: hostPort(ports[3]), outbound: hostPort(ports[4]), sidecarAdmin: hostPort(ports[5])}
	if service == "gateway" {
		e.inbound = ""
	}
	return e, nil
}

// planInstances plans every service instance.
func planInstances(cfg Config) ([]endpoint, error) {
	var out []endpoint
	for _, svc := range cfg.Services {
		n := max(cfg.Replicas[svc], 1)
		for i := 1; i <= n; i++ {
			name := svc
			if n > 1 {
				name = fmt.Sprintf("%s-%d", svc, i)
			}
			e, err := newEndpoint(svc, name, instanceVersion(cfg, svc, i))
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
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

// Ports are planned up front and bound by the children seconds later, so
// a port found free must stay out of everybody else's hands meanwhile:
// within this process by handing ports out in order, and against other
// marquee dev processes (tests run several at once) by taking a block of
// ports under a lock file that is held while this process lives.
//
// Blocks lie below the kernel's ephemeral range: the kernel's own pick
// (port 0) comes from that range, which outgoing connections (to
// PostgreSQL, NATS, the peers) also take their source ports from, and one
// of them could take a port before the child binds it.
const (
	portFloor = 20000
	portBlock = 128
)

var handedOut struct {
	sync.Mutex
	next, end int        // the rest of the current block
	locks     []*os.File // held until the process exits
}

// newPorts returns n distinct loopback ports, free now and not handed out
// before by any marquee dev.
func newPorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for len(ports) < n {
		if handedOut.next >= handedOut.end {
			if err := claimPortBlock(); err != nil {
				return nil, err
			}
		}
		port := handedOut.next
		handedOut.next++
		l, err := net.Listen("tcp", hostPort(port))
		if err != nil {
			continue // some other program has it
		}
		l.Close()
		ports = append(ports, port)
	}
	return ports, nil
}

// claimPortBlock locks a free block of ports, starting from a random one.
func claimPortBlock() error {
	blocks := (ephemeralLow() - portFloor) / portBlock
	r, err := rand.Int(rand.Reader, big.NewInt(int64(blocks)))
	if err != nil {
		return err
	}
	for i := range blocks {
		base := portFloor + (int(r.Int64())+i)%blocks*portBlock
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("marquee-ports-%d.lock", base)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("find free ports: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // another marquee dev has it
		}
		handedOut.locks = append(handedOut.locks, f)
		handedOut.next, handedOut.end = base, base+portBlock
		return nil
	}
	return fmt.Errorf("find free ports: all %d blocks of %d ports from %d are taken", blocks, portBlock, portFloor)
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
