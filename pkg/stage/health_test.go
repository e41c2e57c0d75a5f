package stage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

func TestRenderRefusesOversizedDefinitions(t *testing.T) {
	ref := health.ResourceRef{Name: "web", Namespace: "team-a"}
	def := func(input string) *health.HealthDefinition {
		d, err := health.NewDefinition("default", "webapp", ref, "@every 30s", input, "v2")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name   string
		input  string
		checks int
		want   string
	}{
		{"a usual definition", "checks: []", 3, ""},
		{"at the check limit", "", checks.MaxChecks, ""},
		{"too many checks", "", checks.MaxChecks + 1, fmt.Sprintf("HealthDefinition default/webapp-team-a-web has %d checks, over the limit of %d", checks.MaxChecks+1, checks.MaxChecks)},
		{"too large for the apiserver", strings.Repeat("x", maxDefinitionBytes), 1, "bytes serialized, over the limit of 1048576 (1 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := render(def(tt.input), tt.checks)
			if tt.want == "" {
				if err != nil || !strings.Contains(string(data), "kind: HealthDefinition") {
					t.Fatalf("render() = %q, %v", data, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || data != nil {
				t.Fatalf("render() error = %v, want one line containing %q and no data", err, tt.want)
			}
		})
	}
}

func TestCheckRecordStamp(t *testing.T) {
	stamp := health.Stamp{Promise: "webapp", RequestUID: "uid-1", Definition: "team-a/webapp-team-a-web", Version: "v2"}
	rep := checks.Report{State: checks.StateHealthy, Checks: map[string]checks.CheckReport{
		"web": {ProbeState: checks.ProbeState{State: checks.StateHealthy, Successes: 2}, Pass: true}}}
	written := func(s health.Stamp, state string) *health.HealthRecord {
		return health.NewRecord("webapp", health.ResourceRef{Name: "web", Namespace: "team-a"}, state, 0,
			s.Apply(map[string]any{"checks": rep.Checks}))
	}
	other := func(change func(*health.Stamp)) health.Stamp {
		s := stamp
		change(&s)
		return s
	}
	tests := []struct {
		name string
		rec  *health.HealthRecord
		want bool
	}{
		{"nothing written yet", nil, true},
		{"as written", written(stamp, checks.StateHealthy), false},
		{"another state", written(stamp, checks.StateUnhealthy), true},
		{"written for an earlier request of the same name", written(other(func(s *health.Stamp) { s.RequestUID = "uid-0" }), checks.StateHealthy), true},
		{"written for another version", written(other(func(s *health.Stamp) { s.Version = "v1" }), checks.StateHealthy), true},
		{"the version proof changed", written(other(func(s *health.Stamp) { s.VersionProven = true }), checks.StateHealthy), true},
		{"unstamped, by an older turnstile", health.NewRecord("webapp", health.ResourceRef{Name: "web", Namespace: "team-a"},
			checks.StateHealthy, 0, map[string]any{"checks": rep.Checks, health.VersionKey: "v2"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outdated(tt.rec, rep, stamp); got != tt.want {
				t.Errorf("outdated() = %v, want %v", got, tt.want)
			}
		})
	}

	// What check writes is what await counts, for this request's upgrade only.
	since := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rec := health.Record{State: rep.State, LastRun: since.Add(time.Second), Details: written(stamp, rep.State).Data.Details}
	if got := (health.Freshness{Promise: "webapp", RequestUID: "uid-1", Since: since, Version: "v2"}).Standing(rec, since.Add(time.Minute)); got != health.Fresh {
		t.Errorf("await's standing of the check's record = %v, want fresh", got)
	}
	if got := (health.Freshness{Promise: "webapp", RequestUID: "uid-2", Since: since, Version: "v2"}).Standing(rec, since.Add(time.Minute)); got != health.Foreign {
		t.Errorf("another request's standing of the check's record = %v, want foreign", got)
	}
}

func TestCheckSoakFlags(t *testing.T) {
	tests := []struct {
		name       string
		minHealthy time.Duration
		wait       time.Duration
		want       string
	}{
		{"the defaults", 30 * time.Second, time.Minute, ""},
		{"no wait: check until soaked", 30 * time.Second, 0, ""},
		{"no soak", 0, time.Minute, "--min-healthy must be positive"},
		{"a soak longer than the run", time.Minute, 30 * time.Second, "must be shorter than --wait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := checkFlags{minHealthy: tt.minHealthy, wait: tt.wait}
			err := f.validateSoak()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validateSoak() = %v, want %q", err, tt.want)
			}
		})
	}
}
