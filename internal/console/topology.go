package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/marquee-tv/marquee/internal/mesh/controlplane"
)

// The sidecar metrics the topology is drawn from.
const (
	requestsMetric = "marquee_mesh_requests_total"
	durationMetric = "marquee_mesh_request_duration_seconds"
)

// topologyWindow is how far back rates look: long enough to smooth a
// 2-second scrape, short enough that a shifted split shows within seconds.
const topologyWindow = 10 * time.Second

// maxMetricsBody bounds one sidecar's /metrics page.
const maxMetricsBody = 8 << 20

// edgeKey names the traffic from one service to a version of another.
type edgeKey struct{ src, dst, ver string }

// series is what one sidecar reported at one scrape: outbound request
// counts (all and failed) and cumulative latency buckets per edge.
type series struct {
	requests map[edgeKey]float64
	errors   map[edgeKey]float64
	buckets  map[edgeKey][]bucket
}

type bucket struct {
	le    float64
	count float64
}

// scrape is one round over every sidecar.
type scrape struct {
	at        time.Time
	instances map[string]series // by instance id
	failures  []scrapeFailure
}

type scrapeFailure struct {
	Instance string `json:"instance"`
	Address  string `json:"address"`
	Error    string `json:"error"`
}

// topology scrapes the sidecars and keeps the scrapes of the last window.
type topology struct {
	instances func() []controlplane.InstanceStatus
	log       *slog.Logger
	client    *http.Client

	mu      sync.Mutex
	scrapes []scrape // oldest first
}

func newTopology(instances func() []controlplane.InstanceStatus, log *slog.Logger) *topology {
	return &topology{instances: instances, log: log, client: &http.Client{Timeout: 1500 * time.Millisecond}}
}

func (t *topology) list() []controlplane.InstanceStatus {
	if t.instances == nil {
		return nil
	}
	return t.instances()
}

func (t *topology) run(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		t.scrapeOnce(ctx, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scrapeOnce reads every sidecar's metrics and records them as of at.
func (t *topology) scrapeOnce(ctx context.Context, at time.Time) {
	insts := t.list()
	sc := scrape{at: at, instances: make(map[string]series, len(insts))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, in := range insts {
		if in.MetricsAddress == "" {
			continue
		}
		wg.Go(func() {
			s, err := t.fetch(ctx, in.MetricsAddress)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				sc.failures = append(sc.failures, scrapeFailure{Instance: in.ID, Address: in.MetricsAddress, Error: err.Error()})
				return
			}
			sc.instances[in.ID] = s
		})
	}
	wg.Wait()
	slices.SortFunc(sc.failures, func(a, b scrapeFailure) int { return strings.Compare(a.Instance, b.Instance) })
	if ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scrapes = append(t.scrapes, sc)
	// Keep one scrape older than the window, so the window is always full.
	for len(t.scrapes) > 2 && at.Sub(t.scrapes[1].at) >= topologyWindow {
		t.scrapes = t.scrapes[1:]
	}
}

func (t *topology) fetch(ctx context.Context, addr string) (series, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return series{}, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := t.client.Do(req)
	if err != nil {
		return series{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return series{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, maxMetricsBody))
}

// parseMetrics keeps the outbound samples of the sidecar's request
// metrics: the caller's view of each edge.
func parseMetrics(r io.Reader) (series, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return series{}, fmt.Errorf("parse metrics: %w", err)
	}
	s := series{requests: map[edgeKey]float64{}, errors: map[edgeKey]float64{}, buckets: map[edgeKey][]bucket{}}
	if f := fams[requestsMetric]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			if l["direction"] != "outbound" || m.GetCounter() == nil {
				continue
			}
			k := edgeKey{l["source"], l["destination"], l["destination_version"]}
			v := m.GetCounter().GetValue()
			s.requests[k] += v
			if isError(l["code"]) {
				s.errors[k] += v
			}
		}
	}
	if f := fams[durationMetric]; f != nil {
		for _, m := range f.GetMetric() {
			l := labels(m)
			h := m.GetHistogram()
			if l["direction"] != "outbound" || h == nil {
				continue
			}
			k := edgeKey{l["source"], l["destination"], l["destination_version"]}
			bs := make([]bucket, 0, len(h.GetBucket())+1)
			for _, b := range h.GetBucket() {
				bs = append(bs, bucket{le: b.GetUpperBound(), count: float64(b.GetCumulativeCount())})
			}
			if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].le, 1) {
				bs = append(bs, bucket{le: math.Inf(1), count: float64(h.GetSampleCount())})
			}
			s.buckets[k] = addBuckets(s.buckets[k], bs, 1)
		}
	}
	return s, nil
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// isError tells failures of the mesh or of the server from answers: a
// refused or invalid request (4xx, NOT_FOUND, ...) is the caller's doing.
func isError(code string) bool {
	switch code {
	case "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN", "DATA_LOSS", "RESOURCE_EXHAUSTED":
		return true
	}
	n, err := strconv.Atoi(code)
	return err == nil && n >= 500 && n <= 599
}

