package health

import (
	"fmt"
	"strings"
	"time"
)

// Keys of a HealthRecord's details that tie it to one request and one version. Kratix
// aggregates every record whose resourceRef names the request, whatever Promise wrote it, and
// keeps details as written: these stamps are how a record says whose it is and what it saw.
const (
	PromiseKey    = "promise"
	RequestUIDKey = "requestUID"
	DefinitionKey = "definition"
	VersionKey    = "version"
	// VersionProvenKey is true when a version assertion of the checks passed: the new version
	// itself answered, not merely something at the checked address.
	VersionProvenKey = "versionProven"
)

// Stamp is what a checker writes into a record's details.
type Stamp struct {
	Promise    string
	RequestUID string
	Definition string
	Version    string
	// VersionProven is set only by a passing version assertion.
	VersionProven bool
}

// Apply writes the stamp into details, making the map when nil, and returns it.
func (s Stamp) Apply(details map[string]any) map[string]any {
	if details == nil {
		details = map[string]any{}
	}
	details[PromiseKey] = s.Promise
	details[RequestUIDKey] = s.RequestUID
	details[VersionProvenKey] = s.VersionProven
	if s.Definition != "" {
		details[DefinitionKey] = s.Definition
	}
	if s.Version != "" {
		details[VersionKey] = s.Version
	}
	return details
}

// DefaultMaxSkew bounds how far ahead of now a record's lastRun may be. Checkers' clocks differ
// a little from ours; a record dated further ahead would stay "fresh" for as long as its clock
// is wrong, however old its news.
const DefaultMaxSkew = 30 * time.Second

// Freshness says which records speak for one upgrade attempt.
type Freshness struct {
	// Promise and RequestUID name the attempt's request: only records stamped with both count.
	// Another Promise's record for a request of the same namespace/name, or a record of an
	// earlier request of the same name, is foreign.
	Promise    string
	RequestUID string
	// Since is when the attempt began: a record counts only if its lastRun is at or after it.
	// lastRun has whole seconds, so Since is rounded up: a record of the same second as the
	// start could predate it, and is not trusted.
	Since time.Time
	// Version is the target. A record stamped with another version does not count even if it ran
	// after Since: a check of the old definition may still have reached the old app. A record
	// stamped with this version does not count either if it predates Since: it may be from an
	// earlier attempt at the same version.
	Version string
	// MaxSkew is how far ahead of now a lastRun may be; DefaultMaxSkew when zero.
	MaxSkew time.Duration
	// RequireProof: healthy records count as good only when they prove the version answered.
	RequireProof bool
}

// Standing is what a record is worth to an attempt.
type Standing int

// A record is foreign, stale (its own but too old, or of another version), from the future
// (its own but dated too far ahead), or fresh: evidence about the attempt.
const (
	Foreign Standing = iota
	Stale
	Future
	Fresh
)

// Standing judges one record at now.
func (f Freshness) Standing(r Record, now time.Time) Standing {
	if f.Promise == "" || f.RequestUID == "" ||
		text(r.Details[PromiseKey]) != f.Promise || text(r.Details[RequestUIDKey]) != f.RequestUID {
		return Foreign
	}
	if r.LastRun.After(now.Add(f.maxSkew())) {
		return Future
	}
	if r.LastRun.IsZero() || r.LastRun.Before(f.since()) {
		return Stale
	}
	if v := text(r.Details[VersionKey]); v != "" && f.Version != "" && v != f.Version {
		return Stale
	}
	return Fresh
}

func (f Freshness) since() time.Time {
	since := f.Since.Truncate(time.Second)
	if since.Before(f.Since) {
		since = since.Add(time.Second)
	}
	return since
}

func (f Freshness) maxSkew() time.Duration {
	if f.MaxSkew <= 0 {
		return DefaultMaxSkew
	}
	return f.MaxSkew
}

