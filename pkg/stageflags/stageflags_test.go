package stageflags

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/test/errcheck"
)

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr string
	}{
		{"default", nil, nil, time.Minute, ""},
		{"from the environment", nil, map[string]string{"TURNSTILE_WAIT": "5s"}, 5 * time.Second, ""},
		{"the flag wins", []string{"--wait=7s"}, map[string]string{"TURNSTILE_WAIT": "5s"}, 7 * time.Second, ""},
		{"bad value names the variable", nil, map[string]string{"TURNSTILE_WAIT": "soon"}, 0, `invalid TURNSTILE_WAIT="soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			wait := fs.Duration("wait", time.Minute, "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := ApplyEnv(fs, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ApplyEnv() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *wait != tt.want {
				t.Fatalf("ApplyEnv() = %v, wait %s; want %s", err, *wait, tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("slot-namespace"); got != "TURNSTILE_SLOT_NAMESPACE" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestSlotFlagsValidate(t *testing.T) {
	ok := Slot{Slots: Count{N: 1}, Wait: time.Minute, RetryAfter: time.Second, LeaseDuration: time.Minute}
	tests := []struct {
		name   string
		change func(*Slot)
		want   string
	}{
		{"valid", func(*Slot) {}, ""},
		{"the edges", func(f *Slot) {
			f.Slots, f.Wait, f.RetryAfter, f.LeaseDuration = Count{N: 1000}, 24*time.Hour, 24*time.Hour, 15*time.Second
		}, ""},
		{"no wait limit", func(f *Slot) { f.Wait = 0 }, ""},
		{"negative wait", func(f *Slot) { f.Wait = -time.Second }, "--wait must not be negative"},
		{"long wait", func(f *Slot) { f.Wait = 25 * time.Hour }, "--wait must be at most 24h, got 25h0m0s"},
		{"no retry", func(f *Slot) { f.RetryAfter = 0 }, "--retry-after must be at least 1s, got 0s"},
		{"negative retry", func(f *Slot) { f.RetryAfter = -time.Second }, "--retry-after must be at least 1s, got -1s"},
		{"late retry", func(f *Slot) { f.RetryAfter = 48 * time.Hour }, "--retry-after must be at most 24h, got 48h0m0s"},
		{"short lease", func(f *Slot) { f.LeaseDuration = 3 * time.Second }, "--lease-duration must be at least 15s, got 3s"},
		{"lease that wrapped int32", func(f *Slot) { f.LeaseDuration = 1193047 * time.Hour }, "--lease-duration must be at most 24h, got 1193047h0m0s"},
		{"lease the apiserver refused", func(f *Slot) { f.LeaseDuration = 999999 * time.Hour }, "--lease-duration must be at most 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.change(&f)
			errcheck.Check(t, f.validate(), tt.want)
		})
	}
}

func TestAwaitFlagsValidate(t *testing.T) {
	ok := Await{Slot: Slot{Slots: Count{N: 1}, Wait: time.Minute, RetryAfter: 30 * time.Second, LeaseDuration: 10 * time.Minute},
		MinHealthy: 30 * time.Second, FailureThreshold: 3, ProgressDeadline: 10 * time.Minute, MaxUnhealthy: 0.1, MaxFailed: 0.2, MinSample: 5, DefaultWave: 1}
	tests := []struct {
		name   string
		change func(*Await)
		want   string
	}{
		{"valid", func(*Await) {}, ""},
		{"the edges", func(f *Await) {
			f.Wait, f.MinHealthy, f.FailureThreshold, f.ProgressDeadline = 0, 24*time.Hour, 100, 168*time.Hour
			f.MaxUnhealthy, f.MaxFailed, f.MinSample, f.DefaultWave = 0, 1, 1000, 1000
		}, ""},
		{"negative soak", func(f *Await) { f.MinHealthy = -time.Second }, "--min-healthy must not be negative"},
		{"day-long soak", func(f *Await) { f.Wait, f.MinHealthy = 0, 25*time.Hour }, "--min-healthy must be at most 24h, got 25h0m0s"},
		{"no failures allowed", func(f *Await) { f.FailureThreshold = 0 }, "--failure-threshold must be at least 1, got 0"},
		{"endless failures", func(f *Await) { f.FailureThreshold = 1000000 }, "--failure-threshold must be at most 100, got 1000000"},
		{"no deadline", func(f *Await) { f.ProgressDeadline = 0 }, "--progress-deadline must be at least 1s, got 0s"},
		{"negative deadline", func(f *Await) { f.ProgressDeadline = -time.Minute }, "--progress-deadline must be at least 1s, got -1m0s"},
		{"month-long deadline", func(f *Await) { f.ProgressDeadline = 720 * time.Hour }, "--progress-deadline must be at most 168h, got 720h0m0s"},
		{"negative unhealthy ratio", func(f *Await) { f.MaxUnhealthy = -0.1 }, "--max-unhealthy-ratio must be a share between 0 and 1, got -0.1"},
		{"NaN unhealthy ratio", func(f *Await) { f.MaxUnhealthy = math.NaN() }, "--max-unhealthy-ratio must be a share between 0 and 1, got NaN"},
		{"failed ratio over 1", func(f *Await) { f.MaxFailed = 1.5 }, "--max-failed-ratio must be a share between 0 and 1, got 1.5"},
		{"infinite failed ratio", func(f *Await) { f.MaxFailed = math.Inf(1) }, "--max-failed-ratio must be a share between 0 and 1, got +Inf"},
		{"no sample", func(f *Await) { f.MinSample = 0 }, "--gate-min-sample must be at least 1, got 0"},
		{"huge sample", func(f *Await) { f.MinSample = 1001 }, "--gate-min-sample must be at most 1000, got 1001"},
		{"negative wave", func(f *Await) { f.DefaultWave = -1 }, "--default-wave must be at least 0, got -1"},
		{"far wave", func(f *Await) { f.DefaultWave = 1001 }, "--default-wave must be at most 1000, got 1001"},
		{"soak longer than a run", func(f *Await) { f.MinHealthy = 2 * time.Minute }, "--min-healthy (2m0s) must be shorter than --wait (1m0s)"},
		{"slot expires between runs", func(f *Await) { f.LeaseDuration = 30 * time.Second },
			"--retry-after (30s) must be at most half --lease-duration (30s): the slot would expire between runs"},
		{"no runs to expire between", func(f *Await) { f.Wait, f.LeaseDuration = 0, 30*time.Second }, ""},
		{"bad selector", func(f *Await) { f.GateSelector = "a in (" }, `--gate-selector "a in ("`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.change(&f)
			errcheck.Check(t, f.Validate(), tt.want)
		})
	}
}

func TestCount(t *testing.T) {
	tests := []struct {
		in      string
		fleet   int
		want    int
		wantErr string
	}{
		{in: "3", fleet: 100, want: 3},
		{in: "10%", fleet: 37, want: 3},
		{in: "10%", fleet: 5, want: 1},       // rounds down, to at least 1
		{in: "100%", fleet: 0, want: 1},      // an empty fleet still has a slot
		{in: "50%", fleet: 5000, want: 1000}, // never more slots than a Promise can have
		{in: "0", wantErr: "want a number of requests from 1 to 1000"},
		{in: "1001", wantErr: "want a number of requests from 1 to 1000"},
		{in: "0%", wantErr: "want a share from 1% to 100%"},
		{in: "101%", wantErr: "want a share from 1% to 100%"},
		{in: "2.5%", wantErr: "want a share from 1% to 100%"},
		{in: "lots", wantErr: `got "lots"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c Count
			err := c.Set(tt.in)
			errcheck.Check(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if got := c.Of(tt.fleet); got != tt.want || c.String() != tt.in {
				t.Errorf("Count(%q).Of(%d) = %d (%s), want %d", tt.in, tt.fleet, got, c.String(), tt.want)
			}
		})
	}
}

func TestAcquireValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"defaults", nil, ""},
		{"a share of the fleet and a canary cap", []string{"--slots=10%", "--wave-slots=0=1,2=5"}, ""},
		{"a cap that is not a pair", []string{"--wave-slots=0"}, `--wave-slots: "0" is not WAVE=SLOTS, e.g. 0=1`},
		{"a cap of none", []string{"--wave-slots=0=0"}, "--wave-slots: 0 slots for wave 0: a wave's cap goes from 1 to 1000"},
		{"a wave out of range", []string{"--wave-slots=1001=1"}, "--wave-slots: wave 1001"},
		{"a wave capped twice", []string{"--wave-slots=1=1,1=2"}, "--wave-slots: wave 1 is capped twice"},
		{"a bad window", []string{"--allow-window=whenever"}, "--allow-window:"},
		{"a bad start", []string{"--not-before=tomorrow"}, `--not-before "tomorrow": want an RFC 3339 time`},
		{"a soak past a window's bound", []string{"--wave-soak=1000h"}, "--wave-soak must be at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Acquire
			fs := pflag.NewFlagSet("acquire", pflag.ContinueOnError)
			f.Register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			errcheck.Check(t, f.Validate(), tt.want)
		})
	}
}