// addBuckets returns acc + sign·bs, bucket by bucket; both use the same
// bounds (one histogram definition), and a mismatch keeps acc's bounds.
func addBuckets(acc, bs []bucket, sign float64) []bucket {
	if acc == nil {
		acc = make([]bucket, len(bs))
		for i, b := range bs {
			acc[i] = bucket{le: b.le}
		}
	}
	for i := range min(len(acc), len(bs)) {
		acc[i].count += sign * bs[i].count
	}
	return acc
}

// quantile estimates the q-quantile of cumulative buckets as Prometheus'
// histogram_quantile does: linear within the bucket, the last finite
// bound when it falls in +Inf. ok is false without observations.
func quantile(q float64, bs []bucket) (v float64, ok bool) {
	if len(bs) == 0 {
		return 0, false
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for i, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				if i == 0 {
					return 0, true
				}
				return bs[i-1].le, true
			}
			if b.count == prevCount {
				return b.le, true
			}
			return prevLe + (b.le-prevLe)*(rank-prevCount)/(b.count-prevCount), true
		}
		prevLe, prevCount = b.le, b.count
	}
	return prevLe, true
}

// Topology is the answer of GET /api/v1/console/topology.
type Topology struct {
	// WindowSeconds is the time the rates are measured over; 0 until two
	// scrapes are in.
	WindowSeconds float64         `json:"window_seconds"`
	At            time.Time       `json:"at"`
	Nodes         []Node          `json:"nodes"`
	Edges         []Edge          `json:"edges"`
	Failures      []scrapeFailure `json:"scrape_failures"`
	Note          string          `json:"note,omitempty"`
}

// Node is a service of the mesh.
type Node struct {
	Service   string   `json:"service"`
	Instances int      `json:"instances"`
	Healthy   int      `json:"healthy"`
	Versions  []string `json:"versions"`
}

// Edge is the traffic from one service to another, as the caller's
// sidecar saw it, with its split by destination version.
type Edge struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Traffic
	Versions []VersionTraffic `json:"versions"`
}

// VersionTraffic is an edge's traffic to one version.
type VersionTraffic struct {
	Version string `json:"version"`
	Traffic
}

// Traffic is a rate of requests with its failures and latency.
type Traffic struct {
	RPS       float64 `json:"rps"`
	ErrorRate float64 `json:"error_rate"`
	// P99Ms is nil when no request finished within the window.
	P99Ms *float64 `json:"p99_ms"`
}

// acc accumulates one edge's (or version's) deltas.
type acc struct {
	requests, errors float64
	buckets          []bucket
}

