// Package report is where a Promise's rollout stands, as operators see it: each request's wave,
// phase, slot, health and message, put together from the requests and the turnstile's Leases.
// `kubectl turnstile status` prints it; the observer serves it and counts from it.
package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	// Held: the platform-wide hold (pause --all) stops every Promise's rollout.
	Held       bool   `json:"held"`
	HoldReason string `json:"holdReason,omitempty"`
	Aborted    bool   `json:"aborted"`
	Total      int    `json:"total"`
	Upgraded   int    `json:"upgraded"`
	Failed     int    `json:"failed"`
	Waiting    int    `json:"waiting"`
	Rows       []Row  `json:"requests"`
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
	case r.Held && r.Upgraded < r.Total, r.Paused || r.Aborted || r.Failed > 0:
		// The platform-wide hold halts only a rollout with work left to hold.
		return Halted
	case r.Total > 0 && r.Upgraded == r.Total:
		return Done
	}
	return Progressing
}

// WithDeclared is the view with the rollout the Promise declares: right after a Promise
// upgrade, before the first request of the new version arrives, the rollout record still names
// the old version, all Upgraded: the rollout to report is the new one, not yet begun. A
// declared version the record has left behind (its previous, or an aborted one it rolled back
// from) is no new rollout.
func WithDeclared(v turnstile.View, declared string) turnstile.View {
	ro := v.Rollout
	if declared == "" || declared == ro.Target || declared == ro.Previous || declared == ro.AbortedVersion {
		return v
	}
	v.Rollout.Previous, v.Rollout.Target = ro.Target, declared
	return v
}

