package cli

import "testing"

func TestOutcome(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		want Outcome
	}{
		{"nothing yet", Report{}, Progressing},
		{"part way", Report{Total: 5, Upgraded: 2, Waiting: 3}, Progressing},
		{"all upgraded", Report{Total: 5, Upgraded: 5}, Done},
		{"paused", Report{Total: 5, Upgraded: 2, Paused: true}, Halted},
		{"aborted", Report{Total: 5, Upgraded: 5, Aborted: true}, Halted},
		{"a failed upgrade", Report{Total: 5, Upgraded: 1, Failed: 1}, Halted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.Outcome(); got != tt.want {
				t.Errorf("Outcome() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		n, of int
		want  string
	}{
		{0, 0, "[----------]"}, {0, 5, "[----------]"}, {1, 5, "[##--------]"}, {5, 5, "[##########]"}, {2, 3, "[######----]"},
	}
	for _, tt := range tests {
		if got := bar(tt.n, tt.of, 10); got != tt.want {
			t.Errorf("bar(%d, %d) = %s, want %s", tt.n, tt.of, got, tt.want)
		}
	}
}
