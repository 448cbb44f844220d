package devrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// supervisor owns the child processes. Children stop by stage, the last
// stage first (see the stage constants).
type supervisor struct {
	cfg    Config
	logDir string
	parent int

	mu    sync.Mutex
	procs []*proc
}

// stage orders the stop: the gateway goes first so no request arrives at a
// stopping service, then the services, then their sidecars (which drain
// what is still in flight), the control plane, and NATS last.
type stage int

const (
	stageBus stage = iota
	stageControlPlane
	stageSidecar
	stageService
	stageGateway
)

// spec says how to run one program.
type spec struct {
	name  string
	args  []string
	env   []string // added to the supervisor's environment
	stage stage
	ready func(context.Context) error
}

// proc is one supervised program, restarted with backoff when it dies.
type proc struct {
	spec
	s *supervisor

	mu       sync.Mutex
	cmd      *exec.Cmd
	stopping bool
	exited   chan struct{} // closed when the supervising loop ends
	restarts int
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// stableAfter is how long a child must run for its backoff to reset.
	stableAfter = 10 * time.Second
	stopTimeout = 10 * time.Second
)

func (s *supervisor) start(ctx context.Context, sp spec) *proc {
	sp.args = append(sp.args, "--parent-pid", strconv.Itoa(s.parent))
	p := &proc{spec: sp, s: s, exited: make(chan struct{})}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	go p.supervise(ctx)
	return p
}

// supervise runs the child until ctx ends, restarting it when it exits.
func (p *proc) supervise(ctx context.Context) {
	defer close(p.exited)
	backoff := minBackoff
	for {
		began := time.Now()
		err := p.runOnce()
		if p.isStopping() || ctx.Err() != nil {
			return
		}
		if time.Since(began) > stableAfter {
			backoff = minBackoff
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		p.s.cfg.Log.Warn("process exited; restarting", "process", p.name, "err", err, "backoff", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (p *proc) runOnce() error {
	logFile, err := os.OpenFile(filepath.Join(p.s.logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := &exec.Cmd{
		Path:   p.s.cfg.Binary,
		Args:   append([]string{"marquee"}, p.args...),
		Env:    append(os.Environ(), p.env...),
		Stdout: logFile,
		Stderr: logFile,
		// The kernel sends SIGTERM to the child if the supervisor dies.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
	}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return nil
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	return cmd.Wait()
}

func (p *proc) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// waitReady polls the child's readiness until it passes or timeout.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = p.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s: %v (see %s)", p.name, timeout, last, filepath.Join(p.s.logDir, p.name+".log"))
			}
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and, if the child has not exited in time, SIGKILL.
func (p *proc) stop() {
	p.mu.Lock()
	p.stopping = true
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.s.cfg.Log.Warn("process did not stop in time; killing", "process", p.name)
		if cmd != nil && cmd.Process != nil {
			cmd.Process.Kill()
		}
		<-p.exited
	}
}

// stopAll stops every child, stage by stage, the last stage first.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.mu.Unlock()
	for st := stageGateway; st >= stageBus; st-- {
		var wg sync.WaitGroup
		for _, p := range procs {
			if p.stage == st {
				wg.Go(p.stop)
			}
		}
		wg.Wait()
	}
}
