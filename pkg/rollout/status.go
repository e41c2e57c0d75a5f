// Package rollout is the model of a Promise's rollout that the stages write and operators read:
// the phases a request goes through and the turnstile block of its status (the ratio gates that
// read it are in package gates). It holds no client: the stages and kubectl-turnstile
// both use it, and the plugin must stay free of kratix-go.
package rollout

import "time"

// StatusKey is the top-level key of a request's status that Turnstile owns.
const StatusKey = "turnstile"

// Phases a request goes through, in status.turnstile.phase.
const (
	PhaseWaiting   = "Waiting"
	PhaseUpgrading = "Upgrading"
	PhaseVerifying = "Verifying"
	PhaseUpgraded  = "Upgraded"
	PhaseFailed    = "Failed"
	// PhaseSkipped: an operator released the request's failed upgrade (kubectl turnstile skip).
	PhaseSkipped = "Skipped"
)

// Bounds the stages and kubectl-turnstile both check, so that a value one accepts the other
// does too.
const (
	// MaxSlots bounds a Promise's slots: each is a Lease, read on every turn of the turnstile,
	// and past a thousand upgrades at once a rollout is not gated any more.
	MaxSlots = 1000
	// MaxWave bounds the waves a flag or command names (default wave, approval waves).
	MaxWave = 1000
)

// Status is the turnstile block of a request's status.
type Status struct {
	Phase    string
	Version  string
	Slot     string
	Position int // 1 = next in line; 0 when not waiting
	Since    time.Time
	Message  string
	// Failures and Reading carry await's count of unhealthy readings in a row, and the last
	// reading seen, from one run of the stage to the next (Kratix's retryAfter).
	Failures int
	Reading  string
}

// Began reports whether the request's upgrade to target has begun: it took a slot for it,
// whatever came of it since.
func (s Status) Began(target string) bool {
	if s.Version != target || target == "" {
		return false
	}
	switch s.Phase {
	case PhaseUpgrading, PhaseVerifying, PhaseUpgraded, PhaseFailed, PhaseSkipped:
		return true
	}
	return false
}

// Map is the block as status.yaml and the status subresource hold it.
func (s Status) Map() map[string]any {
	m := map[string]any{"phase": s.Phase, "since": s.Since.UTC().Format(time.RFC3339), "message": s.Message}
	if s.Version != "" {
		m["version"] = s.Version
	}
	if s.Slot != "" {
		m["slot"] = s.Slot
	}
	if s.Position > 0 {
		m["position"] = int64(s.Position)
	}
	if s.Failures > 0 {
		m["failures"] = int64(s.Failures)
	}
	if s.Reading != "" {
		m["reading"] = s.Reading
	}
	return m
}

// statusKeys are every key Map can write.
var statusKeys = []string{"phase", "since", "message", "version", "slot", "position", "failures", "reading"}

// MergePatch is Map for a JSON merge patch of the live status: the keys Map leaves out are
// null, so a field of an earlier phase (a slot released, a position left) is removed, not kept.
func (s Status) MergePatch() map[string]any {
	m := s.Map()
	for _, k := range statusKeys {
		if _, ok := m[k]; !ok {
			m[k] = nil
		}
	}
	return m
}

func number(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

// FirstInstall says whether a request, by its status, was never configured: no configure
// workflow has completed for it and it has no turnstile block. Its install is no upgrade.
func FirstInstall(status map[string]any) bool {
	_, seen := status[StatusKey].(map[string]any)
	return !seen && status["lastSuccessfulConfigureWorkflowTime"] == nil
}

// StatusFrom reads the block from an object's status map.
func StatusFrom(status map[string]any) (Status, bool) {
	m, ok := status[StatusKey].(map[string]any)
	if !ok {
		return Status{}, false
	}
	s := Status{}
	s.Phase, _ = m["phase"].(string)
	s.Version, _ = m["version"].(string)
	s.Slot, _ = m["slot"].(string)
	s.Message, _ = m["message"].(string)
	s.Position, s.Failures = number(m["position"]), number(m["failures"])
	s.Reading, _ = m["reading"].(string)
	if since, ok := m["since"].(string); ok {
		s.Since, _ = time.Parse(time.RFC3339, since)
	}
	return s, true
}
