package saga

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus series, labelled by definition.
type metrics struct {
	started        *prometheus.CounterVec
	completed      *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	compensated    *prometheus.CounterVec
	needsAttention *prometheus.CounterVec
	fenced         *prometheus.CounterVec
	stepSeconds    *prometheus.HistogramVec
	inflight       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "marquee", Subsystem: "saga", Name: name, Help: help}, []string{"definition"})
	}
	m := &metrics{
		started:        counter("started_total", "Sagas started."),
		completed:      counter("completed_total", "Sagas completed."),
		rejected:       counter("rejected_total", "Sagas rejected: a step refused and nothing needed undoing."),
		compensated:    counter("compensated_total", "Sagas compensated."),
		needsAttention: counter("needs_attention_total", "Sagas stopped in needs_attention."),
		fenced:         counter("fenced_total", "Writes refused because another owner took the saga's lease."),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "marquee", Subsystem: "saga", Name: "step_duration_seconds",
			Help:    "Duration of one attempt of a saga step, by step, kind and outcome (succeeded, refused, retry, failed).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"definition", "step", "kind", "outcome"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "marquee", Subsystem: "saga", Name: "inflight", Help: "Sagas being driven by this engine now."}),
	}
	if reg == nil {
		return m, nil
	}
	// A collector already registered (a second engine in one process)
	// is shared.
	var err error
	m.started = register(reg, m.started, &err)
	m.completed = register(reg, m.completed, &err)
	m.rejected = register(reg, m.rejected, &err)
	m.compensated = register(reg, m.compensated, &err)
	m.needsAttention = register(reg, m.needsAttention, &err)
	m.fenced = register(reg, m.fenced, &err)
	m.stepSeconds = register(reg, m.stepSeconds, &err)
	m.inflight = register(reg, m.inflight, &err)
	return m, err
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		if *errp == nil {
			*errp = err
		}
	}
	return c
}

func (m *metrics) finished(def string, st State) {
	switch st {
	case StateCompleted:
		m.completed.WithLabelValues(def).Inc()
	case StateRejected:
		m.rejected.WithLabelValues(def).Inc()
	case StateCompensated:
		m.compensated.WithLabelValues(def).Inc()
	case StateNeedsAttention:
		m.needsAttention.WithLabelValues(def).Inc()
	}
}
