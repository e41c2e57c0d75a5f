package checks

import (
	"testing"
	"time"
)

func TestObserveThresholds(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	web := Check{Name: "web", HTTP: &HTTP{URL: "http://x"}, SuccessThreshold: 2, FailureThreshold: 3, OnFailure: "unhealthy"}
	soft := Check{Name: "db", TCP: &TCP{Address: "x:1"}, SuccessThreshold: 1, FailureThreshold: 1, OnFailure: "degraded"}
	rollout := Check{Name: "r", Kube: &Kube{Kind: "Deployment", MinReadySeconds: 30}, SuccessThreshold: 1, FailureThreshold: 1, OnFailure: "unhealthy"}
	pass, fail, unknown := Result{Pass: true}, Result{}, Result{Unknown: true}
	tests := []struct {
		name    string
		check   Check
		results []Result
		every   time.Duration
		want    []string
	}{
		{"healthy after successThreshold passes", web, []Result{pass, pass}, time.Second, []string{"unknown", "healthy"}},
		{"a flap does not fail it", web, []Result{pass, pass, fail, fail, pass, fail}, time.Second,
			[]string{"unknown", "healthy", "healthy", "healthy", "healthy", "healthy"}},
		{"unhealthy after failureThreshold failures", web, []Result{pass, pass, fail, fail, fail}, time.Second,
			[]string{"unknown", "healthy", "healthy", "healthy", "unhealthy"}},
		{"recovers after successThreshold passes", web, []Result{fail, fail, fail, pass, pass}, time.Second,
			[]string{"unknown", "unknown", "unhealthy", "unhealthy", "healthy"}},
		{"a soft check degrades", soft, []Result{pass, fail}, time.Second, []string{"healthy", "degraded"}},
		{"unknown at once", web, []Result{pass, pass, unknown}, time.Second, []string{"unknown", "healthy", "unknown"}},
		{"kube soaks for minReadySeconds", rollout, []Result{pass, pass, pass, pass}, 10 * time.Second,
			[]string{"unknown", "unknown", "unknown", "ready"}},
		{"a blip restarts the soak", rollout, []Result{pass, pass, fail, pass, pass, pass, pass}, 10 * time.Second,
			[]string{"unknown", "unknown", "unhealthy", "unhealthy", "unhealthy", "unhealthy", "ready"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s ProbeState
			for i, r := range tt.results {
				s = tt.check.Observe(s, r, t0.Add(time.Duration(i)*tt.every))
				if s.State != tt.want[i] {
					t.Fatalf("after result %d: %s, want %s", i, s.State, tt.want[i])
				}
			}
		})
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		states []string
		want   string
	}{
		{nil, "ready"}, {[]string{"ready", "healthy"}, "healthy"}, {[]string{"healthy", "unknown"}, "unknown"},
		{[]string{"degraded", "unknown"}, "degraded"}, {[]string{"ready", "unhealthy", "degraded"}, "unhealthy"},
	}
	for _, tt := range tests {
		if got := Worst(tt.states...); got != tt.want {
			t.Errorf("Worst(%v) = %s, want %s", tt.states, got, tt.want)
		}
	}
}
