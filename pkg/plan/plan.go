// Package plan previews a Promise's rollout without writing anything: which requests the
// turnstile will take, in which order and waves, on what terms, and roughly how long it will
// take. It is a pure function of what kubectl turnstile plan reads: the Promise's own stage
// settings, its requests and its turnstile's Leases.
package plan

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// Input is what a plan is made from.
type Input struct {
	Promise string
	// Target is the version to roll out.
	Target string
	// Acquire and Await are the settings of the Promise's stages, validated; Await is nil
	// when the Promise has no await stage.
	Acquire  stageflags.Acquire
	Await    *stageflags.Await
	Requests []unstructured.Unstructured
	View     turnstile.View
	Now      time.Time
	// PipelineTime is how long one request's own configure pipeline takes, for the estimate.
	PipelineTime time.Duration
}

// Plan is the preview.
type Plan struct {
	Promise string `json:"promise"`
	// From is the version the rollout record names now, if another than Target.
	From   string `json:"from,omitempty"`
	Target string `json:"target"`
	// Started: the rollout to Target is under way already (the record names it).
	Started   bool        `json:"started"`
	Slots     int         `json:"slots"`
	SlotsFrom string      `json:"slotsFrom"`
	WaveSlots map[int]int `json:"waveSlots,omitempty"`
	Waves     []Wave      `json:"waves"`
	// The requests the turnstile does not gate: first installs, those on Target already,
	// and those being deleted.
	FirstInstalls []Row `json:"firstInstalls"`
	OnTarget      []Row `json:"onTarget"`
	Deleting      []Row `json:"deleting"`
	// Windows are the windows that apply, and Start when the first upgrade may begin (or why
	// not now).
	Windows []string `json:"windows"`
	Start   string   `json:"start"`
	// Gates are what may hold the rollout on the way, in words.
	Gates []string `json:"gates"`
	// Estimate is the rollout's duration from its first start, with how it was worked out.
	Estimate        time.Duration `json:"-"`
	EstimateSeconds int64         `json:"estimateSeconds"`
	EstimateHow     string        `json:"estimateHow"`
}

// Wave is one wave of upgrades, in the order the turnstile will take them.
type Wave struct {
	Wave     int    `json:"wave"`
	Slots    int    `json:"slots"`
	Approval string `json:"approval,omitempty"`
	Requests []Row  `json:"requests"`
}

