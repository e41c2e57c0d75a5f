package rollout

import (
	"testing"
	"time"
)

func TestStatusRoundTrip(t *testing.T) {
	since := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	want := Status{Phase: PhaseWaiting, Version: "v2", Slot: "s", Position: 3, Since: since, Message: "m", Failures: 2, Reading: "a=unhealthy@1"}
	m := want.Map()
	if m["position"] != int64(3) || m["since"] != "2026-11-22T12:00:00Z" {
		t.Errorf("Map() = %v", m)
	}
	got, ok := StatusFrom(map[string]any{StatusKey: m})
	if !ok || got != want {
		t.Errorf("StatusFrom(Map()) = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := StatusFrom(map[string]any{}); ok {
		t.Error("StatusFrom(no block) reported one")
	}
	if m := (Status{Phase: PhaseUpgraded, Since: since}).Map(); m["slot"] != nil || m["position"] != nil {
		t.Errorf("empty fields are written: %v", m)
	}
}

func TestBegan(t *testing.T) {
	tests := []struct {
		status Status
		want   bool
	}{
		{Status{Phase: PhaseUpgraded, Version: "v2"}, true},
		{Status{Phase: PhaseFailed, Version: "v2"}, true},
		{Status{Phase: PhaseSkipped, Version: "v2"}, true},
		{Status{Phase: PhaseWaiting, Version: "v2"}, false},
		{Status{Phase: PhaseUpgraded, Version: "v1"}, false},
		{Status{}, false},
	}
	for _, tt := range tests {
		if got := tt.status.Began("v2"); got != tt.want {
			t.Errorf("%+v.Began(v2) = %v, want %v", tt.status, got, tt.want)
		}
	}
}