func text(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Observation is one reading of a request's health against an upgrade attempt, judged over the
// attempt's fresh records only: the aggregate healthStatus.state mixes in foreign and stale
// records, so it is not used.
type Observation struct {
	// Good: at least one fresh record, every one healthy or ready, and no stale one.
	Good bool
	// Bad: a fresh record is unhealthy or degraded.
	Bad bool
	// VersionProven: there are fresh records and every one says its checks saw the target
	// version answer.
	VersionProven bool
	// Counted is the number of fresh records; Stale of the request's own that do not count
	// (too old, another version, or dated ahead); Foreign of other Promises' or requests'.
	Counted, Stale, Foreign int
	// Key tells one reading from the next: the fresh records' sources, states and lastRuns.
	Key string
	// Summary is the reading in a few words, for logs and status.
	Summary string
}

// Observe reads a health status against an attempt's freshness at now.
func Observe(s Status, present bool, f Freshness, now time.Time) Observation {
	if !present || len(s.Records) == 0 {
		return Observation{Summary: "no health records yet"}
	}
	var (
		o                               Observation
		keys, bad, unsure, stale, ahead []string
		proven, healthy                 = true, false
	)
	for _, r := range s.Records {
		switch f.Standing(r, now) {
		case Foreign:
			o.Foreign++
		case Stale:
			stale = append(stale, r.Source)
		case Future:
			ahead = append(ahead, r.Source)
		case Fresh:
			o.Counted++
			keys = append(keys, fmt.Sprintf("%s=%s@%d", r.Source, r.State, r.LastRun.Unix()))
			proven = proven && r.Details[VersionProvenKey] == true
			switch {
			case Bad(r.State):
				bad = append(bad, fmt.Sprintf("%s is %s", r.Source, r.State))
			case !Good(r.State):
				unsure = append(unsure, fmt.Sprintf("%s is %s", r.Source, orUnknown(r.State)))
			case r.State == StateHealthy:
				healthy = true
			}
		}
	}
	o.Stale = len(stale) + len(ahead)
	o.Key = strings.Join(keys, ",")
	o.VersionProven = o.Counted > 0 && proven
	own := o.Counted + o.Stale
	switch {
	case len(bad) > 0:
		o.Bad, o.Summary = true, strings.Join(bad, "; ")
	case o.Stale > 0:
		var parts []string
		if len(stale) > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d records predate the upgrade (%s)", len(stale), own, strings.Join(stale, ", ")))
		}
		if len(ahead) > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d records are dated more than %s ahead, refused (%s)", len(ahead), own, f.maxSkew(), strings.Join(ahead, ", ")))
		}
		o.Summary = strings.Join(parts, "; ")
	case o.Counted == 0:
		o.Summary = "no health records of this request yet"
	case len(unsure) > 0:
		o.Summary = strings.Join(unsure, "; ")
	default:
		state := StateReady
		if healthy {
			state = StateHealthy
		}
		o.Good, o.Summary = true, fmt.Sprintf("%s, %d fresh record(s)", state, o.Counted)
		switch {
		case !o.VersionProven && f.RequireProof:
			o.Good = false
			o.Summary += ", but no check proved that " + orUnknown(f.Version) + " answered (a version proof is required)"
		case !o.VersionProven:
			o.Summary += ", version not proven"
		}
	}
	if o.Foreign > 0 {
		o.Summary += fmt.Sprintf(" (%d foreign record(s) ignored)", o.Foreign)
	}
	return o
}

func orUnknown(state string) string {
	if state == "" {
		return StateUnknown
	}
	return state
}

// BaselineAge bounds the records that say how a request stood before its upgrade: a check
// removed since cannot keep it marked unhealthy for ever.
const BaselineAge = time.Hour

// UnhealthyNow is the reading that shows a request unhealthy now, from its own records of the
// Promise run in the last BaselineAge (a request's status, as Kratix writes it); "" when it is not.
func UnhealthyNow(status map[string]any, promise, uid string, now time.Time) string {
	hs, present := StatusOf(status)
	if o := Observe(hs, present, Freshness{Promise: promise, RequestUID: uid, Since: now.Add(-BaselineAge)}, now); o.Bad {
		return o.Summary
	}
	return ""
}