// Row is one request.
type Row struct {
	Request string `json:"request"`
	Wave    int    `json:"wave"`
	Phase   string `json:"phase,omitempty"`
	Version string `json:"version,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Build makes the plan.
func Build(in Input) Plan {
	a := in.Acquire
	rec := in.View.Rollout
	p := Plan{Promise: in.Promise, Target: in.Target, Started: rec.Target == in.Target && in.Target != "",
		Windows: []string{}, Gates: []string{}, Waves: []Wave{}, FirstInstalls: []Row{}, OnTarget: []Row{}, Deleting: []Row{}}
	if rec.Target != "" && rec.Target != in.Target {
		p.From = rec.Target
	}
	held := map[string]turnstile.Slot{}
	for _, s := range in.View.Slots {
		if s.Held() {
			held[s.Request] = s
		}
	}
	place := map[string]int{} // in line for the target, in the turnstile's order
	for _, t := range in.View.Queue(in.Now) {
		if _, ok := place[t.Request]; !ok && t.Version == in.Target {
			place[t.Request] = len(place)
		}
	}

	fleet := 0
	waves := map[int][]Row{}
	for _, u := range in.Requests {
		key := u.GetNamespace() + "/" + u.GetName()
		wave, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations())
		if !ok || err != nil {
			wave = a.DefaultWave
		}
		status, _ := u.Object["status"].(map[string]any)
		st, _ := rollout.StatusFrom(status)
		row := Row{Request: key, Wave: wave, Phase: st.Phase, Version: st.Version}
		switch {
		case u.GetDeletionTimestamp() != nil:
			p.Deleting = append(p.Deleting, row)
			continue
		case st.Phase == rollout.PhaseUpgraded && st.Version == in.Target:
			p.OnTarget = append(p.OnTarget, row)
		case !a.GateNew && rollout.FirstInstall(status):
			row.Note = "first install: not gated"
			p.FirstInstalls = append(p.FirstInstalls, row)
		default:
			if s, ok := held[key]; ok {
				row.Note = "holds " + s.Name + " since " + s.AcquireTime.UTC().Format(time.TimeOnly)
				if s.Phase == turnstile.PhaseFailed {
					row.Note += ": upgrade failed"
				}
			} else if _, ok := place[key]; ok {
				row.Note = "in line"
			}
			if !st.Began(in.Target) {
				if sick := health.UnhealthyNow(status, in.Promise, string(u.GetUID()), in.Now); sick != "" {
					row.Note = strings.TrimPrefix(row.Note+"; ", "; ") + "unhealthy now (" + sick + "): "
					if a.Preflight == stageflags.PreflightWait {
						row.Note += "waits until healthy (--preflight=wait)"
					} else {
						row.Note += "a failure will be its own, left out of the gates"
					}
				}
			}
			waves[wave] = append(waves[wave], row)
		}
		fleet++
	}

	p.Slots, p.SlotsFrom = slots(a, rec, in.Target, fleet)
	p.WaveSlots = a.WaveSlots
	if p.Started && rec.Slots > 0 {
		p.WaveSlots = rec.WaveSlots // what the rollout recorded is what it applies
	}
	approvals := a.ApprovalWaves
	if p.Started {
		approvals = rec.ApprovalWaves
	}
	for _, w := range slices.Sorted(maps.Keys(waves)) {
		rows := waves[w]
		// Holders first, then the queue in its own order, then those not arrived yet, by name:
		// Kratix re-runs them in an order of its own, and the turnstile serves them as they arrive.
		slices.SortStableFunc(rows, func(x, y Row) int {
			_, hx := held[x.Request]
			_, hy := held[y.Request]
			px, qx := place[x.Request]
			py, qy := place[y.Request]
			switch {
			case hx != hy:
				return boolFirst(hx)
			case qx != qy:
				return boolFirst(qx)
			case qx:
				return cmp.Compare(px, py)
			}
			return cmp.Compare(x.Request, y.Request)
		})
		wave := Wave{Wave: w, Slots: waveSlots(p.Slots, p.WaveSlots, w), Requests: rows}
		if slices.Contains(approvals, w) {
			wave.Approval = fmt.Sprintf("waits for approval: kubectl turnstile approve %s %d", in.Promise, w)
			if p.Started && slices.Contains(rec.Approved, w) {
				wave.Approval = "approved"
			}
		}
		p.Waves = append(p.Waves, wave)
	}

	p.Windows, p.Start = windows(a.Calendar, rec, in.Now)
	p.Gates = gates(in, rec, p)
	p.Estimate, p.EstimateHow = estimate(in, p)
	p.EstimateSeconds = int64(p.Estimate / time.Second)
	return p
}

// slots is how many may upgrade at once, and where that comes from.
func slots(a stageflags.Acquire, rec turnstile.Rollout, target string, fleet int) (int, string) {
	if rec.Target == target && target != "" && rec.Slots > 0 {
		return rec.Slots, "as the rollout recorded when it began"
	}
	if a.Slots.Share() {
		return a.Slots.Of(fleet), fmt.Sprintf("%s of %d requests, counted when the rollout begins", a.Slots.String(), fleet)
	}
	return a.Slots.Of(fleet), "--slots"
}

// waveSlots is how many of a wave may upgrade at once while it is the earliest with work.
func waveSlots(n int, caps map[int]int, wave int) int {
	if c, ok := caps[wave]; ok {
		return min(n, c)
	}
	return n
}

func windows(promise window.Calendar, rec turnstile.Rollout, now time.Time) ([]string, string) {
	out := []string{}
	for who, c := range map[string]window.Calendar{"the Promise's": promise, "the operator's": rec.Windows} {
		for _, w := range c.Allow {
			out = append(out, fmt.Sprintf("allow %s (%s)", w, who))
		}
		for _, w := range c.Deny {
			out = append(out, fmt.Sprintf("deny %s (%s)", w, who))
		}
		if !c.NotBefore.IsZero() {
			out = append(out, fmt.Sprintf("not before %s (%s)", c.NotBefore.UTC().Format(time.RFC3339), who))
		}
	}
	slices.Sort(out)
	if rec.WindowsErr != nil {
		return out, fmt.Sprintf("held: the rollout's windows cannot be read (%v)", rec.WindowsErr)
	}
	v := window.Both(now, promise, rec.Windows)
	switch {
	case v.Open:
		return out, "now: the windows allow it"
	case v.Opens.IsZero():
		return out, v.Reason
	}
	return out, fmt.Sprintf("in %s: %s", window.Human(v.Opens.Sub(now)), v.Reason)
}

// gates are what may hold the rollout on its way, in the order it meets them.
func gates(in Input, rec turnstile.Rollout, p Plan) []string {
	var out []string
	if h := in.View.Hold; h.Active {
		out = append(out, "held platform-wide now ("+cmp.Or(h.Reason, "no reason given")+"): kubectl turnstile resume --all lifts it")
	}
	if rec.Paused {
		out = append(out, "paused now ("+cmp.Or(rec.PauseReason, "no reason given")+"): kubectl turnstile resume "+in.Promise+" lifts it")
	}
	if rec.TermsErr != nil {
		out = append(out, fmt.Sprintf("held: the rollout's recorded slots cannot be read (%v): correct or remove them on Lease %s", rec.TermsErr, turnstile.RolloutName(in.Promise)))
	}
	if rec.AbortedVersion != "" && rec.AbortedVersion == in.Target {
		out = append(out, "the rollout of "+in.Target+" was aborted: no request will upgrade to it")
	}
	for _, w := range p.Waves {
		if w.Approval != "" && w.Approval != "approved" {
			out = append(out, fmt.Sprintf("wave %d %s", w.Wave, w.Approval))
		}
	}
	if a := in.Acquire; a.WaveSoak > 0 {
		out = append(out, fmt.Sprintf("each wave starts %s after the waves before it are done (--wave-soak)", stageflags.FmtDuration(a.WaveSoak)))
	}
	if in.Acquire.WaveGrace > 0 && len(p.Waves) > 1 {
		out = append(out, fmt.Sprintf("a later wave waits up to %s for earlier waves' requests to arrive (--wave-grace)", stageflags.FmtDuration(in.Acquire.WaveGrace)))
	}
	if aw := in.Await; aw == nil {
		out = append(out, "no await stage: slots are not released on health")
	} else {
		out = append(out, fmt.Sprintf("each upgrade holds its slot until healthy on %s for %s, and fails after %d bad reading(s) in a row or %s (an upgrade that fails keeps its slot: the rollout stops there)",
			in.Target, stageflags.FmtDuration(aw.MinHealthy), aw.FailureThreshold, stageflags.FmtDuration(aw.ProgressDeadline)))
		if aw.Gates {
			out = append(out, fmt.Sprintf("a wave pauses the rollout when over %s of its upgrades fail or %s are unhealthy (once %d have upgraded)",
				percent(aw.MaxFailed), percent(aw.MaxUnhealthy), aw.MinSample))
		}
	}
	return out
}

// estimate is the rollout's duration from its first start: each wave in rounds of its slots,
// each round one pipeline and await's soak, and the soak between waves. Windows and approvals
// are not counted: they wait on people and calendars.
func estimate(in Input, p Plan) (time.Duration, string) {
	per := in.PipelineTime
	if in.Await != nil {
		per += in.Await.MinHealthy
	}
	var total time.Duration
	rounds := 0
	for i, w := range p.Waves {
		r := (len(w.Requests) + w.Slots - 1) / w.Slots
		rounds += r
		total += time.Duration(r) * per
		if i > 0 {
			total += in.Acquire.WaveSoak
		}
	}
	how := fmt.Sprintf("%d round(s) of %s (the pipeline, --pipeline-time %s", rounds, stageflags.FmtDuration(per), stageflags.FmtDuration(in.PipelineTime))
	if in.Await != nil {
		how += fmt.Sprintf(", then healthy for %s", stageflags.FmtDuration(in.Await.MinHealthy))
	}
	how += ")"
	if n := len(p.Waves) - 1; n > 0 && in.Acquire.WaveSoak > 0 {
		how += fmt.Sprintf(" and %d soak(s) of %s between waves", n, stageflags.FmtDuration(in.Acquire.WaveSoak))
	}
	return total, how + "; windows and approvals not counted"
}

func percent(r float64) string { return fmt.Sprintf("%g%%", r*100) }

func boolFirst(b bool) int {
	if b {
		return -1
	}
	return 1
}
