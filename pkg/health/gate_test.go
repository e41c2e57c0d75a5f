package health

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestFresh(t *testing.T) {
	since := t0.Add(300 * time.Millisecond)
	tests := []struct {
		name    string
		f       Freshness
		lastRun time.Time
		details map[string]any
		want    bool
	}{
		{"run after the upgrade began", Freshness{Since: since}, t0.Add(2 * time.Second), nil, true},
		{"run in the same second, maybe before: not trusted", Freshness{Since: since}, t0, nil, false},
		{"run the next whole second", Freshness{Since: since}, t0.Add(time.Second), nil, true},
		{"run before", Freshness{Since: since}, t0.Add(-time.Hour), nil, false},
		{"old run stamped with the target version", Freshness{Since: since, Version: "v2"}, t0.Add(-time.Hour), map[string]any{"version": "v2"}, true},
		{"old run stamped with the old version", Freshness{Since: since, Version: "v2"}, t0.Add(-time.Hour), map[string]any{"version": "v1"}, false},
		{"new run stamped with the old version: it may have reached the old app", Freshness{Since: since, Version: "v2"}, t0.Add(5 * time.Second), map[string]any{"version": "v1"}, false},
		{"new unstamped run, with a target version", Freshness{Since: since, Version: "v2"}, t0.Add(5 * time.Second), nil, true},
		{"no lastRun", Freshness{Since: since}, time.Time{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Fresh(Record{LastRun: tt.lastRun, Details: tt.details}); got != tt.want {
				t.Errorf("Fresh() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	f := Freshness{Since: t0}
	fresh, stale := t0.Add(time.Minute), t0.Add(-time.Minute)
	tests := []struct {
		name        string
		status      Status
		present     bool
		good, bad   bool
		wantSummary string
	}{
		{"no healthStatus", Status{}, false, false, false, "no health records yet"},
		{"no records", Status{State: "ready"}, true, false, false, "no health records yet"},
		{"healthy and fresh", Status{State: "healthy", Records: []Record{{Source: "a", State: "healthy", LastRun: fresh}}}, true, true, false, "healthy, 1 fresh"},
		{"ready and fresh", Status{State: "ready", Records: []Record{{Source: "a", State: "ready", LastRun: fresh}}}, true, true, false, "ready"},
		{"healthy but one record stale", Status{State: "healthy", Records: []Record{
			{Source: "a", State: "healthy", LastRun: fresh}, {Source: "b", State: "healthy", LastRun: stale}}}, true, false, false, "1 of 2 records predate the upgrade (b)"},
		{"unhealthy and fresh", Status{State: "unhealthy", Records: []Record{{Source: "a", State: "unhealthy", LastRun: fresh}}}, true, false, true, "a is unhealthy"},
		{"unhealthy but stale: no verdict on the new version", Status{State: "unhealthy", Records: []Record{{Source: "a", State: "unhealthy", LastRun: stale}}}, true, false, false, "predate"},
		{"degraded and fresh", Status{State: "degraded", Records: []Record{{Source: "a", State: "degraded", LastRun: fresh}}}, true, false, true, "a is degraded"},
		{"unknown", Status{State: "unknown", Records: []Record{{Source: "a", State: "unknown", LastRun: fresh}}}, true, false, false, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Observe(tt.status, tt.present, f)
			if o.Good != tt.good || o.Bad != tt.bad || !strings.Contains(o.Summary, tt.wantSummary) {
				t.Errorf("Observe() = %+v, want good=%v bad=%v summary containing %q", o, tt.good, tt.bad, tt.wantSummary)
			}
		})
	}
}

func TestGate(t *testing.T) {
	good := func(k string) Observation { return Observation{Good: true, Key: k, Summary: "healthy"} }
	bad := func(k string) Observation { return Observation{Bad: true, Key: k, Summary: "unhealthy"} }
	pending := Observation{Summary: "no health records yet"}
	type step struct {
		after time.Duration
		obs   *Observation // nil: re-judge the last reading at this time
		want  string       // "pass", "fail" or "wait"
	}
	ptr := func(o Observation) *Observation { return &o }
	tests := []struct {
		name  string
		steps []step
	}{
		{"passes after a soak of unbroken good readings", []step{
			{0, ptr(good("1")), "wait"}, {20 * time.Second, ptr(good("2")), "wait"}, {30 * time.Second, nil, "pass"}}},
		{"a blip restarts the soak", []step{
			{0, ptr(good("1")), "wait"}, {20 * time.Second, ptr(pending), "wait"}, {25 * time.Second, ptr(good("2")), "wait"},
			{50 * time.Second, nil, "wait"}, {55 * time.Second, nil, "pass"}}},
		{"fails after three bad readings in a row", []step{
			{0, ptr(bad("1")), "wait"}, {10 * time.Second, ptr(bad("2")), "wait"}, {20 * time.Second, ptr(bad("3")), "fail"}}},
		{"the same reading seen again counts once", []step{
			{0, ptr(bad("1")), "wait"}, {1 * time.Second, ptr(bad("1")), "wait"}, {2 * time.Second, ptr(bad("1")), "wait"}}},
		{"a good reading resets the failure count", []step{
			{0, ptr(bad("1")), "wait"}, {1 * time.Second, ptr(bad("2")), "wait"}, {2 * time.Second, ptr(good("3")), "wait"},
			{3 * time.Second, ptr(bad("4")), "wait"}}},
		{"a soak under way at the deadline is not failed by it", []step{
			{9*time.Minute + 50*time.Second, ptr(good("1")), "wait"}, {10 * time.Minute, nil, "wait"}, {10*time.Minute + 20*time.Second, nil, "pass"}}},
		{"fails at the deadline without a good reading", []step{
			{0, ptr(pending), "wait"}, {10 * time.Minute, nil, "fail"}}},
		{"a failed upgrade that recovers passes", []step{
			{0, ptr(bad("1")), "wait"}, {1 * time.Second, ptr(bad("2")), "wait"}, {2 * time.Second, ptr(bad("3")), "fail"},
			{3 * time.Second, ptr(good("4")), "wait"}, {33 * time.Second, nil, "pass"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Gate{MinHealthy: 30 * time.Second, FailureThreshold: 3, Deadline: t0.Add(10 * time.Minute)}
			var last Observation
			for i, s := range tt.steps {
				var v Verdict
				if s.obs != nil {
					last = *s.obs
					v = g.Observe(t0.Add(s.after), last)
				} else {
					v = g.At(t0.Add(s.after), last)
				}
				got := "wait"
				switch {
				case v.Passed:
					got = "pass"
				case v.Failed:
					got = "fail"
				}
				if got != s.want {
					t.Fatalf("step %d: %s (%q), want %s", i, got, v.Message, s.want)
				}
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	status := map[string]any{"healthStatus": map[string]any{"state": "healthy", "healthRecords": []any{
		map[string]any{"state": "healthy", "lastRun": int64(1700000000), "source": map[string]any{"name": "r", "namespace": "ns"},
			"details": map[string]any{"version": "v2"}},
	}}}
	s, ok := StatusOf(status)
	if !ok || s.State != "healthy" || len(s.Records) != 1 {
		t.Fatalf("StatusOf() = %+v, %v", s, ok)
	}
	r := s.Records[0]
	if r.Source != "ns/r" || r.LastRun.Unix() != 1700000000 || r.Details["version"] != "v2" {
		t.Errorf("record = %+v", r)
	}
	if _, ok := StatusOf(map[string]any{}); ok {
		t.Error("StatusOf(no healthStatus) reported present")
	}
}
