package stage

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
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
			err := applyEnv(fs, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("applyEnv() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || *wait != tt.want {
				t.Fatalf("applyEnv() = %v, wait %s; want %s", err, *wait, tt.want)
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
	ok := slotFlags{slots: 1, wait: time.Minute, retryAfter: time.Second, leaseDuration: time.Minute}
	tests := []struct {
		name   string
		change func(*slotFlags)
		want   string
	}{
		{"valid", func(*slotFlags) {}, ""},
		{"N < 1", func(f *slotFlags) { f.slots = 0 }, "--slots must be at least 1"},
		{"negative wait", func(f *slotFlags) { f.wait = -time.Second }, "--wait must not be negative"},
		{"no retry", func(f *slotFlags) { f.retryAfter = 0 }, "--retry-after must be positive"},
		{"short lease", func(f *slotFlags) { f.leaseDuration = time.Second }, "--lease-duration must be at least 3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.change(&f)
			err := f.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
