//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a program the benchmark started; its output goes to a log file
// in the work directory.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// pid is the process id, also when started through taskset, which execs
// the program in place.
func (c *child) pid() int { return c.cmd.Process.Pid }

// alive returns an error naming the child when it has exited.
func (c *child) alive() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited: %v (log %s)", c.name, c.waitErr, c.logPath)
	default:
		return nil
	}
}

// children are all the programs of one run, stopped together.
type children struct {
	dir     string
	cpus    string // taskset CPU list for pinned children; empty: no pinning
	taskset string
	list    []*child
}

// start runs bin with args, pinned to k.cpus when pinned is set. The
// environment is this process's without MARQUEE_* and GOMAXPROCS (so that
// nothing of the caller's shell changes the programs under test), plus env.
func (k *children) start(name string, pinned bool, env []string, bin string, args ...string) (*child, error) {
	path, argv := bin, args
	if pinned && k.cpus != "" {
		path, argv = k.taskset, append([]string{"-c", k.cpus, bin}, args...)
	}
	logPath := filepath.Join(k.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(path, argv...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(cleanEnv(), env...)
	// Its own process group keeps a terminal's ^C from reaching it before
	// the benchmark has stopped it in order; the death signal stops it
	// even if the benchmark is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	k.list = append(k.list, c)
	return c, nil
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MARQUEE_") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stop asks every child to stop (SIGTERM), and kills those still running
// after a few seconds.
func (k *children) stop() {
	for _, c := range k.list {
		if c.alive() == nil {
			c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(5 * time.Second)
	for _, c := range k.list {
		select {
		case <-c.exited:
		case <-deadline:
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
}

// exitedEarly returns the error of the first child that is no longer
// running.
func (k *children) exitedEarly() error {
	for _, c := range k.list {
		if err := c.alive(); err != nil {
			return err
		}
	}
	return nil
}

// tails writes the last lines of every child's log.
func (k *children) tails(w io.Writer, lines int) {
	for _, c := range k.list {
		b, err := os.ReadFile(c.logPath)
		if err != nil {
			fmt.Fprintf(w, "-- %s: %v\n", c.name, err)
			continue
		}
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		state := "running"
		if err := c.alive(); err != nil {
			state = fmt.Sprintf("exited: %v", c.waitErr)
		}
		fmt.Fprintf(w, "-- %s (%s), last %d lines of %s:\n", c.name, state, len(all), c.logPath)
		for _, l := range all {
			fmt.Fprintln(w, "   ", l)
		}
	}
}

// freePort returns a loopback address with a port nobody listened on a
// moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, c exits or timeout passes.
func waitHTTP(ctx context.Context, c *child, url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		if err := c.alive(); err != nil {
			return err
		}
		var last string
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s: %s", c.name, url, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTCP polls addr until it accepts a connection, c exits or timeout
// passes.
func waitTCP(ctx context.Context, c *child, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := c.alive(); err != nil {
			return err
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections on %s after %s: %v", c.name, addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture the benchmark runs on.
const clockTick = 100

// cpuTime returns the CPU time (user and system, all threads) pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields are
	// counted from after its closing parenthesis, where field 3 (state)
	// starts; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// memory returns pid's resident set size now and its peak (VmRSS, VmHWM),
// in bytes.
func memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb * 1024
		} else {
			hwm = kb * 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	return rss, hwm, sc.Err()
}
