package checks

import (
	"time"
)

// States a check or a definition reports, as Kratix's HealthRecord spells them: the one
// definition of them (pkg/health names the same for records), ranked by rank below.
const (
	StateReady     = "ready"
	StateHealthy   = "healthy"
	StateDegraded  = "degraded"
	StateUnhealthy = "unhealthy"
	StateUnknown   = "unknown"
)

// ProbeState is what a check has been through so far, kept between runs (in memory by the agent,
// in the HealthRecord's details by the check stage) so its thresholds span runs.
type ProbeState struct {
	State     string    `json:"state"`
	Successes int       `json:"successes,omitempty"`
	Failures  int       `json:"failures,omitempty"`
	PassSince time.Time `json:"passSince,omitempty"`
}

// Observe folds one result into the state, like a Kubernetes probe: a check turns good after
// SuccessThreshold passes in a row (and, for kube checks, after passing for minReadySeconds), and
// bad after FailureThreshold failures in a row. An unknown result is unknown at once.
func (c Check) Observe(prev ProbeState, r Result, now time.Time) ProbeState {
	s := prev
	if s.State == "" {
		s.State = StateUnknown
	}
	good := StateHealthy
	if c.Kube != nil {
		good = StateReady
	}
	switch {
	case r.Unknown:
		return ProbeState{State: StateUnknown}
	case r.Pass:
		s.Failures = 0
		s.Successes++
		if s.PassSince.IsZero() {
			s.PassSince = now
		}
		soaked := c.Kube == nil || !now.Before(s.PassSince.Add(time.Duration(c.Kube.MinReadySeconds)*time.Second))
		if s.Successes >= c.SuccessThreshold && soaked {
			s.State = good
		}
	default:
		s.Successes, s.PassSince = 0, time.Time{}
		s.Failures++
		if s.Failures >= c.FailureThreshold {
			s.State = c.OnFailure
		}
	}
	return s
}

// rank orders states from worst to best, as Kratix aggregates them.
var rank = map[string]int{StateUnhealthy: 1, StateDegraded: 2, StateUnknown: 3, StateHealthy: 4, StateReady: 5}

// Worst is the least desirable of the states: what a definition with these checks reports.
func Worst(states ...string) string {
	worst := StateReady
	for _, s := range states {
		if rank[s] < rank[worst] {
			worst = s
		}
	}
	return worst
}
