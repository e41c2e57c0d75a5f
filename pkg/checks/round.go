package checks

import (
	"context"
	"sync"
	"time"
)

// CheckReport is one check's state after a round, with what its last run saw.
type CheckReport struct {
	ProbeState `json:",inline"`
	Pass       bool           `json:"pass"`
	Unknown    bool           `json:"unknown,omitempty"`
	LatencyMs  int64          `json:"latencyMs"`
	Observed   map[string]any `json:"observed,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// Report is a definition's state after one round of its checks: the worst of its checks'.
type Report struct {
	State  string
	Checks map[string]CheckReport
	// VersionProven: the document has a version assertion, and every one passed this round.
	VersionProven bool
}

// Round runs every check of the document once, at the same time, and folds the results into
// the states the previous round left (nil for a first round).
func (d *Document) Round(ctx context.Context, r *Runner, prev map[string]ProbeState, now time.Time) Report {
	results := make([]Result, len(d.Checks))
	var wg sync.WaitGroup
	for i, c := range d.Checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.Run(ctx, c.withVersion(d.Version))
		}()
	}
	wg.Wait()
	rep := Report{Checks: map[string]CheckReport{}}
	var states []string
	for i, c := range d.Checks {
		res := results[i]
		st := c.Observe(prev[c.Name], res, now)
		rep.Checks[c.Name] = CheckReport{ProbeState: st, Pass: res.Pass, Unknown: res.Unknown, LatencyMs: res.Latency.Milliseconds(), Observed: res.Observed, Error: res.Err}
		states = append(states, st.State)
	}
	rep.State = Worst(states...)
	rep.VersionProven = versionProven(d.Checks, results, d.Version)
	return rep
}

// ProbeStates are the states to carry into the next round.
func (rep Report) ProbeStates() map[string]ProbeState {
	out := make(map[string]ProbeState, len(rep.Checks))
	for name, c := range rep.Checks {
		out[name] = c.ProbeState
	}
	return out
}
