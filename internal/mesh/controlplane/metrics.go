package controlplane

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's Prometheus series.
type metrics struct {
	instances     *prometheus.GaugeVec
	snapshotsSent prometheus.Counter
	nacks         prometheus.Counter
	certificates  *prometheus.CounterVec
	policyVersion prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "marquee", Subsystem: "mesh", Name: "instances",
			Help: "Instances connected to the control plane, by service, version and health.",
		}, []string{"service", "version", "healthy"}),
		snapshotsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "marquee", Subsystem: "mesh", Name: "snapshots_sent_total",
			Help: "Configuration snapshots sent to sidecars.",
		}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "marquee", Subsystem: "mesh", Name: "nacks_total",
			Help: "Snapshots a sidecar refused to apply.",
		}),
		certificates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "marquee", Subsystem: "mesh", Name: "certificates_issued_total",
			Help: "Workload certificates issued, by service.",
		}, []string{"service"}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "marquee", Subsystem: "mesh", Name: "policy_version",
			Help: "Version of the mesh policy in force.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.instances = register(reg, m.instances, &err)
	m.snapshotsSent = register(reg, m.snapshotsSent, &err)
	m.nacks = register(reg, m.nacks, &err)
	m.certificates = register(reg, m.certificates, &err)
	m.policyVersion = register(reg, m.policyVersion, &err)
	return m, err
}

// register registers c, or returns the collector of the same name already
// registered (a control plane restarted in one process shares it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}

// instanceKey is one label set of the instances gauge.
type instanceKey struct {
	service, version string
	healthy          bool
}

// setInstances replaces the instances gauge with counts.
func (m *metrics) setInstances(counts map[instanceKey]int) {
	m.instances.Reset()
	for k, n := range counts {
		m.instances.WithLabelValues(k.service, k.version, strconv.FormatBool(k.healthy)).Set(float64(n))
	}
}
