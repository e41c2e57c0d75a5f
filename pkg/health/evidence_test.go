package health

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	promise = "webapp"
	uid     = "5c1d6e2a-0000-4000-8000-000000000001"
)

// own is the details a checker of this request writes, with extra keys on top.
func own(extra map[string]any) map[string]any {
	d := Stamp{Promise: promise, RequestUID: uid}.Apply(nil)
	for k, v := range extra {
		d[k] = v
	}
	return d
}

func TestStanding(t *testing.T) {
	since := t0.Add(300 * time.Millisecond)
	now := t0.Add(time.Minute)
	f := Freshness{Promise: promise, RequestUID: uid, Since: since, Version: "v2"}
	tests := []struct {
		name    string
		f       Freshness
		lastRun time.Time
		details map[string]any
		want    Standing
	}{
		{"own, run after the attempt began", f, t0.Add(2 * time.Second), own(nil), Fresh},
		{"own, run the next whole second", f, t0.Add(time.Second), own(nil), Fresh},
		{"own, run in the same second, maybe before: not trusted", f, t0, own(nil), Stale},
		{"own, run before", f, t0.Add(-time.Hour), own(nil), Stale},
		{"own, no lastRun", f, time.Time{}, own(nil), Stale},
		{"stamped with the target but run before: time and stamp, not either", f, t0.Add(-time.Hour), own(map[string]any{VersionKey: "v2"}), Stale},
		{"run after but stamped with the old version: it may have reached the old app", f, t0.Add(5 * time.Second), own(map[string]any{VersionKey: "v1"}), Stale},
		{"run after and stamped with the target", f, t0.Add(5 * time.Second), own(map[string]any{VersionKey: "v2"}), Fresh},
		{"another Promise's record for the same namespace/name", f, t0.Add(5 * time.Second),
			map[string]any{PromiseKey: "other", RequestUIDKey: uid, VersionKey: "v2"}, Foreign},
		{"an earlier request of the same name", f, t0.Add(5 * time.Second),
			map[string]any{PromiseKey: promise, RequestUIDKey: "old-uid", VersionKey: "v2"}, Foreign},
		{"unstamped", f, t0.Add(5 * time.Second), map[string]any{VersionKey: "v2"}, Foreign},
		{"no details", f, t0.Add(5 * time.Second), nil, Foreign},
		{"an attempt that names no request recognises no record", Freshness{Since: since}, t0.Add(5 * time.Second), own(nil), Foreign},
		{"from the future: refused", f, now.Add(31 * time.Second), own(nil), Future},
		{"a little ahead, within the skew", f, now.Add(29 * time.Second), own(nil), Fresh},
		{"a stated skew bound", Freshness{Promise: promise, RequestUID: uid, Since: since, MaxSkew: time.Second}, now.Add(2 * time.Second), own(nil), Future},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Standing(Record{LastRun: tt.lastRun, Details: tt.details}, now); got != tt.want {
				t.Errorf("Standing() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	now := t0.Add(2 * time.Minute)
	f := Freshness{Promise: promise, RequestUID: uid, Since: t0, Version: "v2"}
	fresh, stale, ahead := t0.Add(time.Minute), t0.Add(-time.Minute), now.Add(time.Hour)
	proven := own(map[string]any{VersionKey: "v2", VersionProvenKey: true})
	foreign := map[string]any{PromiseKey: "other", RequestUIDKey: "x"}
	rec := func(source, state string, lastRun time.Time, details map[string]any) Record {
		return Record{Source: source, State: state, LastRun: lastRun, Details: details}
	}
	tests := []struct {
		name        string
		status      Status
		present     bool
		good, bad   bool
		proven      bool
		foreign     int
		wantSummary string
	}{
		{"no healthStatus", Status{}, false, false, false, false, 0, "no health records yet"},
		{"no records", Status{State: "ready"}, true, false, false, false, 0, "no health records yet"},
		{"healthy and fresh", Status{State: "healthy", Records: []Record{rec("a", "healthy", fresh, own(nil))}},
			true, true, false, false, 0, "healthy, 1 fresh record(s), version not proven"},
		{"ready and fresh, version proven", Status{State: "ready", Records: []Record{rec("a", "ready", fresh, proven)}},
			true, true, false, true, 0, "ready, 1 fresh record(s)"},
		{"proven only if every counted record proves it", Status{State: "healthy", Records: []Record{
			rec("a", "healthy", fresh, proven), rec("b", "healthy", fresh, own(nil))}}, true, true, false, false, 0, "version not proven"},
		{"healthy but one own record stale", Status{State: "healthy", Records: []Record{
			rec("a", "healthy", fresh, own(nil)), rec("b", "healthy", stale, own(nil))}}, true, false, false, false, 0, "1 of 2 records predate the upgrade (b)"},
		{"stale by time though stamped with the target", Status{State: "healthy", Records: []Record{
			rec("a", "healthy", stale, proven)}}, true, false, false, false, 0, "1 of 1 records predate the upgrade (a)"},
		{"foreign records are ignored and counted", Status{State: "healthy", Records: []Record{
			rec("a", "healthy", fresh, own(nil)), rec("x", "healthy", stale, foreign), rec("y", "unhealthy", fresh, nil)}},
			true, true, false, false, 2, "healthy, 1 fresh record(s), version not proven (2 foreign record(s) ignored)"},
		{"only foreign records", Status{State: "healthy", Records: []Record{rec("x", "healthy", fresh, foreign)}},
			true, false, false, false, 1, "no health records of this request yet (1 foreign record(s) ignored)"},
		{"a foreign unhealthy record does not fail the upgrade", Status{State: "unhealthy", Records: []Record{
			rec("a", "healthy", fresh, own(nil)), rec("x", "unhealthy", fresh, foreign)}}, true, true, false, false, 1, "healthy"},
		{"fresh own unhealthy beats an overall healthy state", Status{State: "healthy", Records: []Record{
			rec("a", "unhealthy", fresh, own(nil))}}, true, false, true, false, 0, "a is unhealthy"},
		{"fresh own unhealthy with a stale healthy", Status{State: "unhealthy", Records: []Record{
			rec("a", "unhealthy", fresh, own(nil)), rec("b", "healthy", stale, own(nil))}}, true, false, true, false, 0, "a is unhealthy"},
		{"unhealthy but stale: no verdict on the new version", Status{State: "unhealthy", Records: []Record{
			rec("a", "unhealthy", stale, own(nil))}}, true, false, false, false, 0, "predate"},
		{"degraded and fresh", Status{State: "degraded", Records: []Record{rec("a", "degraded", fresh, own(nil))}},
			true, false, true, false, 0, "a is degraded"},
		{"unknown and fresh", Status{State: "unknown", Records: []Record{rec("a", "unknown", fresh, own(nil))}},
			true, false, false, false, 0, "a is unknown"},
		{"a record from the future is refused", Status{State: "healthy", Records: []Record{rec("a", "healthy", ahead, proven)}},
			true, false, false, false, 0, "1 of 1 records are dated more than 30s ahead, refused (a)"},
		{"a future record blocks a fresh healthy one", Status{State: "healthy", Records: []Record{
			rec("a", "healthy", fresh, own(nil)), rec("b", "healthy", ahead, own(nil))}}, true, false, false, false, 0, "refused (b)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observe(tt.status, tt.present, f, now)
			if o.Good != tt.good || o.Bad != tt.bad || o.VersionProven != tt.proven || o.Foreign != tt.foreign ||
				!strings.Contains(o.Summary, tt.wantSummary) {
				t.Errorf("Observe() = %+v, want good=%v bad=%v proven=%v foreign=%d summary containing %q",
					o, tt.good, tt.bad, tt.proven, tt.foreign, tt.wantSummary)
			}
		})
	}
}

func TestObserveRequiringProof(t *testing.T) {
	now := t0.Add(2 * time.Minute)
	f := Freshness{Promise: promise, RequestUID: uid, Since: t0, Version: "v2", RequireProof: true}
	rec := func(details map[string]any) Status {
		return Status{State: "healthy", Records: []Record{{Source: "a", State: "healthy", LastRun: t0.Add(time.Minute), Details: details}}}
	}
	tests := []struct {
		name    string
		details map[string]any
		good    bool
		summary string
	}{
		{"proven: good", own(map[string]any{VersionKey: "v2", VersionProvenKey: true}), true, "healthy, 1 fresh record(s)"},
		{"healthy but not proven: not good", own(map[string]any{VersionKey: "v2"}), false, "no check proved that v2 answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observe(rec(tt.details), true, f, now)
			if o.Good != tt.good || !strings.Contains(o.Summary, tt.summary) {
				t.Errorf("Observe() = %+v, want good=%v and a summary containing %q", o, tt.good, tt.summary)
			}
		})
	}
}

func TestObserveKeyCountsFreshOnly(t *testing.T) {
	f := Freshness{Promise: promise, RequestUID: uid, Since: t0}
	now := t0.Add(time.Minute)
	s := Status{Records: []Record{
		{Source: "a", State: "healthy", LastRun: t0.Add(time.Second), Details: own(nil)},
		{Source: "x", State: "healthy", LastRun: t0.Add(2 * time.Second), Details: nil},
	}}
	o := Observe(s, true, f, now)
	if o.Key != "a=healthy@"+strconv.FormatInt(t0.Add(time.Second).Unix(), 10) || o.Counted != 1 || o.Stale != 0 {
		t.Errorf("Observe() = %+v", o)
	}
}
