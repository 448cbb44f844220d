package main

import (
	"bufio"
	"encoding/json"
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
	"testing"
	"time"
)

// These tests run the built binary the way a user does: marquee dev, then
// HTTP requests to the gateway, then signals.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "marquee-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "marquee")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type devSystem struct {
	cmd     *exec.Cmd
	dataDir string
	base    string
	ops     string // the operations (console) address
	output  chan string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDev runs marquee dev in its own data directory and waits until it
// says it is ready.
func startDev(t *testing.T, extra ...string) *devSystem {
	t.Helper()
	addr := freeAddr(t)
	d := &devSystem{dataDir: t.TempDir(), base: "http://" + addr, ops: "http://" + freeAddr(t), output: make(chan string, 1000)}
	args := append([]string{"dev", "--data", d.dataDir, "--addr", addr, "--console-addr", strings.TrimPrefix(d.ops, "http://")}, extra...)
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(os.Environ(), "MARQUEE_POSTGRES=", "MARQUEE_NATS=")
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.cmd.Stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
		waitNoProcesses(t, d.dataDir, 10*time.Second)
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case d.output <- sc.Text():
			default:
			}
		}
		close(d.output)
	}()
	deadline := time.After(90 * time.Second)
	var seen []string
	for {
		select {
		case line, ok := <-d.output:
			if !ok {
				t.Fatalf("marquee dev exited before ready:\n%s\n%s", strings.Join(seen, "\n"), childLogs(d.dataDir))
			}
			seen = append(seen, line)
			if strings.Contains(line, "Marquee is ready") {
				return d
			}
		case <-deadline:
			t.Fatalf("marquee dev not ready after 90s:\n%s\n%s", strings.Join(seen, "\n"), childLogs(d.dataDir))
		}
	}
}

func childLogs(dataDir string) string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), strings.Join(lines, "\n"))
	}
	return b.String()
}

// pidsOf lists the processes whose command line mentions dataDir and
// contains all of words.
func pidsOf(dataDir string, words ...string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(raw), "\x00", " ")
		if !strings.Contains(cmdline, dataDir) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
			continue // a zombie has exited already
		}
		match := true
		for _, w := range words {
			if !strings.Contains(cmdline, w) {
				match = false
			}
		}
		if match {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitNoProcesses(t *testing.T, dataDir string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := pidsOf(dataDir)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes left behind after %s: %v", within, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func getJSON(t *testing.T, url string) apiResponse {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return apiResponse{status: 0}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiResponse{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("GET %s: body is not a JSON object: %q", url, raw)
	}
	return r
}

// TestDevServesCatalogAndRecoversFromKill runs without the mesh (the other
// system tests run with it, the default).
func TestDevServesCatalogAndRecoversFromKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system; skipped with -short")
	}
	d := startDev(t, "--mesh=off")

	raw, err := os.ReadFile(filepath.Join(d.dataDir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds struct {
		Demo, Admin struct{ Email, Password string }
	}
	if err := json.Unmarshal(raw, &creds); err != nil || creds.Demo.Email == "" || len(creds.Demo.Password) < 10 ||
		creds.Admin.Email == "" || len(creds.Admin.Password) < 10 {
		t.Errorf("credentials.json = %s (%v), want demo and admin, each with an email and a 10+ character password", raw, err)
	}

	r := getJSON(t, d.base+"/api/v1/titles")
	titles, _ := r.body["titles"].([]any)
	if r.status != 200 || len(titles) == 0 {
		t.Fatalf("GET /api/v1/titles = %d with %d titles, want 200 with the demo catalog", r.status, len(titles))
	}
	if _, ok := r.body["next_page_token"]; !ok {
		t.Errorf("GET /api/v1/titles has no next_page_token field: %v", r.body)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("GET /api/v1/titles has no X-Request-Id")
	}

	// Search finds a title by a word of its name.
	first := titles[0].(map[string]any)
	word := strings.Fields(first["name"].(string))[0]
	r = getJSON(t, d.base+"/api/v1/titles?q="+word)
	found := false
	for _, x := range r.body["titles"].([]any) {
		if x.(map[string]any)["id"] == first["id"] {
			found = true
		}
	}
	if r.status != 200 || !found {
		t.Errorf("GET /api/v1/titles?q=%s = %d, found %s: %v; want it found", word, r.status, first["id"], found)
	}

	for _, bad := range []string{"page_size=-1", "page_token=not-a-token"} {
		r = getJSON(t, d.base+"/api/v1/titles?"+bad)
		e, _ := r.body["error"].(map[string]any)
		if r.status != 400 || e == nil || e["code"] == "" || e["message"] == "" || e["request_id"] == "" {
			t.Errorf("GET /api/v1/titles?%s = %d %v, want 400 with error{code,message,request_id}", bad, r.status, r.body)
		}
	}

	// kill -9 of the catalog: the supervisor restarts it and the route
	// works again within 5 seconds.
	pids := pidsOf(d.dataDir, "serve catalog")
	if len(pids) != 1 {
		t.Fatalf("processes running 'marquee serve catalog' = %v, want exactly one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		if time.Since(killed) > 5*time.Second {
			t.Fatalf("GET /api/v1/titles still failing 5s after kill -9 of catalog\n%s", childLogs(d.dataDir))
		}
		if r := getJSON(t, d.base+"/api/v1/titles"); r.status == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("catalog answered again %s after kill -9", time.Since(killed).Round(time.Millisecond))

	// SIGTERM stops everything, leaving no process behind.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("marquee dev after SIGTERM: %v, want a clean exit", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("marquee dev did not exit within 20s of SIGTERM")
	}
	waitNoProcesses(t, d.dataDir, 5*time.Second)
}

func TestDevKilledSupervisorLeavesNoOrphans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system; skipped with -short")
	}
	d := startDev(t)
	if n := len(pidsOf(d.dataDir, "marquee serve")); n == 0 {
		t.Fatal("no service processes running")
	}
	d.cmd.Process.Kill()
	d.cmd.Wait()
	waitNoProcesses(t, d.dataDir, 10*time.Second)
}