// Build puts together the requests of the Promise and its turnstile's Leases, as of now.
func Build(promise string, view turnstile.View, requests []unstructured.Unstructured, slots int, now time.Time) Report {
	ro := view.Rollout
	rep := Report{Promise: promise, Target: ro.Target, Previous: ro.Previous, Slots: cmp.Or(ro.Slots, slots), Paused: ro.Paused,
		PauseReason: ro.PauseReason, Aborted: ro.AbortedVersion != "" && ro.AbortedVersion == ro.Target,
		Held: view.Hold.Active, HoldReason: view.Hold.Reason}
	held := map[string]turnstile.Slot{}
	for _, s := range view.Slots {
		if s.Held() {
			held[s.Request] = s
		}
	}
	queue := map[string]int{}
	for i, t := range view.Queue(now) {
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
			// await publishes its verdict a moment before it releases the slot, and marks the
			// slot failed a moment before it publishes a failure: the newer of the two says where
			// the request stands. A status older than this attempt (whole seconds) says nothing.
			ownVerdict := st.Version == ro.Target && !st.Since.Before(s.AcquireTime.Truncate(time.Second)) &&
				(st.Phase == rollout.PhaseVerifying || st.Phase == rollout.PhaseUpgraded || st.Phase == rollout.PhaseFailed)
			switch {
			case ownVerdict && st.Phase == rollout.PhaseUpgraded && st.Since.After(s.FailedAt):
				row.Phase = st.Phase // recovered: the slot's failed mark, if any, is older
			case s.Phase == turnstile.PhaseFailed:
				row.Phase, row.Message = rollout.PhaseFailed, s.Message
			case ownVerdict:
				row.Phase = st.Phase
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
		row.Fresh = present && allFresh(hs, health.Freshness{Promise: promise, RequestUID: string(u.GetUID()), Since: row.Since, Version: ro.Target}, now)
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
func allFresh(hs health.Status, f health.Freshness, now time.Time) bool {
	if f.Since.IsZero() {
		return false
	}
	o := health.Observe(hs, true, f, now)
	return o.Counted > 0 && o.Stale == 0
}

// waveOf is a request's wave; without a valid wave label it is in the default wave, 1.
func waveOf(u unstructured.Unstructured) int {
	if w, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations()); ok && err == nil {
		return w
	}
	return 1
}

// WriteJSON prints the report as JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// State is the rollout's state in a word or a short phrase: Progressing, Paused: why, Halted,
// Aborted or Done.
func (r Report) State() string {
	switch {
	case r.Aborted:
		return "Aborted"
	case r.Held && r.Upgraded < r.Total:
		return strings.TrimSuffix("Held platform-wide: "+r.HoldReason, ": ")
	case r.Paused && r.PauseReason != "":
		return "Paused: " + r.PauseReason
	case r.Paused:
		return "Paused"
	case r.Failed > 0:
		return "Halted: an upgrade failed"
	case r.Outcome() == Done:
		return "Done"
	}
	return "Progressing"
}

// Progress is the progress line: a bar and the counts.
func (r Report) Progress() string {
	return bar(r.Upgraded, r.Total, 20) + " " + r.Counts()
}

// Counts is how many requests are upgraded, failed and waiting, out of all.
func (r Report) Counts() string {
	return fmt.Sprintf("%d/%d upgraded, %d failed, %d waiting", r.Upgraded, r.Total, r.Failed, r.Waiting)
}

// PhaseText is the row's phase with its place in the queue, e.g. "Waiting (#2)".
func (row Row) PhaseText() string {
	if row.Position > 0 {
		return fmt.Sprintf("%s (#%d)", row.Phase, row.Position)
	}
	return row.Phase
}

// HealthText is the row's health and whether its evidence is fresh, e.g. "Healthy (fresh)".
func (row Row) HealthText() string {
	if row.Health == "-" || row.Health == "" {
		return "-"
	}
	return row.Health + map[bool]string{true: " (fresh)", false: " (stale)"}[row.Fresh]
}

// WriteTable prints the report for people: a header, a progress bar, and a row per request.
func (r Report) WriteTable(w io.Writer, now time.Time) error {
	target := orDash(r.Target)
	if r.Previous != "" {
		target += " (from " + r.Previous + ")"
	}
	fmt.Fprintf(w, "Promise:  %s\nTarget:   %s\nSlots:    %d\nStatus:   %s\n", r.Promise, target, r.Slots, r.State())
	fmt.Fprintf(w, "Progress: %s\n\n", r.Progress())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tWAVE\tPHASE\tSLOT\tSINCE\tHEALTH\tMESSAGE")
	for _, row := range r.Rows {
		since := "-"
		if !row.Since.IsZero() {
			since = duration.HumanDuration(now.Sub(row.Since))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", row.Namespace, row.Name, row.Wave, row.PhaseText(), orDash(row.Slot), since, row.HealthText(), orDash(row.Message))
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

// orDash is s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// API is the API of a Promise's resource requests, from the CRD in its spec.api, and the
// version the Promise declares (its kratix.io/promise-version label), "" if none.
func API(p *unstructured.Unstructured) (schema.GroupVersionResource, string, error) {
	group, _, _ := unstructured.NestedString(p.Object, "spec", "api", "spec", "group")
	plural, _, _ := unstructured.NestedString(p.Object, "spec", "api", "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(p.Object, "spec", "api", "spec", "versions")
	ver := ""
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if name, _ := m["name"].(string); name != "" && (ver == "" || m["storage"] == true) {
			ver = name
		}
	}
	if group == "" || plural == "" || ver == "" {
		return schema.GroupVersionResource{}, "", fmt.Errorf("the Promise %s has no API (spec.api): it offers no resource requests", p.GetName())
	}
	return schema.GroupVersionResource{Group: group, Version: ver, Resource: plural}, p.GetLabels()[PromiseVersionLabel], nil
}

// Version is the version a Promise rolls out when nothing pins another: its version label, else
// a hash of its spec, so that any change to the Promise starts a new rollout.
func Version(p *unstructured.Unstructured) (string, error) {
	if v := p.GetLabels()[PromiseVersionLabel]; v != "" {
		return v, nil
	}
	spec, err := json.Marshal(p.Object["spec"])
	if err != nil {
		return "", fmt.Errorf("hashing the spec of Promise %s: %w", p.GetName(), err)
	}
	sum := sha256.Sum256(spec)
	return "spec-" + hex.EncodeToString(sum[:])[:12], nil
}

// PromiseVersionLabel is where a Promise declares its version.
const PromiseVersionLabel = "kratix.io/promise-version"
