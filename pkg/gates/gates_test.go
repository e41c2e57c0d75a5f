package gates

import (
	"strings"
	"testing"
)

// members makes n upgraded requests, the first failed of them Failed and the first sick of them
// unhealthy; and rest not yet upgraded, the first restSick of them unhealthy.
func members(n, failed, sick int) []Member {
	var out []Member
	for i := range n {
		out = append(out, Member{Upgraded: true, Failed: i < failed, Unhealthy: i < sick})
	}
	return out
}

func untouched(n, sick int) []Member {
	var out []Member
	for i := range n {
		out = append(out, Member{Unhealthy: i < sick})
	}
	return out
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name     string
		wave     []Member
		baseline []Member
		gate     string // "" for no verdict
		reason   string
		env      bool
	}{
		{"healthy wave", members(10, 0, 0), nil, "", "", false},
		{"unhealthy just below 10 %", members(10, 0, 1), nil, "", "", false},
		{"unhealthy above 10 %", members(8, 0, 2), nil, "unhealthy-ratio", "unhealthy-ratio 2/8 = 25 % > 10 %", false},
		{"failed at 20 % is not above it", members(10, 2, 0), nil, "", "", false},
		{"failed above 20 %", members(10, 3, 0), nil, "failed-ratio", "failed-ratio 3/10 = 30 % > 20 %", false},
		{"failed is judged first", members(10, 3, 3), nil, "failed-ratio", "failed-ratio", false},
		{"failures that were there before the upgrade are not its failures", append(members(8, 0, 0),
			Member{Upgraded: true, Failed: true, Unhealthy: true, Preexisting: true}, Member{Upgraded: true, Failed: true, Unhealthy: true, Preexisting: true},
			Member{Upgraded: true, Failed: true, Unhealthy: true, Preexisting: true}), nil, "", "", false},
		{"nor do they make up the sample", append(members(4, 1, 1), Member{Upgraded: true, Preexisting: true}), nil, "", "", false},
		{"below the minimum sample no gate fires", members(4, 2, 2), nil, "", "", false},
		{"at the minimum sample it does", members(5, 2, 2), nil, "failed-ratio", "failed-ratio 2/5 = 40 % > 20 %", false},
		{"requests not yet upgraded do not count", append(members(5, 0, 0), untouched(10, 10)...), nil, "", "", false},
		{"fail open: the untouched fleet is as sick", members(8, 0, 2), untouched(10, 3), "unhealthy-ratio",
			"but 3/10 = 30 % of the requests not yet upgraded are unhealthy too", true},
		{"a healthy baseline blames the upgrade", members(8, 0, 2), untouched(10, 1), "unhealthy-ratio", "unhealthy-ratio 2/8", false},
		{"a baseline too small to judge blames the upgrade", members(8, 0, 2), untouched(4, 4), "unhealthy-ratio", "unhealthy-ratio 2/8", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Default.Judge(tt.wave, tt.baseline)
			if v.Gate != tt.gate || v.Tripped != (tt.gate != "") || v.Environment != tt.env || !strings.Contains(v.Reason, tt.reason) {
				t.Fatalf("Judge() = %+v, want gate %q, environment %v, reason containing %q", v, tt.gate, tt.env, tt.reason)
			}
		})
	}
}

func TestTrippedGate(t *testing.T) {
	tripped := Verdict{Tripped: true, Gate: UnhealthyRatio, Reason: describe(UnhealthyRatio, 2, 4, 0.1)}
	tests := []struct {
		reason string
		want   string
	}{
		{PauseReason(1, tripped), UnhealthyRatio},
		{PauseReason(0, Verdict{Tripped: true, Gate: FailedRatio, Reason: describe(FailedRatio, 1, 1, 0)}), FailedRatio},
		{"maintenance window", ""},
		{"wave 1: looks odd", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Tripped(tt.reason); got != tt.want {
			t.Errorf("Tripped(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}
