package stageflags

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// Slot are the flags every stage that touches slots shares.
type Slot struct {
	Namespace     string
	Slots         Count
	LeaseDuration time.Duration
	Target        string
	Wait          time.Duration
	RetryAfter    time.Duration
}

func (f *Slot) register(fs *pflag.FlagSet, waitHelp string) {
	f.Slots = Count{N: 1}
	fs.StringVar(&f.Namespace, "slot-namespace", turnstile.DefaultNamespace, "namespace of the slot Leases; it must exist")
	fs.Var(&f.Slots, "slots", "how many requests of the Promise may upgrade at once: a number, or a share of its requests (10% rounds down, to at least 1), counted when the rollout begins")
	fs.DurationVar(&f.LeaseDuration, "lease-duration", turnstile.DefaultLeaseDuration,
		"how long a slot stays held without renewal; must cover the Promise's configure pipeline ("+Span(turnstile.MinLeaseDuration, turnstile.MaxLeaseDuration)+")")
	fs.StringVar(&f.Target, "target-version", "",
		"the version being rolled out (default: the Promise's kratix.io/promise-version label, else a hash of its spec)")
	fs.DurationVar(&f.Wait, "wait", time.Minute, waitHelp+"; 0 waits for as long as it takes (for Kratix without workflow-control); at most "+FmtDuration(MaxWait))
	fs.DurationVar(&f.RetryAfter, "retry-after", 30*time.Second, "when --wait runs out, ask Kratix to run the pipeline again after this ("+Span(MinRetryAfter, MaxRetryAfter)+")")
}

func (f *Slot) validate() error {
	if f.Wait < 0 {
		return fmt.Errorf("--wait must not be negative, got %s", f.Wait)
	}
	if err := DurationIn("wait", f.Wait, 0, MaxWait); err != nil {
		return err
	}
	if err := DurationIn("retry-after", f.RetryAfter, MinRetryAfter, MaxRetryAfter); err != nil {
		return err
	}
	return DurationIn("lease-duration", f.LeaseDuration, turnstile.MinLeaseDuration, turnstile.MaxLeaseDuration)
}
