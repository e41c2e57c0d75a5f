package stageflags

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
)

// Bounds of the stages' flags: what a platform engineer would set, with room either side, and
// well inside what the API fields they end up in can hold (a Lease's durations are int32
// seconds: 1193047h once wrapped round to 1904s).
const (
	// MaxWait bounds --wait (0 means no limit): a pipeline pod blocked longer is better
	// handed back to Kratix.
	MaxWait = 24 * time.Hour
	// MinRetryAfter and MaxRetryAfter bound how soon Kratix re-runs a pipeline that handed back.
	MinRetryAfter = time.Second
	MaxRetryAfter = 24 * time.Hour

	// await's flags.
	MaxMinHealthy       = 24 * time.Hour
	MaxFailureThreshold = 100
	// MinProgressDeadline is low for tests that fail an upgrade on purpose; a real one is minutes.
	MinProgressDeadline = time.Second
	MaxProgressDeadline = 7 * 24 * time.Hour
	MaxGateMinSample    = 1000

	// check's flags.
	MinCheckInterval = time.Second
	MaxCheckInterval = time.Hour
)

// envPrefix prefixes the environment variables that stand in for flags, so a Promise author can
// configure a stage with the pipeline container's env as well as its args.
const envPrefix = "TURNSTILE_"

// EnvName is the environment variable that sets a flag: --slot-namespace is
// TURNSTILE_SLOT_NAMESPACE.
func EnvName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ApplyEnv sets every flag not given on the command line from its environment variable.
func ApplyEnv(flags *pflag.FlagSet, getenv func(string) string) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if setErr := flags.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("invalid %s=%q: %w", EnvName(f.Name), v, setErr)
			}
		}
	})
	return err
}

// IntIn is the error for a count flag outside lo..hi, naming the flag and the end it broke.
func IntIn(flag string, v, lo, hi int) error {
	switch {
	case v < lo:
		return fmt.Errorf("--%s must be at least %d, got %d", flag, lo, v)
	case v > hi:
		return fmt.Errorf("--%s must be at most %d, got %d", flag, hi, v)
	}
	return nil
}

// DurationIn is IntIn for durations.
func DurationIn(flag string, v, lo, hi time.Duration) error {
	switch {
	case v < lo:
		return fmt.Errorf("--%s must be at least %s, got %s", flag, FmtDuration(lo), v)
	case v > hi:
		return fmt.Errorf("--%s must be at most %s, got %s", flag, FmtDuration(hi), v)
	}
	return nil
}

// Share is the error for a ratio flag outside 0..1; NaN is outside too.
func Share(flag string, v float64) error {
	if !(v >= 0 && v <= 1) {
		return fmt.Errorf("--%s must be a share between 0 and 1, got %g", flag, v)
	}
	return nil
}

// Span writes a flag's range for its help.
func Span(lo, hi time.Duration) string { return FmtDuration(lo) + " to " + FmtDuration(hi) }

// FmtDuration writes a bound the way people write it: 24h, not 24h0m0s.
func FmtDuration(d time.Duration) string { return checks.FormatDuration(d) }
