package observer

import (
	"fmt"
	"slices"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// Snapshot is every rollout at one moment.
type Snapshot struct {
	At       time.Time           `json:"at"`
	Hold     turnstile.Hold      `json:"hold"`
	Rollouts []Rollout           `json:"rollouts"`
	Timeline map[string][]Moment `json:"timeline,omitempty"`
}

// Rollout is one Promise's rollout: the report `kubectl turnstile status` prints, and what a
// dashboard adds to it: who holds the slots, the queue in order, the waves.
type Rollout struct {
	report.Report
	Started   time.Time    `json:"started,omitzero"`
	ChangedBy string       `json:"changedBy,omitempty"`
	Held      []Holder     `json:"held"`
	Queue     []report.Row `json:"queue"`
	Waves     []Wave       `json:"waves"`
}

// Holder is a slot and the request that holds it.
type Holder struct {
	Slot    string    `json:"slot"`
	Request string    `json:"request"`
	Since   time.Time `json:"since"`
	Phase   string    `json:"phase"`
	Health  string    `json:"health"`
}

// Wave is how far one wave has got, and whether it waits for an operator's approval.
type Wave struct {
	Wave     int    `json:"wave"`
	Total    int    `json:"total"`
	Upgraded int    `json:"upgraded"`
	Failed   int    `json:"failed"`
	Waiting  int    `json:"waiting"`
	Approval string `json:"approval,omitempty"`
}

// Moment is one step of a request's upgrade, for the rollout's timeline.
type Moment struct {
	At      time.Time `json:"at"`
	Request string    `json:"request"`
	Phase   string    `json:"phase"`
	Message string    `json:"message,omitempty"`
}

// Key is how rollouts are told apart in metrics and timelines.
func (r Rollout) Key() string { return r.Promise }

// SlotsHeld is how many slots are held now.
func (r Rollout) SlotsHeld() int { return len(r.Held) }

func rolloutOf(promise, declared string, leases []*coordinationv1.Lease, requests []unstructured.Unstructured, slots int, now time.Time) Rollout {
	view := turnstile.NewView(promise, slots, leases)
	if n := len(view.Slots); n > slots {
		slots = n
	}
	declaredView := report.WithDeclared(view, declared)
	rep := report.Build(promise, declaredView, requests, slots, now)
	ro := Rollout{Report: rep, ChangedBy: view.Rollout.ChangedBy, Held: []Holder{}, Queue: []report.Row{}}
	if declaredView.Rollout.Target == view.Rollout.Target { // not a rollout declared but not begun
		ro.Started = view.Rollout.Started
	}
	waves := map[int]*Wave{}
	for _, row := range rep.Rows {
		key := row.Namespace + "/" + row.Name
		if row.Slot != "" {
			ro.Held = append(ro.Held, Holder{Slot: row.Slot, Request: key, Since: row.Since, Phase: row.Phase, Health: row.HealthText()})
		}
		if row.Phase == rollout.PhaseWaiting {
			ro.Queue = append(ro.Queue, row)
		}
		w := waves[row.Wave]
		if w == nil {
			w = &Wave{Wave: row.Wave}
			waves[row.Wave] = w
		}
		w.Total++
		switch row.Phase {
		case rollout.PhaseUpgraded, rollout.PhaseSkipped:
			w.Upgraded++
		case rollout.PhaseFailed:
			w.Failed++
		case rollout.PhaseWaiting:
			w.Waiting++
		}
	}
	sort.Slice(ro.Held, func(i, j int) bool { return ro.Held[i].Slot < ro.Held[j].Slot })
	sort.SliceStable(ro.Queue, func(i, j int) bool { return position(ro.Queue[i]) < position(ro.Queue[j]) })
	for _, w := range waves {
		switch blocking, ok := view.Rollout.NeedsApproval(w.Wave); {
		case ok && blocking == w.Wave:
			w.Approval = "waits for approval"
		case ok:
			w.Approval = fmt.Sprintf("behind wave %d, which waits for approval", blocking)
		case slices.Contains(view.Rollout.Approved, w.Wave):
			w.Approval = "approved"
		}
		ro.Waves = append(ro.Waves, *w)
	}
	sort.Slice(ro.Waves, func(i, j int) bool { return ro.Waves[i].Wave < ro.Waves[j].Wave })
	return ro
}

// position orders the queue; a waiting request whose place is not known yet goes last.
func position(r report.Row) int {
	if r.Position > 0 {
		return r.Position
	}
	return 1 << 30
}
