// Package health holds what Turnstile knows about a resource request's health: Kratix's
// HealthRecord and the aggregated status.healthStatus, and the rules that decide when an upgrade
// is healthy enough to let the next request through: fresh records, a soak, and a failure count.
package health

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// States a HealthRecord can report, best last; Kratix aggregates to the worst of them.
const (
	StateUnhealthy = "unhealthy"
	StateDegraded  = "degraded"
	StateUnknown   = "unknown"
	StateHealthy   = "healthy"
	StateReady     = "ready"
)

// VersionKey is the key in a HealthRecord's details that names the version it checked.
const VersionKey = "version"

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

// Freshness says which records speak for the version being upgraded to.
type Freshness struct {
	// Since is when the upgrade began; a record whose lastRun is at or after it is fresh.
	// lastRun has whole seconds, so Since is rounded up: a record of the same second as the
	// start could predate it, and is not trusted.
	Since time.Time
	// Version, when set, decides for a record whose details name a version: fresh if it names
	// this one, stale if another, whenever it ran. A check of the old version's definition that
	// ran after the upgrade began may still have reached the old app (the new one is not
	// deployed yet), so its time proves nothing.
	Version string
}

// Fresh reports whether the record was produced for this upgrade.
func (f Freshness) Fresh(r Record) bool {
	if v, stamped := r.Details[VersionKey]; stamped && f.Version != "" {
		return fmt.Sprint(v) == f.Version
	}
	since := f.Since.Truncate(time.Second)
	if since.Before(f.Since) {
		since = since.Add(time.Second)
	}
	return !r.LastRun.IsZero() && !r.LastRun.Before(since)
}

// Observation is one reading of a request's health against an upgrade.
type Observation struct {
	// Good: healthy or ready, with at least one record, every one of them fresh.
	Good bool
	// Bad: unhealthy or degraded, said by fresh records.
	Bad bool
	// Key tells one reading from the next: the fresh records' sources, states and lastRuns.
	Key string
	// Summary is the reading in a few words, for logs and status.
	Summary string
}

// Observe reads a health status against an upgrade's freshness.
func Observe(s Status, present bool, f Freshness) Observation {
	if !present || len(s.Records) == 0 {
		return Observation{Summary: "no health records yet"}
	}
	var stale, keys, bad []string
	for _, r := range s.Records {
		if !f.Fresh(r) {
			stale = append(stale, r.Source)
			continue
		}
		keys = append(keys, fmt.Sprintf("%s=%s@%d", r.Source, r.State, r.LastRun.Unix()))
		if Bad(r.State) {
			bad = append(bad, fmt.Sprintf("%s is %s", r.Source, r.State))
		}
	}
	o := Observation{Key: strings.Join(keys, ",")}
	switch {
	case len(bad) > 0 && Bad(s.State):
		o.Bad, o.Summary = true, strings.Join(bad, "; ")
	case len(stale) > 0:
		o.Summary = fmt.Sprintf("%s, but %d of %d records predate the upgrade (%s)", orUnknown(s.State), len(stale), len(s.Records), strings.Join(stale, ", "))
	case Good(s.State):
		o.Good, o.Summary = true, fmt.Sprintf("%s, %d fresh record(s)", s.State, len(s.Records))
	default:
		o.Summary = orUnknown(s.State)
	}
	return o
}

func orUnknown(state string) string {
	if state == "" {
		return StateUnknown
	}
	return state
}
