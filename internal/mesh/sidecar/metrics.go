package sidecar

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/mesh/ca"
)

// metrics are the proxy's Prometheus metrics. Label-bound series are
// cached: WithLabelValues hashes and allocates on every call, which the
// request path cannot afford.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	ejections *prometheus.CounterVec
	faults    *prometheus.CounterVec
	snapshot  prometheus.Gauge

	reqSeries sync.Map // reqKey → prometheus.Counter
	durSeries sync.Map // durKey → prometheus.Observer
	// reqCount bounds reqSeries: methods come from requests, and a caller
	// sending random paths must not grow memory without end.
	reqCount atomic.Int64
}

// maxRequestSeries caps the request counter's series; beyond it new
// methods are counted as "other".
const maxRequestSeries = 4096

type reqKey struct{ dir, src, dst, ver, method, code string }
type durKey struct{ dir, src, dst, ver string }

func newMetrics(reg prometheus.Registerer, certs *ca.Workload) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_mesh_requests_total",
			Help: "Requests through the sidecar, by direction, source and destination service, destination version, method and code (gRPC code name, or HTTP status).",
		}, []string{"direction", "source", "destination", "destination_version", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "marquee_mesh_request_duration_seconds",
			Help:    "Time from a request's arrival at the sidecar to the end of its response.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"direction", "source", "destination", "destination_version"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_mesh_retries_total",
			Help: "Retried attempts of outbound requests, by destination service.",
		}, []string{"destination"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_mesh_ejections_total",
			Help: "Endpoints ejected by outlier detection, by destination service.",
		}, []string{"destination"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_mesh_faults_total",
			Help: "Injected faults, by destination service and kind (delay, abort).",
		}, []string{"destination", "kind"}),
		snapshot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_mesh_snapshot_version",
			Help: "Version of the configuration snapshot in use (0: none yet).",
		}),
	}
	expiry := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "marquee_mesh_certificate_expiry_seconds",
		Help: "Seconds until the workload certificate expires (0 without one).",
	}, func() float64 {
		na := certs.NotAfter()
		if na.IsZero() {
			return 0
		}
		return time.Until(na).Seconds()
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.retries, m.ejections, m.faults, m.snapshot, expiry} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("sidecar: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) request(k reqKey) prometheus.Counter {
	if c, ok := m.reqSeries.Load(k); ok {
		return c.(prometheus.Counter)
	}
	if m.reqCount.Load() >= maxRequestSeries {
		k.method = "other"
		if c, ok := m.reqSeries.Load(k); ok {
			return c.(prometheus.Counter)
		}
	}
	c, loaded := m.reqSeries.LoadOrStore(k, m.requests.WithLabelValues(k.dir, k.src, k.dst, k.ver, k.method, k.code))
	if !loaded {
		m.reqCount.Add(1)
	}
	return c.(prometheus.Counter)
}

func (m *metrics) durations(k durKey) prometheus.Observer {
	if o, ok := m.durSeries.Load(k); ok {
		return o.(prometheus.Observer)
	}
	o, _ := m.durSeries.LoadOrStore(k, m.duration.WithLabelValues(k.dir, k.src, k.dst, k.ver))
	return o.(prometheus.Observer)
}

// httpStatusText holds strconv.Itoa of the HTTP statuses, so the code
// label of plain HTTP requests costs no allocation.
var httpStatusText = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusLabel(status int) string {
	if status >= 0 && status < len(httpStatusText) {
		return httpStatusText[status]
	}
	return strconv.Itoa(status)
}
