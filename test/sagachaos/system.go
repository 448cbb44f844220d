package sagachaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Services are the services `marquee dev` runs, each with its own database
// marquee_<service> on PostgreSQL.
var Services = []string{"identity", "profiles", "catalog", "recommendations", "billing", "playback", "orders"}

// databases are the PostgreSQL databases of a system: the services' and the
// control plane's (mesh).
var databases = append(slices.Clone(Services), "mesh")

// Build compiles the marquee binary into dir and returns its path. It runs
// `go build` in the module that holds this package.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "marquee")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/marquee-tv/marquee/cmd/marquee")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a free loopback address.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Options says how to run `marquee dev`.
type Options struct {
	// Binary is the marquee executable (see Build).
	Binary string
	// DataDir is the data directory (databases, logs).
	DataDir string
	// PostgresURL, if set, is passed as --postgres (see PreparePostgres).
	PostgresURL string
	// Extra flags for `marquee dev`.
	Extra []string
	// ReadyTimeout bounds the wait for "Marquee is ready" (default 90s).
	ReadyTimeout time.Duration
}

// Instance is one service instance as `marquee dev` printed it.
type Instance struct {
	Name, Version string
	// GRPC is its gRPC address, Admin its admin HTTP address (/readyz,
	// /metrics, /debug/pprof).
	GRPC, Admin string
}

// System is a running `marquee dev`.
type System struct {
	opts      Options
	cmd       *exec.Cmd
	pid       int
	gateway   string
	nats      string
	instances map[string]Instance

	exited chan struct{}
	err    error // of cmd.Wait, once exited is closed

	mu     sync.Mutex
	output []string
}

// Start runs `marquee dev` on free ports and waits until it reports that
// every process is ready.
func Start(ctx context.Context, o Options) (*System, error) {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 90 * time.Second
	}
	gw, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	console, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"dev", "--data", o.DataDir, "--addr", gw, "--console-addr", console}
	if o.PostgresURL != "" {
		args = append(args, "--postgres", o.PostgresURL)
	}
	args = append(args, o.Extra...)
	cmd := exec.Command(o.Binary, args...)
	// Flags fall back to MARQUEE_* variables: none of the caller's may leak in.
	cmd.Env = append(os.Environ(), "MARQUEE_POSTGRES=", "MARQUEE_NATS=", "MARQUEE_REDIS=", "MARQUEE_REPLICAS=", "MARQUEE_VERSIONS=", "MARQUEE_MESH=")
	// Should this process die, marquee dev stops, and with it its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start marquee dev: %w", err)
	}
	s := &System{opts: o, cmd: cmd, pid: cmd.Process.Pid, gateway: gw, instances: map[string]Instance{}, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.output = append(s.output, line)
			if len(s.output) > 5000 {
				s.output = append(s.output[:0:0], s.output[len(s.output)-2000:]...)
			}
			if !seen {
				s.parse(line)
			}
			s.mu.Unlock()
			if !seen && strings.HasPrefix(strings.TrimSpace(line), "data and logs") {
				seen = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		s.err = cmd.Wait()
		pw.Close()
		close(s.exited)
	}()
	select {
	case <-ready:
	case <-s.exited:
		return nil, fmt.Errorf("marquee dev exited before ready (%v):\n%s\n%s", s.err, s.Output(40), s.ChildLogs(15))
	case <-time.After(o.ReadyTimeout):
		s.kill()
		return nil, fmt.Errorf("marquee dev not ready after %s:\n%s\n%s", o.ReadyTimeout, s.Output(40), s.ChildLogs(15))
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
	for _, svc := range []string{"orders", "billing", "playback", "catalog"} {
		if _, ok := s.instances[svc]; !ok {
			s.kill()
			return nil, fmt.Errorf("marquee dev printed no address for %s:\n%s", svc, s.Output(40))
		}
	}
	return s, nil
}

// parse reads one line of the ready banner:
//
//	orders            v1  grpc 127.0.0.1:40217  admin http://127.0.0.1:35457
//	events (NATS)     nats://127.0.0.1:43241
func (s *System) parse(line string) {
	f := strings.Fields(line)
	if len(f) == 6 && f[2] == "grpc" && f[4] == "admin" {
		s.instances[f[0]] = Instance{Name: f[0], Version: f[1], GRPC: f[3], Admin: strings.TrimPrefix(f[5], "http://")}
	}
	if len(f) == 3 && f[0] == "events" && strings.HasPrefix(f[2], "nats://") {
		s.nats = f[2]
	}
}

// Instance returns the instance named name (the service name when it runs
// one replica).
func (s *System) Instance(name string) Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instances[name]
}

