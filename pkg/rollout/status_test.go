package rollout

import (
	"encoding/json"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
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

func TestMergePatchClearsEarlierPhases(t *testing.T) {
	since := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	full := Status{Phase: PhaseFailed, Version: "v2", Slot: "s", Position: 3, Since: since, Message: "m", Failures: 2, Reading: "r"}
	if got := len(full.Map()); got != len(statusKeys) {
		t.Fatalf("a full status maps to %d keys, statusKeys has %d: keep them in step", got, len(statusKeys))
	}
	tests := []struct {
		name         string
		earlier, now Status
	}{
		{"waiting, then upgrading: no position left", Status{Phase: PhaseWaiting, Version: "v2", Position: 4, Since: since}, Status{Phase: PhaseUpgrading, Version: "v2", Slot: "s", Since: since}},
		{"failed, then upgraded: no slot, failures or reading left", full, Status{Phase: PhaseUpgraded, Version: "v2", Since: since, Message: "ok"}},
		{"the same status again", full, full},
	}
	for _, tt := range tests {
		doc, _ := json.Marshal(map[string]any{"other": "kept", StatusKey: tt.earlier.Map()})
		patch, _ := json.Marshal(map[string]any{StatusKey: tt.now.MergePatch()})
		merged, err := jsonpatch.MergePatch(doc, patch)
		if err != nil {
			t.Fatal(err)
		}
		var live map[string]any
		if err := json.Unmarshal(merged, &live); err != nil {
			t.Fatal(err)
		}
		got, _ := StatusFrom(live)
		if got != tt.now || live["other"] != "kept" {
			t.Errorf("%s: merged status = %+v, want %+v", tt.name, got, tt.now)
		}
	}
}
