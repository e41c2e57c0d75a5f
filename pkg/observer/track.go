package observer

import (
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// timelineLength bounds each rollout's timeline: the newest moments are kept.
const timelineLength = 500

// tracker turns the changes between two pictures into durations, counts and a timeline. Times
// come from the records where they carry one (the slot's acquire time, a status's since), so
// that what the observer measures is what happened, not when it happened to look.
type tracker struct {
	m        *Metrics
	promises map[string]*promiseTrack
}

type promiseTrack struct {
	waiting   map[string]time.Time // request → when it began to wait
	holding   map[string]time.Time // request → when it took its slot
	unhealthy map[string]time.Time // request → since when its slot is held while it is unhealthy
	releases  []time.Time          // slots released while requests waited, not yet taken again
	timeline  []Moment
}

func newTracker(m *Metrics) *tracker {
	return &tracker{m: m, promises: map[string]*promiseTrack{}}
}

// observe counts what changed from prev to next. The first picture only sets the scene: what
// the observer did not see begin, it does not time.
func (t *tracker) observe(prev, next Snapshot) {
	before := map[string]Rollout{}
	for _, r := range prev.Rollouts {
		before[r.Promise] = r
	}
	now := next.At
	for _, r := range next.Rollouts {
		p := t.promises[r.Promise]
		if p == nil {
			p = &promiseTrack{waiting: map[string]time.Time{}, holding: map[string]time.Time{}, unhealthy: map[string]time.Time{}}
			t.promises[r.Promise] = p
		}
		old, seen := before[r.Promise]
		if g := rollout.TrippedGate(r.PauseReason); seen && r.Paused && g != "" && (!old.Paused || old.PauseReason != r.PauseReason) {
			t.m.gateTrips.WithLabelValues(r.Promise, g).Inc()
		}
		rows := map[string]report.Row{}
		for _, row := range old.Rows {
			rows[row.Namespace+"/"+row.Name] = row
		}
		live := map[string]bool{}
		for _, row := range r.Rows {
			key := row.Namespace + "/" + row.Name
			live[key] = true
			was, known := rows[key]
			t.step(r, p, key, was, known && seen, row, now)
		}
		for key := range p.waiting {
			if !live[key] {
				delete(p.waiting, key)
			}
		}
		for key := range p.holding {
			if !live[key] {
				delete(p.holding, key)
				delete(p.unhealthy, key)
			}
		}
	}
}

// step follows one request from one picture to the next.
func (t *tracker) step(r Rollout, p *promiseTrack, key string, was report.Row, seen bool, row report.Row, now time.Time) {
	at := row.Since
	if at.IsZero() || at.After(now) {
		at = now
	}
	if !seen || was.Phase != row.Phase {
		if row.Phase != report.PhasePending {
			p.timeline = append(p.timeline, Moment{At: at, Request: key, Phase: row.Phase, Message: row.Message})
			if len(p.timeline) > timelineLength {
				p.timeline = p.timeline[len(p.timeline)-timelineLength:]
			}
		}
	}
	if row.Phase == rollout.PhaseWaiting {
		if _, ok := p.waiting[key]; !ok {
			p.waiting[key] = at
		}
	}
	holds, held := row.Slot != "", seen && was.Slot != ""
	switch {
	case holds && !held:
		if seen { // a take the observer saw happen
			if began, ok := p.waiting[key]; ok && !at.Before(began) {
				t.m.slotWait.WithLabelValues(r.Promise).Observe(at.Sub(began).Seconds())
			}
			if len(p.releases) > 0 && !at.Before(p.releases[0]) {
				t.m.handoffGap.WithLabelValues(r.Promise).Observe(at.Sub(p.releases[0]).Seconds())
				p.releases = p.releases[1:]
			}
		}
		delete(p.waiting, key)
		p.holding[key] = at
	case !holds && held:
		if took, ok := p.holding[key]; ok && !at.Before(took) {
			t.m.upgradeDuration.WithLabelValues(r.Promise).Observe(at.Sub(took).Seconds())
		}
		if r.Waiting > 0 {
			p.releases = append(p.releases, at)
		}
		delete(p.holding, key)
	}
	sick := holds && (row.Phase == rollout.PhaseFailed || row.Health == health.StateUnhealthy || row.Health == health.StateDegraded)
	since, wasSick := p.unhealthy[key]
	switch {
	case sick && !wasSick:
		p.unhealthy[key] = now
	case !sick && wasSick:
		t.m.unhealthyHold.WithLabelValues(r.Promise).Observe(now.Sub(since).Seconds())
		delete(p.unhealthy, key)
	}
}

// timelines is a copy of every rollout's timeline, oldest first.
func (t *tracker) timelines() map[string][]Moment {
	out := map[string][]Moment{}
	for promise, p := range t.promises {
		out[promise] = append([]Moment(nil), p.timeline...)
	}
	return out
}
