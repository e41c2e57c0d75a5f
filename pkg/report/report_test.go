package report

import (
	"testing"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

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
		{"held platform-wide", Report{Total: 5, Upgraded: 2, Held: true}, Halted},
		{"done, though the platform is held", Report{Total: 5, Upgraded: 5, Held: true}, Done},
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

func TestWithDeclared(t *testing.T) {
	cases := []struct {
		name                      string
		target, previous, aborted string
		declared                  string
		want                      string
	}{
		{"the Promise moved on: its rollout has not begun", "v1", "", "", "v2", "v2"},
		{"the rollout under way", "v2", "v1", "", "v2", "v2"},
		{"no version label", "v2", "v1", "", "", "v2"},
		{"a rollback back to the previous version", "v1", "v2", "v2", "v2", "v1"},
		{"a leftover of the version before", "v2", "v1", "", "v1", "v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := turnstile.View{Rollout: turnstile.Rollout{Target: c.target, Previous: c.previous, AbortedVersion: c.aborted}}
			if got := WithDeclared(v, c.declared).Rollout.Target; got != c.want {
				t.Errorf("target = %q, want %q", got, c.want)
			}
		})
	}
}
