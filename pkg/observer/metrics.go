package observer

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Phases are the phases a request is counted in, each exported even at zero so that a query
// for one never finds nothing.
var Phases = []string{report.PhasePending, rollout.PhaseWaiting, rollout.PhaseUpgrading, rollout.PhaseVerifying,
	rollout.PhaseUpgraded, rollout.PhaseFailed, rollout.PhaseSkipped}

// Metrics is what the observer exports: gauges read from the newest picture at scrape time,
// and histograms and counters of what it saw change. Histograms carry the Promise only: a
// request name per series would grow without bound.
type Metrics struct {
	registry        *prometheus.Registry
	slotWait        *prometheus.HistogramVec
	upgradeDuration *prometheus.HistogramVec
	unhealthyHold   *prometheus.HistogramVec
	handoffGap      *prometheus.HistogramVec
	gateTrips       *prometheus.CounterVec
}

var (
	// One second to a little over four hours: slot waits, upgrades and unhealthy holds.
	longBuckets = prometheus.ExponentialBuckets(1, 2, 15)
	// Ten milliseconds to a quarter of an hour: handoffs are quick unless something stalls them.
	handoffBuckets = prometheus.ExponentialBuckets(0.01, 2.5, 13)
)

func newMetrics() *Metrics {
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{"promise"})
	}
	return &Metrics{
		registry:        prometheus.NewRegistry(),
		slotWait:        histogram("turnstile_slot_wait_seconds", "Time a request waited in the queue before it took a slot.", longBuckets),
		upgradeDuration: histogram("turnstile_upgrade_duration_seconds", "Time a request held its slot: slot taken to released.", longBuckets),
		unhealthyHold:   histogram("turnstile_unhealthy_hold_seconds", "Time a slot was held by a request that was unhealthy or failed.", longBuckets),
		handoffGap:      histogram("turnstile_handoff_gap_seconds", "Time from a slot's release, with requests waiting, to the next take.", handoffBuckets),
		gateTrips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "turnstile_gate_trips_total",
			Help: "Rollouts paused by a ratio gate, by gate."}, []string{"promise", "gate"}),
	}
}

func (m *Metrics) register(o *Observer) {
	m.registry.MustRegister(m.slotWait, m.upgradeDuration, m.unhealthyHold, m.handoffGap, m.gateTrips, gauges{o},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves the metrics in Prometheus's exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

var (
	descInfo      = prometheus.NewDesc("turnstile_rollout_info", "A Promise's rollout: its target and previous version.", []string{"promise", "target", "previous"}, nil)
	descRequests  = prometheus.NewDesc("turnstile_requests", "Requests of the rollout by phase.", []string{"promise", "version", "phase"}, nil)
	descQueue     = prometheus.NewDesc("turnstile_queue_depth", "Requests waiting for a slot.", []string{"promise"}, nil)
	descHeld      = prometheus.NewDesc("turnstile_slots_held", "Slots held now.", []string{"promise"}, nil)
	descHeldSick  = prometheus.NewDesc("turnstile_slots_held_unhealthy", "Slots held now by a request that failed or is unhealthy on its own fresh records: the rollout sits on it.", []string{"promise"}, nil)
	descSlots     = prometheus.NewDesc("turnstile_slots", "Slots of the Promise's turnstile.", []string{"promise"}, nil)
	descPaused    = prometheus.NewDesc("turnstile_rollout_paused", "1 while the rollout is paused.", []string{"promise"}, nil)
	descAborted   = prometheus.NewDesc("turnstile_rollout_aborted", "1 once the rollout's target is aborted.", []string{"promise"}, nil)
	descProgress  = prometheus.NewDesc("turnstile_rollout_progress_ratio", "Share of the rollout's requests upgraded (or skipped).", []string{"promise", "version"}, nil)
	descHold      = prometheus.NewDesc("turnstile_platform_hold", "1 while the platform-wide hold (pause --all) stops every rollout.", nil, nil)
	descStartTime = prometheus.NewDesc("turnstile_rollout_start_time_seconds", "When the rollout to the target began, in seconds since the epoch.", []string{"promise", "version"}, nil)
)

// gauges reads the newest picture at every scrape, so a Promise that is gone leaves no series.
type gauges struct{ o *Observer }

func (g gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descRequests, descQueue, descHeld, descHeldSick, descSlots, descPaused, descAborted, descProgress, descStartTime, descHold} {
		ch <- d
	}
}

func (g gauges) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	snap := g.o.Snapshot()
	gauge(descHold, boolean(snap.Hold.Active))
	for _, r := range snap.Rollouts {
		gauge(descInfo, 1, r.Promise, r.Target, r.Previous)
		phases, sick := map[string]int{}, 0
		for _, row := range r.Rows {
			phases[row.Phase]++
			if sickHolder(row) {
				sick++
			}
		}
		for _, p := range Phases {
			gauge(descRequests, float64(phases[p]), r.Promise, r.Target, p)
		}
		gauge(descQueue, float64(len(r.Queue)), r.Promise)
		gauge(descHeld, float64(r.SlotsHeld()), r.Promise)
		gauge(descHeldSick, float64(sick), r.Promise)
		gauge(descSlots, float64(r.Slots), r.Promise)
		gauge(descPaused, boolean(r.Paused), r.Promise)
		gauge(descAborted, boolean(r.Aborted), r.Promise)
		progress := 0.0
		if r.Total > 0 {
			progress = float64(r.Upgraded) / float64(r.Total)
		}
		gauge(descProgress, progress, r.Promise, r.Target)
		if !r.Started.IsZero() {
			gauge(descStartTime, float64(r.Started.Unix()), r.Promise, r.Target)
		}
	}
}

func boolean(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
