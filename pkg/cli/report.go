// Package cli is kubectl-turnstile, the operator's plugin: where a Promise's rollout stands
// (status), and the levers to steer it (pause, resume, approve, skip, abort, rollback). It reads
// and writes only the request objects and the Leases in the slot namespace, and stays free of
// kratix-go and controller-runtime.
package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// PhasePending is a request whose upgrade to the target has not begun.
const PhasePending = "Pending"

// Row is one request of the rollout.
type Row struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Wave      int       `json:"wave"`
	Phase     string    `json:"phase"`
	Slot      string    `json:"slot,omitempty"`
	Position  int       `json:"position,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Health    string    `json:"health"`
	Fresh     bool      `json:"fresh"`
	Message   string    `json:"message,omitempty"`
}

// Report is where a Promise's rollout stands.
type Report struct {
	Promise     string `json:"promise"`
	Target      string `json:"target,omitempty"`
	Previous    string `json:"previous,omitempty"`
	Slots       int    `json:"slots"`
	Paused      bool   `json:"paused"`
	PauseReason string `json:"pauseReason,omitempty"`
	Aborted     bool   `json:"aborted"`
	Total       int    `json:"total"`
	Upgraded    int    `json:"upgraded"`
	Failed      int    `json:"failed"`
	Waiting     int    `json:"waiting"`
	Rows        []Row  `json:"requests"`
}

// Outcome is the state a rollout is in, as status's exit code reports it.
type Outcome int

// Outcomes, as `kubectl argo rollouts status` reports them: 0 done, 1 paused or failed.
const (
	Progressing Outcome = iota
	Done
	Halted
)

// Outcome is where the rollout stands: done, halted (paused, aborted or a failed upgrade), or
// still progressing.
func (r Report) Outcome() Outcome {
	switch {
	case r.Paused || r.Aborted || r.Failed > 0:
		return Halted
	case r.Total > 0 && r.Upgraded == r.Total:
		return Done
	}
	return Progressing
}

// withDeclared is the view with the rollout the Promise declares: right after a Promise
// upgrade, before the first request of the new version arrives, the rollout record still names
// the old version, all Upgraded: the rollout to report is the new one, not yet begun. A
// declared version the record has left behind (its previous, or an aborted one it rolled back
// from) is no new rollout.
func withDeclared(v turnstile.View, declared string) turnstile.View {
	ro := v.Rollout
	if declared == "" || declared == ro.Target || declared == ro.Previous || declared == ro.AbortedVersion {
		return v
	}
	v.Rollout.Previous, v.Rollout.Target = ro.Target, declared
	return v
}

// buildReport puts together the requests of the Promise and its turnstile's Leases.
func buildReport(promise string, view turnstile.View, requests []unstructured.Unstructured, slots int) Report {
	ro := view.Rollout
	rep := Report{Promise: promise, Target: ro.Target, Previous: ro.Previous, Slots: slots, Paused: ro.Paused,
		PauseReason: ro.PauseReason, Aborted: ro.AbortedVersion != "" && ro.AbortedVersion == ro.Target}
	held := map[string]turnstile.Slot{}
	for _, s := range view.Slots {
		if s.Held() {
			held[s.Request] = s
		}
	}
	queue := map[string]int{}
	for i, t := range view.Queue(time.Now()) {
		queue[t.Request] = i + 1
	}
	for _, u := range requests {
		key := u.GetNamespace() + "/" + u.GetName()
		status, _ := u.Object["status"].(map[string]any)
		st, _ := rollout.StatusFrom(status)
		row := Row{Namespace: u.GetNamespace(), Name: u.GetName(), Wave: waveOf(u), Phase: PhasePending, Message: st.Message}
		switch s, ok := held[key]; {
		case ok:
			row.Phase, row.Slot, row.Since = rollout.PhaseUpgrading, s.Name, s.AcquireTime
			if s.Phase == turnstile.PhaseFailed {
				row.Phase, row.Message = rollout.PhaseFailed, s.Message
			} else if st.Version == ro.Target && st.Phase == rollout.PhaseVerifying {
				row.Phase = rollout.PhaseVerifying
			}
		case st.Version == ro.Target && st.Phase != "":
			row.Phase, row.Since, row.Position = st.Phase, st.Since, st.Position
			if st.Phase == rollout.PhaseWaiting && queue[key] > 0 {
				row.Position = queue[key]
			}
		case queue[key] > 0:
			row.Phase, row.Position = rollout.PhaseWaiting, queue[key]
		}
		hs, present := health.StatusOf(status)
		row.Health = hs.State
		if !present {
			row.Health = "-"
		}
		row.Fresh = present && allFresh(hs, health.Freshness{Promise: promise, RequestUID: string(u.GetUID()), Since: row.Since, Version: ro.Target})
		switch row.Phase {
		case rollout.PhaseUpgraded, rollout.PhaseSkipped:
			rep.Upgraded++
		case rollout.PhaseFailed:
			rep.Failed++
		case rollout.PhaseWaiting:
			rep.Waiting++
		}
		rep.Rows = append(rep.Rows, row)
	}
	rep.Total = len(rep.Rows)
	sort.Slice(rep.Rows, func(i, j int) bool {
		a, b := rep.Rows[i], rep.Rows[j]
		if a.Wave != b.Wave {
			return a.Wave < b.Wave
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return rep
}

// allFresh reports whether the request's own records all speak for its upgrade, as await would
// count them; other Promises' and requests' records are left out.
func allFresh(hs health.Status, f health.Freshness) bool {
	if f.Since.IsZero() {
		return false
	}
	o := health.Observe(hs, true, f, time.Now())
	return o.Counted > 0 && o.Stale == 0
}

// waveOf is a request's wave; without a valid wave label it is in the default wave, 1.
func waveOf(u unstructured.Unstructured) int {
	if w, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations()); ok && err == nil {
		return w
	}
	return 1
}

// writeJSON prints the report as JSON.
func (r Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeTable prints the report for people: a header, a progress bar, and a row per request.
func (r Report) writeTable(w io.Writer, now time.Time) error {
	state := "Progressing"
	switch {
	case r.Aborted:
		state = "Aborted"
	case r.Paused:
		state = "Paused: " + r.PauseReason
	case r.Failed > 0:
		state = "Halted: an upgrade failed"
	case r.Outcome() == Done:
		state = "Done"
	}
	target := orDash(r.Target)
	if r.Previous != "" {
		target += " (from " + r.Previous + ")"
	}
	fmt.Fprintf(w, "Promise:  %s\nTarget:   %s\nSlots:    %d\nStatus:   %s\n", r.Promise, target, r.Slots, strings.TrimSuffix(state, ": "))
	fmt.Fprintf(w, "Progress: %s %d/%d upgraded, %d failed, %d waiting\n\n", bar(r.Upgraded, r.Total, 20), r.Upgraded, r.Total, r.Failed, r.Waiting)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tWAVE\tPHASE\tSLOT\tSINCE\tHEALTH\tMESSAGE")
	for _, row := range r.Rows {
		phase := row.Phase
		if row.Position > 0 {
			phase = fmt.Sprintf("%s (#%d)", phase, row.Position)
		}
		since := "-"
		if !row.Since.IsZero() {
			since = duration.HumanDuration(now.Sub(row.Since))
		}
		healthCol := row.Health
		if row.Health != "-" && row.Health != "" {
			healthCol += map[bool]string{true: " (fresh)", false: " (stale)"}[row.Fresh]
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", row.Namespace, row.Name, row.Wave, phase, orDash(row.Slot), since, healthCol, orDash(row.Message))
	}
	return tw.Flush()
}

func bar(n, of, width int) string {
	filled := 0
	if of > 0 {
		filled = n * width / of
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
