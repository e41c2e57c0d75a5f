// Package health holds what Turnstile knows about a resource request's health: Kratix's
// HealthRecord and the aggregated status.healthStatus, and the rules that decide when an upgrade
// is healthy enough to let the next request through: fresh, own, version-bound records, a soak,
// and a failure count.
package health

import (
	"sort"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
)

// States a HealthRecord can report: the checks' states (pkg/checks defines them and their
// order, worst first, as Kratix aggregates them), named here for the records that carry them.
const (
	StateUnhealthy = checks.StateUnhealthy
	StateDegraded  = checks.StateDegraded
	StateUnknown   = checks.StateUnknown
	StateHealthy   = checks.StateHealthy
	StateReady     = checks.StateReady
)

// Record is one entry of a request's status.healthStatus.healthRecords.
type Record struct {
	Source  string
	State   string
	LastRun time.Time
	Details map[string]any
}

// Status is a request's status.healthStatus: the aggregate state and the records behind it.
type Status struct {
	State   string
	Records []Record
}

// StatusOf reads status.healthStatus from an object's status map; ok is false when absent.
func StatusOf(status map[string]any) (s Status, ok bool) {
	hs, ok := status["healthStatus"].(map[string]any)
	if !ok {
		return Status{}, false
	}
	s.State, _ = hs["state"].(string)
	records, _ := hs["healthRecords"].([]any)
	for _, r := range records {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		rec := Record{}
		rec.State, _ = m["state"].(string)
		rec.LastRun = unixTime(m["lastRun"])
		rec.Details, _ = m["details"].(map[string]any)
		if src, ok := m["source"].(map[string]any); ok {
			ns, _ := src["namespace"].(string)
			name, _ := src["name"].(string)
			rec.Source = ns + "/" + name
		}
		s.Records = append(s.Records, rec)
	}
	sort.Slice(s.Records, func(i, j int) bool { return s.Records[i].Source < s.Records[j].Source })
	return s, true
}

func unixTime(v any) time.Time {
	switch n := v.(type) {
	case int64:
		return time.Unix(n, 0)
	case int:
		return time.Unix(int64(n), 0)
	case float64:
		return time.Unix(int64(n), 0)
	}
	return time.Time{}
}

// Good reports whether a state lets an upgrade through.
func Good(state string) bool { return state == StateHealthy || state == StateReady }

// Bad reports whether a state counts against an upgrade.
func Bad(state string) bool { return state == StateUnhealthy || state == StateDegraded }
