package recommendations

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/platform/events"
)

// LagCollector exports how far durable consumers are behind the event
// stream, asking JetStream (events.ConsumerLag) at each scrape:
//
//	marquee_events_consumer_lag{consumer, state="pending"}      matching events not yet delivered
//	marquee_events_consumer_lag{consumer, state="ack_pending"}  delivered, not yet acknowledged
//	marquee_events_consumer_lag{consumer, state="redelivered"}  delivered more than once, not yet acknowledged
//
// A consumer JetStream cannot report on is left out of that scrape.
type LagCollector struct {
	js        jetstream.JetStream
	consumers []string
	timeout   time.Duration
	log       *slog.Logger
	desc      *prometheus.Desc
}

var _ prometheus.Collector = (*LagCollector)(nil)

// NewLagCollector returns a collector of the lag of the named durable
// consumers. A nil logger means slog.Default().
func NewLagCollector(js jetstream.JetStream, logger *slog.Logger, consumers ...string) *LagCollector {
	if logger == nil {
		logger = slog.Default()
	}
	return &LagCollector{
		js:        js,
		consumers: consumers,
		timeout:   2 * time.Second,
		log:       logger,
		desc: prometheus.NewDesc("marquee_events_consumer_lag",
			"Events a durable consumer has not finished, by state (pending, ack_pending, redelivered).",
			[]string{"consumer", "state"}, nil),
	}
}

// Describe sends the metric's descriptor.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect asks JetStream for each consumer's lag.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, name := range c.consumers {
		lag, err := events.ConsumerLag(ctx, c.js, name)
		if err != nil {
			c.log.Debug("recommendations: consumer lag unavailable", "consumer", name, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag.Pending), name, "pending")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag.AckPending), name, "ack_pending")
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(lag.Redelivered), name, "redelivered")
	}
}
