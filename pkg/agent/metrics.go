package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the agent's Prometheus metrics.
type Metrics struct {
	ChecksRun      *prometheus.CounterVec
	CheckDuration  *prometheus.HistogramVec
	RecordsWritten *prometheus.CounterVec
	WriteErrors    prometheus.Counter
	Definitions    prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg, when it is not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ChecksRun: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnstile_agent_checks_total", Help: "Checks run, by type and result (pass, fail, unknown).",
		}, []string{"type", "result"}),
		CheckDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "turnstile_agent_check_duration_seconds", Help: "How long checks took, by type.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		RecordsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "turnstile_agent_records_written_total", Help: "HealthRecords written to the platform, by reason (change, heartbeat).",
		}, []string{"reason"}),
		WriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turnstile_agent_record_write_errors_total", Help: "HealthRecord writes that failed.",
		}),
		Definitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turnstile_agent_definitions", Help: "HealthDefinitions being checked.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ChecksRun, m.CheckDuration, m.RecordsWritten, m.WriteErrors, m.Definitions)
	}
	return m
}
