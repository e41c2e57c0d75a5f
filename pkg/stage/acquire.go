package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/window"
)

type acquireFlags struct {
	slotFlags
	defaultWave   int
	gateNew       bool
	approvalWaves []int
	waveGrace     time.Duration
	allowWindows  []string
	denyWindows   []string
	notBefore     string
	calendar      window.Calendar
	waveSoak      time.Duration
}

func newAcquireCommand() *command {
	f := &acquireFlags{}
	cmd := newCommand("acquire", "Take a rollout slot for this resource request, or wait in line for one",
		`acquire runs as its own pipeline before the Promise's configure pipeline. It takes one
of the Promise's slots for the request, re-enters the slot the request already holds, or waits
in line. If it is still waiting after --wait, it asks Kratix to run it again after --retry-after
(workflow-control retryAfter) and exits 0. In a delete workflow it gives up the request's slot
and its place in line.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runAcquire(ctx, cmd, out, f) }
	f.register(cmd.flags, "how long to wait for a slot before handing back to Kratix")
	cmd.flags.IntVar(&f.defaultWave, "default-wave", 1,
		"wave of requests without a "+turnstile.WaveKey+" label or annotation (label canaries 0 to go first)")
	cmd.flags.IntSliceVar(&f.approvalWaves, "require-approval-waves", nil,
		"waves that wait for `kubectl turnstile approve PROMISE WAVE` before their first request goes")
	cmd.flags.DurationVar(&f.waveGrace, "wave-grace", DefaultWaveGrace,
		"how long after a rollout starts to hold this request while requests of earlier waves (the canary) have not arrived; 0 orders only the requests waiting")
	cmd.flags.StringArrayVar(&f.allowWindows, "allow-window", nil,
		`upgrades start only inside these windows: "CRON for DURATION [in ZONE]", e.g. "0 2 * * 1-5 for 4h in Europe/Berlin" (repeatable)`)
	cmd.flags.StringArrayVar(&f.denyWindows, "deny-window", nil,
		`no upgrade starts inside these windows (freezes; deny wins over allow), written as --allow-window (repeatable)`)
	cmd.flags.StringVar(&f.notBefore, "not-before", "", "no upgrade starts before this time (RFC 3339, e.g. 2026-12-24T02:00:00Z)")
	cmd.flags.DurationVar(&f.waveSoak, "wave-soak", 0,
		"hold each wave until every request of the waves before it is done and the last of them was released this long ago (bake time); 0 for none")
	cmd.flags.BoolVar(&f.gateNew, "gate-new-requests", false,
		"make brand-new requests wait for a slot too (by default only upgrades of existing requests are gated)")
	return cmd
}

// parseCalendar checks the windows and the scheduled start, naming the flag that is wrong.
func (f *acquireFlags) parseCalendar() error {
	var err error
	if f.calendar.Allow, err = window.ParseAll(f.allowWindows); err != nil {
		return fmt.Errorf("--allow-window: %w", err)
	}
	if f.calendar.Deny, err = window.ParseAll(f.denyWindows); err != nil {
		return fmt.Errorf("--deny-window: %w", err)
	}
	if f.notBefore != "" {
		if f.calendar.NotBefore, err = time.Parse(time.RFC3339, f.notBefore); err != nil {
			return fmt.Errorf("--not-before %q: want an RFC 3339 time, e.g. 2026-12-24T02:00:00Z", f.notBefore)
		}
	}
	return nil
}

// abortedRetryAfter is how long a request of an aborted version waits between runs.
const abortedRetryAfter = time.Hour

func runAcquire(ctx context.Context, cmd *command, out io.Writer, f *acquireFlags) error {
	r, err := setup(cmd.flags, out, "acquire", &f.slotFlags, func() error {
		if err := intIn("default-wave", f.defaultWave, 0, rollout.MaxWave); err != nil {
			return err
		}
		if err := durationIn("wave-grace", f.waveGrace, 0, MaxWaveGrace); err != nil {
			return err
		}
		if err := durationIn("wave-soak", f.waveSoak, 0, window.MaxDuration); err != nil {
			return err
		}
		for _, w := range f.approvalWaves {
			if w < 0 || w > rollout.MaxWave {
				return fmt.Errorf("--require-approval-waves must list waves from 0 to %d, got %d", rollout.MaxWave, w)
			}
		}
		return f.parseCalendar()
	}, &f.defaultWave)
	if err != nil {
		return err
	}
	req := r.request
	if r.env.Action == "delete" {
		released, err := r.turn.Leave(ctx, req)
		if err != nil {
			return err
		}
		if released {
			r.out.printf("%s is being deleted: released its slot", req)
			r.events.emit(ctx, corev1.EventTypeNormal, "SlotReleased", "released the rollout slot: the request is being deleted")
		} else {
			r.out.printf("%s is being deleted: it held no slot", req)
		}
		return nil
	}
	if r.env.DryRun {
		r.out.printf("dry run for %s: no slot taken", req)
		return nil
	}
	if released, msg := r.releaseRollbackPin(ctx); released {
		// This run is at the pinned revision: hand back, so that none of its later pipelines
		// runs. Kratix runs the request again at once for the moved binding, at the new
		// version, through the turnstile; retryAfter is only the fallback.
		if err := r.write(report{Phase: rollout.PhaseWaiting, Since: r.clock.Now(), Message: msg}); err != nil {
			return err
		}
		return r.pipe.WriteRetryAfter(f.retryAfter, msg)
	}
	target, err := r.targetVersion(ctx, f.target)
	if err != nil {
		return err
	}
	if phase, _ := r.object.StatusField(rollout.StatusKey, "phase").(string); phase == rollout.PhaseUpgraded {
		if v, _ := r.object.StatusField(rollout.StatusKey, "version").(string); v == target {
			r.out.printf("%s is already upgraded to %s: no slot needed", req, target)
			return nil
		}
	}
	start := r.clock.Now()
	if !f.gateNew && r.object.StatusField("lastSuccessfulConfigureWorkflowTime") == nil && r.object.StatusField(rollout.StatusKey) == nil {
		r.out.printf("%s is new: its first install of %s goes straight through", req, target)
		// The rollout record still rolls forward, so that the version before this one is on
		// record to roll back to, even when every request so far was a first install.
		if _, err := r.turn.RecordTarget(ctx, target, f.approvalWaves); err != nil {
			r.out.printf("could not record the rollout of %s: %s", target, oneLine(err.Error()))
		}
		return r.write(report{Phase: rollout.PhaseUpgrading, Version: target, Since: start, Message: "new request: first install is not gated"})
	}

	var expected []turnstile.Expected
	if f.waveGrace > 0 {
		if expected, err = r.expectedBefore(ctx, target, f.defaultWave, f.gateNew); err != nil {
			return err
		}
	}
	r.out.printf("%s (wave %d) wants a slot for %s (%d slot(s) in %s)", req, req.Wave, target, f.slots, r.turn.Namespace())
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if f.wait > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, f.wait)
	}
	defer cancel()
	var published *turnstile.Wait
	grant, err := r.turn.Acquire(waitCtx, req, turnstile.AcquireOptions{Target: target, ApprovalWaves: f.approvalWaves,
		Expected: expected, Grace: f.waveGrace, Calendar: f.calendar, WaveSoak: f.waveSoak, OnWait: func(w turnstile.Wait) {
			r.out.printf("%s", w.Message())
			if published == nil {
				r.events.emit(ctx, corev1.EventTypeNormal, "WaitingForSlot", w.Message())
			} else if !w.Worth(*published) {
				return
			}
			// Kratix writes status.yaml only when the pipeline ends: a request waiting in the
			// queue shows its place live, or its status would still claim the old version.
			since := w.Arrival
			if since.IsZero() {
				since = start
			}
			if err := r.publish(report{Phase: rollout.PhaseWaiting, Version: target, Position: w.Position + 1, Since: since, Message: w.Message()}); err != nil {
				r.out.printf("%s", oneLine(err.Error()))
				return // the next change tries again
			}
			published = &w
		}})
	if errors.Is(err, turnstile.ErrRequestGone) {
		r.out.printf("%s is being deleted: it left the queue", req)
		return nil
	}
	var waiting *turnstile.WaitingError
	if errors.As(err, &waiting) && ctx.Err() == nil {
		msg := waiting.Wait.Message()
		retryAfter := f.retryAfter
		if waiting.Wait.Aborted {
			// Asking every 30s for a slot that will never be granted only loads the platform:
			// a rollback or a new version changes the Promise, and Kratix re-runs it then.
			retryAfter = max(retryAfter, abortedRetryAfter)
		}
		if until := waiting.Wait.Until; !until.IsZero() {
			// A window or soak ends at a known time: come back then rather than every
			// --retry-after, but within half a lease, so the ticket stays alive and keeps the
			// request's place (and the canary's) for the moment it opens.
			retryAfter = max(retryAfter, min(until.Sub(r.clock.Now()).Truncate(time.Second)+time.Second, f.leaseDuration/2))
		}
		r.out.printf("still waiting after %s: asking Kratix to retry in %s", f.wait, retryAfter)
		since := waiting.Wait.Arrival // when it joined the queue, not this retry
		if since.IsZero() {
			since = start
		}
		if err := r.write(report{Phase: rollout.PhaseWaiting, Version: target, Position: waiting.Wait.Position + 1, Since: since, Message: msg}); err != nil {
			return err
		}
		return r.pipe.WriteRetryAfter(retryAfter, msg)
	}
	if err != nil {
		return err
	}
	how := "took"
	if grant.Reentered {
		how = "re-entered"
	}
	msg := fmt.Sprintf("%s %s for %s after %s", how, grant.Slot.Name, target, grant.Waited.Round(time.Millisecond))
	r.out.printf("%s", msg)
	r.events.emit(ctx, corev1.EventTypeNormal, "SlotAcquired", msg)
	return r.write(report{Phase: rollout.PhaseUpgrading, Version: target, Slot: grant.Slot.Name, Since: grant.Slot.AcquireTime,
		Message: "upgrading to " + target})
}
