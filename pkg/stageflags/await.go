package stageflags

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kratix-turnstile/turnstile/pkg/gates"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Await are await's flags.
type Await struct {
	Slot
	MinHealthy       time.Duration
	FailureThreshold int
	ProgressDeadline time.Duration
	Gates            bool
	MaxUnhealthy     float64
	MaxFailed        float64
	MinSample        int
	GateSelector     string
	DefaultWave      int
	RequireProof     bool
}

// Register defines await's flags on fs.
func (f *Await) Register(fs *pflag.FlagSet) {
	f.register(fs, "how long to watch before handing back to Kratix")
	fs.DurationVar(&f.MinHealthy, "min-healthy", 30*time.Second, "how long the request must stay freshly healthy (reset by any blip)")
	fs.IntVar(&f.FailureThreshold, "failure-threshold", 3, "unhealthy or degraded readings in a row that fail the upgrade")
	fs.DurationVar(&f.ProgressDeadline, "progress-deadline", 10*time.Minute, "fail the upgrade if it is not healthy this long after the slot was taken")
	fs.BoolVar(&f.Gates, "gates", true, "pause the rollout when too many of this wave's upgrades go wrong")
	fs.Float64Var(&f.MaxUnhealthy, "max-unhealthy-ratio", gates.Default.MaxUnhealthy, "share of a wave's upgraded requests that may be unhealthy")
	fs.Float64Var(&f.MaxFailed, "max-failed-ratio", gates.Default.MaxFailed, "share of a wave's upgraded requests whose upgrade may fail")
	fs.IntVar(&f.MinSample, "gate-min-sample", gates.Default.MinSample, "upgraded requests a wave needs before a gate judges it")
	fs.StringVar(&f.GateSelector, "gate-selector", "", "judge the gates over the requests matching this label selector only (default: all the Promise's requests)")
	fs.BoolVar(&f.RequireProof, "require-version-proof", false,
		"release only on records whose checks proved the new version answered (a check expecting ${version})")
	fs.IntVar(&f.DefaultWave, "default-wave", 1, "wave of requests without a wave label (as acquire's --default-wave)")
}

// Validate checks await's flags, naming the one that is wrong.
func (f *Await) Validate() error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.MinHealthy < 0 {
		return fmt.Errorf("--min-healthy must not be negative, got %s", f.MinHealthy)
	}
	for _, err := range []error{
		DurationIn("min-healthy", f.MinHealthy, 0, MaxMinHealthy),
		IntIn("failure-threshold", f.FailureThreshold, 1, MaxFailureThreshold),
		DurationIn("progress-deadline", f.ProgressDeadline, MinProgressDeadline, MaxProgressDeadline),
		Share("max-unhealthy-ratio", f.MaxUnhealthy),
		Share("max-failed-ratio", f.MaxFailed),
		IntIn("gate-min-sample", f.MinSample, 1, MaxGateMinSample),
		IntIn("default-wave", f.DefaultWave, 0, rollout.MaxWave),
	} {
		if err != nil {
			return err
		}
	}
	if f.Wait > 0 && f.MinHealthy >= f.Wait {
		return fmt.Errorf("--min-healthy (%s) must be shorter than --wait (%s): a soak cannot span two runs", f.MinHealthy, f.Wait)
	}
	// await holds the slot across runs but renews it only while running: it must run again
	// well before the lease runs out, or another request takes the slot meanwhile.
	if f.Wait > 0 && f.RetryAfter > f.LeaseDuration/2 {
		return fmt.Errorf("--retry-after (%s) must be at most half --lease-duration (%s): the slot would expire between runs", f.RetryAfter, f.LeaseDuration)
	}
	if _, err := labels.Parse(f.GateSelector); err != nil {
		return fmt.Errorf("--gate-selector %q: %w", f.GateSelector, err)
	}
	return nil
}