func (a *acc) add(cur, old series, k edgeKey) {
	dr, de := cur.requests[k]-old.requests[k], cur.errors[k]-old.errors[k]
	db := addBuckets(nil, cur.buckets[k], 1)
	if dr < 0 || de < 0 {
		// A restarted sidecar counts from zero again.
		dr, de = cur.requests[k], cur.errors[k]
	} else if ob, ok := old.buckets[k]; ok {
		db = addBuckets(db, ob, -1)
	}
	a.requests += dr
	a.errors += de
	if len(cur.buckets[k]) > 0 {
		a.buckets = addBuckets(a.buckets, db, 1)
	}
}

func (a *acc) traffic(secs float64) Traffic {
	t := Traffic{}
	if secs > 0 {
		t.RPS = a.requests / secs
	}
	if a.requests > 0 {
		t.ErrorRate = a.errors / a.requests
	}
	if p, ok := quantile(0.99, a.buckets); ok {
		ms := p * 1000
		t.P99Ms = &ms
	}
	return t
}

// snapshot computes the topology over the last window.
func (t *topology) snapshot() Topology {
	out := Topology{Nodes: []Node{}, Edges: []Edge{}, Failures: []scrapeFailure{}}
	nodes := map[string]*Node{}
	node := func(s string) *Node {
		n := nodes[s]
		if n == nil {
			n = &Node{Service: s, Versions: []string{}}
			nodes[s] = n
		}
		return n
	}
	for _, in := range t.list() {
		n := node(in.Service)
		n.Instances++
		if in.Healthy {
			n.Healthy++
		}
		if in.Version != "" && !slices.Contains(n.Versions, in.Version) {
			n.Versions = append(n.Versions, in.Version)
		}
	}

	t.mu.Lock()
	var cur, old *scrape
	if n := len(t.scrapes); n > 0 {
		cur = &t.scrapes[n-1]
		if n > 1 {
			old = &t.scrapes[0]
		}
	}
	t.mu.Unlock()

	switch {
	case cur == nil:
		out.Note = "no scrape of the sidecars yet"
	case old == nil:
		out.Note = "rates need two scrapes of the sidecars"
		out.At = cur.at
		out.Failures = append(out.Failures, cur.failures...)
	default:
		out.At = cur.at
		out.Failures = append(out.Failures, cur.failures...)
		secs := cur.at.Sub(old.at).Seconds()
		out.WindowSeconds = secs
		edges := map[[2]string]*acc{}
		versions := map[edgeKey]*acc{}
		for id, cs := range cur.instances {
			ps, ok := old.instances[id]
			if !ok {
				// Unknown a window ago (new, or its scrape failed then):
				// its totals are not this window's traffic.
				continue
			}
			for k := range cs.requests {
				ek := [2]string{k.src, k.dst}
				if edges[ek] == nil {
					edges[ek] = &acc{}
				}
				if versions[k] == nil {
					versions[k] = &acc{}
				}
				edges[ek].add(cs, ps, k)
				versions[k].add(cs, ps, k)
			}
		}
		for ek, a := range edges {
			node(ek[0])
			node(ek[1])
			e := Edge{Source: ek[0], Destination: ek[1], Traffic: a.traffic(secs), Versions: []VersionTraffic{}}
			for k, va := range versions {
				// A version with no traffic in the window is history.
				if k.src == ek[0] && k.dst == ek[1] && va.requests > 0 {
					e.Versions = append(e.Versions, VersionTraffic{Version: k.ver, Traffic: va.traffic(secs)})
				}
			}
			slices.SortFunc(e.Versions, func(a, b VersionTraffic) int { return strings.Compare(a.Version, b.Version) })
			out.Edges = append(out.Edges, e)
		}
		slices.SortFunc(out.Edges, func(a, b Edge) int {
			return strings.Compare(a.Source+"\x00"+a.Destination, b.Source+"\x00"+b.Destination)
		})
	}
	for _, n := range nodes {
		slices.Sort(n.Versions)
		out.Nodes = append(out.Nodes, *n)
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return strings.Compare(a.Service, b.Service) })
	return out
}

func (c *Console) getTopology(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, c.topo.snapshot())
}
