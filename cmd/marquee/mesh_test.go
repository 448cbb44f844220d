package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	recommendationsv1 "github.com/marquee-tv/marquee/gen/marquee/recommendations/v1"
	"github.com/marquee-tv/marquee/internal/platform/principal"
	"github.com/marquee-tv/marquee/internal/platform/seed"
)

// flagOf returns the value of --name in the command line of process pid.
func flagOf(t *testing.T, pid int, name string) string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(string(raw), "\x00")
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("process %d has no --%s", pid, name)
	return ""
}

// sidecarFlag returns a flag of the sidecar of service (the first, if
// there are several).
func sidecarFlag(t *testing.T, d *devSystem, service, name string) string {
	t.Helper()
	pids := pidsOf(d.dataDir, "sidecar --service "+service+" ")
	if len(pids) == 0 {
		t.Fatalf("no sidecar of %s is running", service)
	}
	return flagOf(t, pids[0], name)
}

// TestMesh runs the system with two versions of recommendations behind
// sidecars and drives the mesh from the tools and the admin API.
func TestMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system; skipped with -short")
	}
	d := startDev(t, "--replicas", "recommendations=2")
	creds := readCredentials(t, d.dataDir)
	admin := login(t, d.ops, creds.Admin.Email, creds.Admin.Password)
	viewer := login(t, d.base, creds.Demo.Email, creds.Demo.Password)
	// The tools sign in with the admin's token, not the password, which is
	// limited to a few logins a minute.
	tool := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--control-plane", d.ops)...)
		cmd.Env = append(os.Environ(), "MARQUEE_TOKEN="+admin.token)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	t.Run("status shows every instance healthy", func(t *testing.T) {
		var out string
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			out, err = tool("status")
			if err != nil {
				t.Fatalf("marquee status: %v\n%s", err, out)
			}
			if !strings.Contains(out, "unhealthy") && strings.Contains(out, "recommendations-2") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("marquee status after 20s:\n%s", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, want := range []string{"catalog", "identity", "orders", "playback", "gateway", "(outbound only)", "recommendations-1", "v2", "synced"} {
			if !strings.Contains(out, want) {
				t.Errorf("marquee status does not show %q:\n%s", want, out)
			}
		}
	})

	t.Run("policy get and render as Istio", func(t *testing.T) {
		out, err := tool("mesh", "get")
		if err != nil || !strings.Contains(out, "recommendations:") || !strings.Contains(out, "allow:") {
			t.Errorf("marquee mesh get: %v\n%s", err, out)
		}
		out, err = tool("mesh", "render", "--istio", "--namespace", "tv")
		if err != nil {
			t.Fatalf("marquee mesh render --istio: %v\n%s", err, out)
		}
		for _, want := range []string{"kind: PeerAuthentication", "kind: DestinationRule", "kind: VirtualService", "kind: AuthorizationPolicy", "cluster.local/ns/tv/sa/gateway"} {
			if !strings.Contains(out, want) {
				t.Errorf("Istio rendering lacks %q", want)
			}
		}
		good := t.TempDir() + "/good.yaml"
		current, err := tool("mesh", "get")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(good, []byte(strings.Replace(current, "timeout: 800ms", "timeout: 900ms", 1)), 0o644)
		if out, err := tool("mesh", "apply", good); err != nil || !strings.Contains(out, "policy version 2 in force") {
			t.Errorf("applying an edited policy: %v\n%s; want version 2 in force", err, out)
		}
		if out, err := tool("mesh", "history"); err != nil || !strings.Contains(out, `"version":2`) {
			t.Errorf("marquee mesh history: %v\n%s", err, out)
		}
		bad := t.TempDir() + "/bad.yaml"
		os.WriteFile(bad, []byte("services:\n  catalog:\n    retries: {attempts: 99}\n"), 0o644)
		if out, err := tool("mesh", "apply", bad); err == nil || !strings.Contains(out, "attempts") {
			t.Errorf("applying an invalid policy: %v\n%s; want an error naming attempts", err, out)
		}
	})

	t.Run("a plaintext client is refused by a sidecar", func(t *testing.T) {
		inbound := sidecarFlag(t, d, "catalog", "inbound")
		for _, creds := range []credentials.TransportCredentials{
			insecure.NewCredentials(),
			credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}), // TLS without a client certificate
		} {
			conn, err := grpc.NewClient(inbound, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			conn.Close()
			if err == nil {
				t.Errorf("a call to catalog's sidecar with %s succeeded", creds.Info().SecurityProtocol)
			}
		}
	})

	t.Run("a 10% split sends 10% to v2", func(t *testing.T) {
		r := admin.do("POST", "/api/v1/mesh/split", map[string]any{"service": "recommendations", "weights": map[string]int{"v1": 90, "v2": 10}})
		if r.status != 200 {
			t.Fatalf("split = %d %s", r.status, r.raw)
		}
		// Calls go where the gateway's go: to the gateway's sidecar.
		conn, err := grpc.NewClient(sidecarFlag(t, d, "gateway", "outbound"),
			grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("recommendations"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := recommendationsv1.NewRecommendationsServiceClient(conn)
		ctx := principal.NewOutgoingContext(context.Background(), principal.Principal{AccountID: seed.DemoAccountID, Roles: []string{"viewer"}})
		req := &recommendationsv1.GetRecommendationsRequest{ProfileId: seed.DemoProfiles[0].ID}
		// The new policy reaches the gateway's sidecar within moments.
		deadline := time.Now().Add(10 * time.Second)
		for seenV2 := false; !seenV2; {
			resp, err := client.GetRecommendations(ctx, req)
			if err == nil && resp.GetVersion() == "v2" {
				seenV2 = true
			}
			if time.Now().After(deadline) {
				t.Fatalf("no answer from v2 after 10s (last error %v)", err)
			}
		}
		const n, workers = 10000, 8
		var mu sync.Mutex
		count := map[string]int{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					resp, err := client.GetRecommendations(ctx, req)
					mu.Lock()
					if err != nil {
						count["error: "+status.Code(err).String()]++
					} else {
						count[resp.GetVersion()]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if count["v1"]+count["v2"] != n {
			t.Fatalf("answers = %v, want %d from v1 and v2", count, n)
		}
		share := 100 * float64(count["v2"]) / n
		t.Logf("v2 answered %d of %d (%.2f%%)", count["v2"], n, share)
		if share < 8 || share > 12 {
			t.Errorf("v2 got %.2f%% of requests, want 10%% ± 2", share)
		}
		metrics := getText(t, "http://"+sidecarFlag(t, d, "gateway", "admin-addr")+"/metrics")
		if !strings.Contains(metrics, `destination="recommendations"`) || !strings.Contains(metrics, `destination_version="v2"`) {
			t.Errorf("the gateway sidecar's metrics do not show requests to recommendations v2")
		}
	})

	t.Run("injected aborts degrade the home page and say they are injected", func(t *testing.T) {
		pid := seed.DemoProfiles[0].ID
		r := admin.do("POST", "/api/v1/mesh/fault", map[string]any{"service": "recommendations",
			"fault": map[string]any{"abort": map[string]any{"percent": 100, "grpcCode": "UNAVAILABLE", "httpStatus": 503}}})
		if r.status != 200 {
			t.Fatalf("fault = %d %s", r.status, r.raw)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := viewer.do("GET", "/api/v1/recommendations?profile_id="+pid, nil)
			if r.status == 503 {
				if code := errorCode(r); !strings.Contains(code, "MESH_FAULT_INJECTED") {
					t.Errorf("recommendations under an injected abort = %s, want code MESH_FAULT_INJECTED", r.raw)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("recommendations still answers %d 10s after the fault was applied", r.status)
			}
			time.Sleep(50 * time.Millisecond)
		}
		home := viewer.do("GET", "/api/v1/home?profile_id="+pid, nil)
		if home.status != 200 || !strings.Contains(fmt.Sprint(home.body["degraded"]), "recommended") {
			t.Errorf("home under an injected abort = %d degraded %v, want 200 with the recommended row degraded", home.status, home.body["degraded"])
		}
		metrics := getText(t, "http://"+sidecarFlag(t, d, "gateway", "admin-addr")+"/metrics")
		if !strings.Contains(metrics, "marquee_mesh_faults_total") {
			t.Errorf("the gateway sidecar does not count injected faults")
		}

		r = admin.do("POST", "/api/v1/mesh/fault", map[string]any{"service": "recommendations", "fault": nil})
		if r.status != 200 {
			t.Fatalf("clearing the fault = %d %s", r.status, r.raw)
		}
		deadline = time.Now().Add(10 * time.Second)
		for {
			home := viewer.do("GET", "/api/v1/home?profile_id="+pid, nil)
			if home.status == 200 && !strings.Contains(fmt.Sprint(home.body["degraded"]), "recommended") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("home still degraded 10s after the fault was cleared: %v", home.body["degraded"])
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("the console shows traffic and its split control moves it", func(t *testing.T) {
		exe := os.Getenv("MARQUEE_TEST_BROWSER")
		if exe == "" {
			t.Skip("browser test skipped: set MARQUEE_TEST_BROWSER to a Chromium executable to run it")
		}
		pid := seed.DemoProfiles[0].ID
		stop := make(chan struct{})
		var traffic sync.WaitGroup
		traffic.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
					viewer.do("GET", "/api/v1/titles?page_size=5", nil)
				}
			}
		})
		defer func() { close(stop); traffic.Wait() }()

		b := newBrowser(t, exe, d.ops)
		b.open("/")
		b.fill("#email", creds.Admin.Email)
		b.fill("#password", creds.Admin.Password)
		b.click(`#login-form button[type="submit"]`)
		b.waitFor("the gateway → catalog edge with traffic", `(e => !!e && /([1-9][0-9]*\.[0-9]|0\.[1-9]) rps/.test(e.textContent))(document.querySelector('g.edge[data-source="gateway"][data-destination="catalog"]'))`)
		b.screenshot("console-topology")

		b.click(`nav a[href="#traffic"]`)
		b.waitFor("the recommendations split control", `!!document.querySelector('input.split[data-service="recommendations"]')`)
		b.screenshot("console-traffic")
		// All of recommendations to v2, from the keyboard.
		b.do("move the split to v2", chromedp.Focus(chromedp.CSS(`input.split[data-service="recommendations"]`)), chromedp.KeyEvent(kb.End))
		deadline := time.Now().Add(20 * time.Second)
		for streak := 0; streak < 20; {
			r := viewer.do("GET", "/api/v1/recommendations?profile_id="+pid, nil)
			if r.status == 200 && str(r.body, "version") == "v2" {
				streak++
				continue
			}
			streak = 0
			if time.Now().After(deadline) {
				t.Fatalf("recommendations still answered from %q (status %d) 20s after the split moved to v2", str(r.body, "version"), r.status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