// Gateway returns the gateway's address.
func (s *System) Gateway() string { return s.gateway }

// NATS returns the URL of the system's NATS server.
func (s *System) NATS() string { return s.nats }

// DataDir returns the data directory.
func (s *System) DataDir() string { return s.opts.DataDir }

// Output returns the last n lines `marquee dev` wrote.
func (s *System) Output(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := s.output
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ChildLogs returns the last n lines of every child's log.
func (s *System) ChildLogs(n int) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(s.opts.DataDir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), strings.Join(lines, "\n"))
	}
	return b.String()
}

// Panics returns, for each child whose log shows panics (a handler's panic
// recovered and logged, or a process that died of one), the first of
// them and how many there were.
func (s *System) Panics() map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(s.opts.DataDir, "logs", "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, first := 0, ""
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "panic: ") || strings.Contains(line, `"msg":"panic in handler"`) {
				if n++; first == "" {
					first = line
				}
			}
		}
		if n > 0 {
			out[filepath.Base(f)] = fmt.Sprintf("%d panics, the first: %s", n, first)
		}
	}
	return out
}

// PIDs returns the live processes running `marquee serve <service>` for
// this system (children told --parent-pid of its supervisor).
func (s *System) PIDs(service string) []int {
	return children(s.pid, func(args []string) bool {
		return len(args) >= 3 && args[1] == "serve" && args[2] == service
	})
}

// ProgramPIDs returns the live processes running `marquee <program>` for
// this system (nats, gateway).
func (s *System) ProgramPIDs(program string) []int {
	return children(s.pid, func(args []string) bool { return len(args) >= 2 && args[1] == program })
}

// AllPIDs returns every live process this system started.
func (s *System) AllPIDs() []int {
	return children(s.pid, func([]string) bool { return true })
}

// children lists live processes whose command line names parent as
// --parent-pid and satisfies match.
func children(parent int, match func(args []string) bool) []int {
	want := strconv.Itoa(parent)
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		ours := false
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--parent-pid" && args[i+1] == want {
				ours = true
			}
		}
		if !ours || !match(args) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue // exited, not reaped yet
		}
		pids = append(pids, pid)
	}
	return pids
}

// Ready reports whether instance name answers 200 on /readyz.
func (s *System) Ready(ctx context.Context, name string) bool {
	inst := s.Instance(name)
	if inst.Admin == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.Admin+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits until every named instance is ready.
func (s *System) WaitReady(ctx context.Context, timeout time.Duration, names ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		var down []string
		for _, n := range names {
			if !s.Ready(ctx, n) {
				down = append(down, n)
			}
		}
		if len(down) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %s\n%s", timeout, strings.Join(down, ", "), s.ChildLogs(10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to the process of `marquee serve <service>`; it
// returns its pid, or 0 when none is running (it is being restarted).
func (s *System) Kill(service string) (int, error) {
	pids := s.PIDs(service)
	if len(pids) == 0 {
		return 0, nil
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, nil
		}
		return 0, err
	}
	return pids[0], nil
}

// Stop sends SIGTERM to `marquee dev` and waits for it to exit cleanly and
// for every child to be gone. Whatever is left after timeout is killed
// and reported as an error.
func (s *System) Stop(timeout time.Duration) error {
	select {
	case <-s.exited:
		return fmt.Errorf("marquee dev had exited already: %v", s.err)
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	var errs []error
	select {
	case <-s.exited:
		if s.err != nil {
			errs = append(errs, fmt.Errorf("marquee dev after SIGTERM: %w, want a clean exit", s.err))
		}
	case <-time.After(timeout):
		errs = append(errs, fmt.Errorf("marquee dev did not exit within %s of SIGTERM", timeout))
		s.kill()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := s.AllPIDs()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			errs = append(errs, fmt.Errorf("processes left behind: %v", left))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// kill ends `marquee dev` and its children at once (a failed start).
func (s *System) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	for _, pid := range s.AllPIDs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// Close kills whatever is still running (for cleanups after a failure);
// it does nothing after Stop.
func (s *System) Close() {
	select {
	case <-s.exited:
		for _, pid := range s.AllPIDs() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	default:
		s.kill()
	}
}
