package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/gateway/breaker"
)

// metrics are the gateway's Prometheus metrics. Label values are bounded:
// route is a route name from the routing configuration, a probe path,
// "web" (the web app) or "unmatched"; method one of the standard methods or "OTHER"; code an HTTP
// status; upstream a configured upstream name; reason and result fixed
// sets.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	authFailures *prometheus.CounterVec
	keyFetches   *prometheus.CounterVec
	limited      struct{ allowed, refused prometheus.Counter }
	limitedVec   *prometheus.CounterVec
	redisUp      prometheus.Gauge
	// limitFallback counts decisions made in process while Redis was
	// unreachable.
	limitFallback     prometheus.Counter
	breakerState      *prometheus.GaugeVec
	breakerRejections *prometheus.CounterVec
	reloads           *prometheus.CounterVec
	routes            prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_http_requests_total",
			Help: "HTTP requests answered by the gateway, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "marquee_gateway_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_auth_failures_total",
			Help: "Requests refused by authentication, by reason (missing, invalid, forbidden, unavailable).",
		}, []string{"reason"}),
		keyFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_jwks_fetches_total",
			Help: "Fetches of identity's signing keys, by result (ok, error).",
		}, []string{"result"}),
		limitedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_ratelimit_decisions_total",
			Help: "Rate-limit decisions, by result (allowed, limited).",
		}, []string{"result"}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_gateway_ratelimit_redis_up",
			Help: "1 when rate limits are shared through Redis, 0 while Redis is unreachable and limits are in process, -1 without Redis.",
		}),
		limitFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "marquee_gateway_ratelimit_fallback_total",
			Help: "Rate-limit decisions made in process because Redis was unreachable.",
		}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "marquee_gateway_breaker_state",
			Help: "Circuit breaker state by upstream: 0 closed, 1 open, 2 half-open.",
		}, []string{"upstream"}),
		breakerRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_breaker_rejections_total",
			Help: "Requests refused with CIRCUIT_OPEN, by upstream.",
		}, []string{"upstream"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_gateway_routes_reloads_total",
			Help: "Reloads of the routing file, by result (ok, error: refused, the old routes kept).",
		}, []string{"result"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "marquee_gateway_routes",
			Help: "Routes in the routing configuration in force.",
		}),
	}
	m.limited.allowed = m.limitedVec.WithLabelValues("allowed")
	m.limited.refused = m.limitedVec.WithLabelValues("limited")
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.authFailures, m.keyFetches, m.limitedVec,
		m.redisUp, m.limitFallback, m.breakerState, m.breakerRejections, m.reloads, m.routes} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("gateway: metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) observe(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

func (m *metrics) keyFetch(err error) {
	if err != nil {
		m.keyFetches.WithLabelValues("error").Inc()
		return
	}
	m.keyFetches.WithLabelValues("ok").Inc()
}

func (m *metrics) breakerChange(name string, _, to breaker.State) {
	m.breakerState.WithLabelValues(name).Set(float64(to))
}

// methodLabel bounds the method label: a client can send any token.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}
