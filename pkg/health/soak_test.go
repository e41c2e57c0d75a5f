package health

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestSoak(t *testing.T) {
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
			g := &Soak{MinHealthy: 30 * time.Second, FailureThreshold: 3, Deadline: t0.Add(10 * time.Minute)}
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
