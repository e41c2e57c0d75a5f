package observer

import (
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/gates"
	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// timelineLength bounds each rollout's timeline: the newest moments are kept.
const timelineLength = 500

// tracker turns the changes between two pictures into durations, counts and a timeline. Times
// come from the records where they carry one (the slot's acquire time, a status's since), so
// that what the observer measures is what happened, not when it happened to look, and an
// observer started mid-rollout still times the waits and upgrades under way. The unhealthy hold
// has no record: it is timed from when the observer saw it begin.
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

// observe counts what changed from prev to next. Releases are counted before takes, so that a
// handoff within one picture is paired whatever the order of its rows.
func (t *tracker) observe(prev, next Snapshot) {
	before := map[string]Rollout{}
	for _, r := range prev.Rollouts {
		before[r.Promise] = r
	}
	now := next.At
	for _, r := range next.Rollouts {
		p := t.promises[r.Promise]
		old, seen := before[r.Promise]
		fresh := seen && old.Target != r.Target
		if p == nil || fresh {
			// A new rollout: nothing of the last one is paired with this one's moments.
			timeline := []Moment(nil)
			if p != nil {
				timeline = p.timeline
			}
			p = &promiseTrack{waiting: map[string]time.Time{}, holding: map[string]time.Time{}, unhealthy: map[string]time.Time{}, timeline: timeline}
			t.promises[r.Promise] = p
		}
		if g := gates.Tripped(r.PauseReason); seen && r.Paused && g != "" && (!old.Paused || old.PauseReason != r.PauseReason) {
			t.m.gateTrips.WithLabelValues(r.Promise, g).Inc()
		}
		was := map[string]report.Row{}
		for _, row := range old.Rows {
			was[key(row)] = row
		}
		took := false
		for _, row := range r.Rows { // releases
			if w, ok := was[key(row)]; ok && w.Slot != "" && row.Slot == "" {
				at := stamp(row, now)
				if began, ok := p.holding[key(row)]; ok && !at.Before(began) {
					t.m.upgradeDuration.WithLabelValues(r.Promise).Observe(at.Sub(began).Seconds())
				}
				if old.Waiting > 0 && !fresh { // a release of the last rollout hands nothing on to this one
					p.releases = append(p.releases, at)
				}
				delete(p.holding, key(row))
			}
		}
		for _, row := range r.Rows { // takes
			w, ok := was[key(row)]
			if row.Slot == "" || (ok && w.Slot != "") {
				continue
			}
			at := stamp(row, now)
			if seen { // a take the observer saw happen
				took = true
				if began, ok := p.waiting[key(row)]; ok && !at.Before(began) {
					t.m.slotWait.WithLabelValues(r.Promise).Observe(at.Sub(began).Seconds())
				}
				if len(p.releases) > 0 {
					// A take stamped before its release is clock skew between nodes: a gap of 0,
					// and the release is used up either way, or every later pairing would slip.
					t.m.handoffGap.WithLabelValues(r.Promise).Observe(max(0, at.Sub(p.releases[0]).Seconds()))
					p.releases = p.releases[1:]
				}
			}
			delete(p.waiting, key(row))
			p.holding[key(row)] = at
		}
		if r.Waiting == 0 && !took {
			p.releases = nil // nobody is waiting: no handoff is due
		}
		live := map[string]bool{}
		for _, row := range r.Rows {
			live[key(row)] = true
			t.step(r, p, was[key(row)], seen, row, now)
		}
		for _, m := range []map[string]time.Time{p.waiting, p.holding, p.unhealthy} {
			for k := range m {
				if !live[k] {
					delete(m, k)
				}
			}
		}
	}
}

func key(r report.Row) string { return r.Namespace + "/" + r.Name }

// stamp is when a row entered its phase: its record's time, or now when it has none.
func stamp(row report.Row, now time.Time) time.Time {
	if row.Since.IsZero() || row.Since.After(now) {
		return now
	}
	return row.Since
}

// step follows one request's phase and health from one picture to the next.
func (t *tracker) step(r Rollout, p *promiseTrack, was report.Row, seen bool, row report.Row, now time.Time) {
	k := key(row)
	at := stamp(row, now)
	if (!seen || was.Phase != row.Phase) && row.Phase != report.PhasePending {
		p.timeline = append(p.timeline, Moment{At: at, Request: k, Phase: row.Phase, Message: row.Message})
		if len(p.timeline) > timelineLength {
			p.timeline = p.timeline[len(p.timeline)-timelineLength:]
		}
	}
	if row.Phase == rollout.PhaseWaiting {
		if _, ok := p.waiting[k]; !ok {
			p.waiting[k] = at
		}
	} else if row.Slot == "" {
		delete(p.waiting, k) // left the queue without a slot: aborted, skipped, or moved on
	}
	since, wasSick := p.unhealthy[k]
	switch sick := sickHolder(row); {
	case sick && !wasSick:
		p.unhealthy[k] = now
	case !sick && wasSick:
		t.m.unhealthyHold.WithLabelValues(r.Promise).Observe(now.Sub(since).Seconds())
		delete(p.unhealthy, k)
	}
}

// sickHolder reports whether a request holds its slot while its upgrade failed or its own fresh
// records on the target say it is unhealthy: the rollout sits on it. Stale records (from the
// version before) do not count.
func sickHolder(row report.Row) bool {
	return row.Slot != "" && (row.Phase == rollout.PhaseFailed ||
		(row.Fresh && (row.Health == health.StateUnhealthy || row.Health == health.StateDegraded)))
}

// timelines is a copy of every rollout's timeline, oldest first.
func (t *tracker) timelines() map[string][]Moment {
	out := map[string][]Moment{}
	for promise, p := range t.promises {
		out[promise] = append([]Moment(nil), p.timeline...)
	}
	return out
}
