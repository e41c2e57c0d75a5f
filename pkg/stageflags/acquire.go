package stageflags

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// DefaultWaveGrace is how long, after a rollout starts, a request waits for the requests of
// earlier waves to arrive before it takes a slot ahead of them. Kratix re-runs every request of
// a Promise within seconds of its upgrade (about one a second, in an order of its own); two
// minutes covers a busy controller working through hundreds of requests, and is short enough
// that a canary whose workflow never runs holds the rollout back only briefly, and visibly.
const DefaultWaveGrace = 2 * time.Minute

// MaxWaveGrace bounds --wave-grace: past an hour, a missing canary is an incident, not a delay.
const MaxWaveGrace = time.Hour

// What --preflight does with a request unhealthy before its upgrade.
const (
	PreflightUpgrade = "upgrade"
	PreflightWait    = "wait"
)

// Acquire are acquire's flags.
type Acquire struct {
	Slot
	DefaultWave   int
	GateNew       bool
	ApprovalWaves []int
	WaveGrace     time.Duration
	AllowWindows  []string
	DenyWindows   []string
	NotBefore     string
	WaveSoak      time.Duration
	WaveSlotsFlag string
	Preflight     string
	// Read by Validate: the windows and scheduled start, and the caps per wave.
	Calendar  window.Calendar
	WaveSlots map[int]int
}

// Register defines acquire's flags on fs.
func (f *Acquire) Register(fs *pflag.FlagSet) {
	f.register(fs, "how long to wait for a slot before handing back to Kratix")
	fs.IntVar(&f.DefaultWave, "default-wave", 1,
		"wave of requests without a "+turnstile.WaveKey+" label or annotation (label canaries 0 to go first)")
	fs.IntSliceVar(&f.ApprovalWaves, "require-approval-waves", nil,
		"waves that wait for `kubectl turnstile approve PROMISE WAVE` before their first request goes")
	fs.DurationVar(&f.WaveGrace, "wave-grace", DefaultWaveGrace,
		"how long after a rollout starts to hold this request while requests of earlier waves (the canary) have not arrived; 0 orders only the requests waiting")
	fs.StringArrayVar(&f.AllowWindows, "allow-window", nil,
		`upgrades start only inside these windows: "CRON for DURATION [in ZONE]", e.g. "0 2 * * 1-5 for 4h in Europe/Berlin" (repeatable)`)
	fs.StringArrayVar(&f.DenyWindows, "deny-window", nil,
		`no upgrade starts inside these windows (freezes; deny wins over allow), written as --allow-window (repeatable)`)
	fs.StringVar(&f.NotBefore, "not-before", "", "no upgrade starts before this time (RFC 3339, e.g. 2026-12-24T02:00:00Z)")
	fs.DurationVar(&f.WaveSoak, "wave-soak", 0,
		"hold each wave until every request of the waves before it is done and the last of them was released this long ago (bake time); 0 for none")
	fs.StringVar(&f.WaveSlotsFlag, "wave-slots", "",
		`cap some waves lower than --slots, as WAVE=N pairs, e.g. "0=1" (the canary wave one at a time); while a capped wave has requests upgrading or in line, no later wave goes wider`)
	fs.StringVar(&f.Preflight, "preflight", PreflightUpgrade,
		"a request already unhealthy before its upgrade: "+PreflightUpgrade+" it anyway (a failure is reported as its own, and the gates leave it out), or "+PreflightWait+" until it is healthy")
	fs.BoolVar(&f.GateNew, "gate-new-requests", false,
		"make brand-new requests wait for a slot too (by default only upgrades of existing requests are gated)")
}

// Validate checks acquire's flags, naming the one that is wrong, and reads the windows and caps.
func (f *Acquire) Validate() error {
	if err := f.validate(); err != nil {
		return err
	}
	if err := IntIn("default-wave", f.DefaultWave, 0, rollout.MaxWave); err != nil {
		return err
	}
	if err := DurationIn("wave-grace", f.WaveGrace, 0, MaxWaveGrace); err != nil {
		return err
	}
	if err := DurationIn("wave-soak", f.WaveSoak, 0, window.MaxDuration); err != nil {
		return err
	}
	for _, w := range f.ApprovalWaves {
		if w < 0 || w > rollout.MaxWave {
			return fmt.Errorf("--require-approval-waves must list waves from 0 to %d, got %d", rollout.MaxWave, w)
		}
	}
	if f.Preflight != PreflightUpgrade && f.Preflight != PreflightWait {
		return fmt.Errorf("--preflight %q: want %s or %s", f.Preflight, PreflightUpgrade, PreflightWait)
	}
	var err error
	if f.WaveSlots, err = turnstile.ParseWaveSlots(f.WaveSlotsFlag); err != nil {
		return fmt.Errorf("--wave-slots: %w", err)
	}
	if f.Calendar.Allow, err = window.ParseAll(f.AllowWindows); err != nil {
		return fmt.Errorf("--allow-window: %w", err)
	}
	if f.Calendar.Deny, err = window.ParseAll(f.DenyWindows); err != nil {
		return fmt.Errorf("--deny-window: %w", err)
	}
	f.Calendar.NotBefore = time.Time{}
	if f.NotBefore != "" {
		if f.Calendar.NotBefore, err = time.Parse(time.RFC3339, f.NotBefore); err != nil {
			return fmt.Errorf("--not-before %q: want an RFC 3339 time, e.g. 2026-12-24T02:00:00Z", f.NotBefore)
		}
	}
	return nil
}

// Terms are what acquire records for the rollout when it is the first of its requests to
// arrive, with slots resolved for a Promise of n requests.
func (f *Acquire) Terms(n int) turnstile.Terms {
	return turnstile.Terms{ApprovalWaves: f.ApprovalWaves, Slots: f.Slots.Of(n), WaveSlots: f.WaveSlots}
}
