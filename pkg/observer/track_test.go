package observer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kratix-turnstile/turnstile/pkg/gates"
	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// row is a request of the test rollout: a phase, the time it entered it, and a slot.
func row(name, phase string, since int, slot string) report.Row {
	r := report.Row{Namespace: "default", Name: name, Phase: phase, Slot: slot, Health: "-"}
	if since >= 0 {
		r.Since = at(since)
	}
	return r
}

func snap(now int, paused string, rows ...report.Row) Snapshot {
	return snapTo("v2", now, paused, rows...)
}

func snapTo(target string, now int, paused string, rows ...report.Row) Snapshot {
	r := Rollout{Report: report.Report{Promise: "webapp", Target: target, Rows: rows, Paused: paused != "", PauseReason: paused}}
	for _, row := range rows {
		if row.Phase == rollout.PhaseWaiting {
			r.Waiting++
		}
	}
	return Snapshot{At: at(now), Rollouts: []Rollout{r}}
}

func sick(r report.Row) report.Row { r.Health, r.Fresh = "unhealthy", true; return r }

// sums is what a histogram of the test Promise holds: its count and sum.
func sums(t *testing.T, h *prometheus.HistogramVec) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.WithLabelValues("webapp").(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

func TestTracker(t *testing.T) {
	type want struct {
		wait, upgrade, unhealthy, handoff []float64 // count, sum
		trips                             float64
		moments                           int
	}
	tests := []struct {
		name  string
		snaps []Snapshot
		want  want
	}{
		{
			name:  "the first picture only sets the scene",
			snaps: []Snapshot{snap(100, "", row("a", rollout.PhaseUpgrading, 90, "s0"), row("b", rollout.PhaseWaiting, 80, ""))},
			want:  want{wait: []float64{0, 0}, upgrade: []float64{0, 0}, unhealthy: []float64{0, 0}, handoff: []float64{0, 0}, moments: 2},
		},
		{
			name: "a handoff: a's upgrade, b's wait and the gap, from the records' times",
			snaps: []Snapshot{
				snap(100, "", row("a", rollout.PhaseUpgrading, 90, "s0"), row("b", rollout.PhaseWaiting, 80, "")),
				snap(130, "", row("a", rollout.PhaseUpgraded, 120, ""), row("b", rollout.PhaseWaiting, 80, "")),
				snap(131, "", row("a", rollout.PhaseUpgraded, 120, ""), row("b", rollout.PhaseUpgrading, 121, "s0")),
				snap(200, "", row("a", rollout.PhaseUpgraded, 120, ""), row("b", rollout.PhaseUpgraded, 190, "")),
			},
			want: want{wait: []float64{1, 41}, upgrade: []float64{2, 30 + 69}, unhealthy: []float64{0, 0}, handoff: []float64{1, 1}, moments: 5},
		},
		{
			name: "a slot held on an unhealthy request, and a gate trip counted once",
			snaps: []Snapshot{
				snap(100, "", row("a", rollout.PhaseUpgrading, 90, "s0")),
				snap(110, "", sick(row("a", rollout.PhaseVerifying, 90, "s0"))),
				snap(150, gates.PauseReason(1, gates.Verdict{Reason: gates.UnhealthyRatio + " 1/1 = 100 % > 10 %"}), sick(row("a", rollout.PhaseVerifying, 90, "s0"))),
				snap(160, gates.PauseReason(1, gates.Verdict{Reason: gates.UnhealthyRatio + " 1/1 = 100 % > 10 %"}), sick(row("a", rollout.PhaseVerifying, 90, "s0"))),
				snap(170, "", row("a", rollout.PhaseUpgraded, 165, "")),
			},
			want: want{wait: []float64{0, 0}, upgrade: []float64{1, 75}, unhealthy: []float64{1, 60}, handoff: []float64{0, 0}, trips: 1, moments: 3},
		},
		{
			name: "a handoff within one picture is paired whatever the order of the rows",
			snaps: []Snapshot{
				snap(100, "", row("a", rollout.PhaseWaiting, 80, ""), row("b", rollout.PhaseUpgrading, 90, "s0")),
				snap(130, "", row("a", rollout.PhaseUpgrading, 121, "s0"), row("b", rollout.PhaseUpgraded, 120, "")),
			},
			want: want{wait: []float64{1, 41}, upgrade: []float64{1, 30}, unhealthy: []float64{0, 0}, handoff: []float64{1, 1}, moments: 4},
		},
		{
			name: "a wait given up does not carry into the next rollout",
			snaps: []Snapshot{
				snapTo("v2", 100, "", row("a", rollout.PhaseWaiting, 80, ""), row("b", rollout.PhaseUpgrading, 90, "s0")),
				snapTo("v2", 200, "", row("a", report.PhasePending, -1, ""), row("b", rollout.PhaseUpgraded, 150, "")),
				snapTo("v3", 500, "", row("a", rollout.PhaseWaiting, 490, ""), row("b", rollout.PhaseUpgrading, 495, "s0")),
				snapTo("v3", 600, "", row("a", rollout.PhaseUpgrading, 560, "s0"), row("b", rollout.PhaseUpgraded, 550, "")),
			},
			want: want{wait: []float64{1, 70}, upgrade: []float64{2, 60 + 55}, unhealthy: []float64{0, 0}, handoff: []float64{1, 10}, moments: 7},
		},
		{
			name: "records from before the upgrade are no unhealthy hold",
			snaps: []Snapshot{
				snap(100, "", row("a", rollout.PhaseUpgrading, 90, "s0")),
				snap(110, "", func() report.Row { r := row("a", rollout.PhaseUpgrading, 90, "s0"); r.Health = "unhealthy"; return r }()),
				snap(170, "", row("a", rollout.PhaseUpgraded, 165, "")),
			},
			want: want{wait: []float64{0, 0}, upgrade: []float64{1, 75}, unhealthy: []float64{0, 0}, handoff: []float64{0, 0}, moments: 2},
		},
		{
			name: "no handoff is timed for a release nobody waited for",
			snaps: []Snapshot{
				snap(100, "", row("a", rollout.PhaseUpgrading, 90, "s0")),
				snap(130, "", row("a", rollout.PhaseUpgraded, 120, "")),
			},
			want: want{wait: []float64{0, 0}, upgrade: []float64{1, 30}, unhealthy: []float64{0, 0}, handoff: []float64{0, 0}, moments: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			tr := newTracker(m)
			prev := Snapshot{}
			for _, s := range tt.snaps {
				tr.observe(prev, s)
				prev = s
			}
			for _, c := range []struct {
				name string
				h    *prometheus.HistogramVec
				want []float64
			}{{"slot wait", m.slotWait, tt.want.wait}, {"upgrade", m.upgradeDuration, tt.want.upgrade},
				{"unhealthy hold", m.unhealthyHold, tt.want.unhealthy}, {"handoff", m.handoffGap, tt.want.handoff}} {
				if n, sum := sums(t, c.h); float64(n) != c.want[0] || sum != c.want[1] {
					t.Errorf("%s: count %d sum %g, want count %g sum %g", c.name, n, sum, c.want[0], c.want[1])
				}
			}
			if got := testutil.ToFloat64(m.gateTrips.WithLabelValues("webapp", gates.UnhealthyRatio)); got != tt.want.trips {
				t.Errorf("gate trips = %g, want %g", got, tt.want.trips)
			}
			if got := len(tr.timelines()["webapp"]); got != tt.want.moments {
				t.Errorf("timeline has %d moments, want %d: %+v", got, tt.want.moments, tr.timelines()["webapp"])
			}
		})
	}
}
