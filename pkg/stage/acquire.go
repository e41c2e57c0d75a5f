package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

func newAcquireCommand() *command {
	f := &stageflags.Acquire{}
	cmd := newCommand("acquire", "Take a rollout slot for this resource request, or wait in line for one",
		`acquire runs as its own pipeline before the Promise's configure pipeline. It takes one
of the Promise's slots for the request, re-enters the slot the request already holds, or waits
in line. If it is still waiting after --wait, it asks Kratix to run it again after --retry-after
(workflow-control retryAfter) and exits 0. In a delete workflow it gives up the request's slot
and its place in line.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runAcquire(ctx, cmd, out, f) }
	f.Register(cmd.flags)
	return cmd
}

// abortedRetryAfter is how long a request of an aborted version waits between runs.
const abortedRetryAfter = time.Hour

func runAcquire(ctx context.Context, cmd *command, out io.Writer, f *stageflags.Acquire) error {
	r, err := setup(cmd.flags, out, "acquire", &f.Slot, f.Validate, &f.DefaultWave)
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
		return r.pipe.WriteRetryAfter(f.RetryAfter, msg)
	}
	target, err := r.targetVersion(ctx, f.Target)
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
	if !f.GateNew && rollout.FirstInstall(statusOf(r.object)) {
		r.out.printf("%s is new: its first install of %s goes straight through", req, target)
		// The rollout record still rolls forward, so that the version before this one is on
		// record to roll back to, even when every request so far was a first install. A first
		// install needs neither, so what fails here is said, not fatal.
		terms, err := r.terms(ctx, f, target)
		if err == nil {
			_, err = r.turn.RecordTarget(ctx, target, terms)
		}
		if err != nil {
			r.out.printf("could not record the rollout of %s: %s", target, program.OneLine(explain(err).Error()))
		}
		return r.write(report{Phase: rollout.PhaseUpgrading, Version: target, Since: start, Message: "new request: first install is not gated"})
	}

	baseline := r.baseline(target)
	held := false
	if baseline != "" && f.Preflight == stageflags.PreflightWait {
		// A request holding a slot (a failed upgrade rolling forward) keeps its place.
		if held, err = r.holdsOrLeaves(ctx); err != nil {
			return err
		}
	}
	if baseline != "" && f.Preflight == stageflags.PreflightWait && !held {
		msg := "waiting: unhealthy before its upgrade (" + baseline + "): it upgrades once healthy (--preflight=" + stageflags.PreflightWait + ")"
		r.out.printf("%s", msg)
		if f.Wait > 0 {
			if err := r.write(report{Phase: rollout.PhaseWaiting, Version: target, Since: start, Message: msg}); err != nil {
				return err
			}
			return r.pipe.WriteRetryAfter(f.RetryAfter, msg)
		}
		if err := r.publish(report{Phase: rollout.PhaseWaiting, Version: target, Since: start, Message: msg}); err != nil {
			r.out.printf("%s", program.OneLine(err.Error()))
		}
		if baseline, err = r.awaitHealthy(ctx, f.RetryAfter); err != nil {
			return err
		}
	}
	if baseline != "" {
		r.out.printf("%s was unhealthy before its upgrade (%s): a failure will say so, and the gates leave it out", req, baseline)
	}
	terms, err := r.terms(ctx, f, target)
	if err != nil {
		return err
	}
	var expected []turnstile.Expected
	if f.WaveGrace > 0 {
		if expected, err = r.expectedBefore(ctx, target, f.DefaultWave, f.GateNew); err != nil {
			return err
		}
	}
	r.out.printf("%s (wave %d) wants a slot for %s (in %s)", req, req.Wave, target, r.turn.Namespace())
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if f.Wait > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, f.Wait)
	}
	defer cancel()
	var published *turnstile.Wait
	grant, err := r.turn.Acquire(waitCtx, req, turnstile.AcquireOptions{Target: target, Terms: terms,
		Expected: expected, Grace: f.WaveGrace, Calendar: f.Calendar, WaveSoak: f.WaveSoak, Baseline: baseline, OnWait: func(w turnstile.Wait) {
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
				r.out.printf("%s", program.OneLine(err.Error()))
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
		retryAfter := f.RetryAfter
		if waiting.Wait.Aborted {
			// Asking every 30s for a slot that will never be granted only loads the platform:
			// a rollback or a new version changes the Promise, and Kratix re-runs it then.
			retryAfter = max(retryAfter, abortedRetryAfter)
		}
		if until := waiting.Wait.Until; !until.IsZero() {
			// A window or soak ends at a known time: come back then rather than every
			// --retry-after, but within half a lease, so the ticket stays alive and keeps the
			// request's place (and the canary's) for the moment it opens.
			retryAfter = max(retryAfter, min(until.Sub(r.clock.Now()).Truncate(time.Second)+time.Second, f.LeaseDuration/2))
		}
		r.out.printf("still waiting after %s: asking Kratix to retry in %s", f.Wait, retryAfter)
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

// baseline is the reading that shows the request unhealthy before its upgrade, from its own
// records of this Promise, as object.yaml had them when the pipeline began; "" if it is not. A
// request whose upgrade to target began already (a retry after a failure) has no before.
func (r *run) baseline(target string) string {
	if st, _ := rollout.StatusFrom(statusOf(r.object)); st.Began(target) {
		return ""
	}
	return health.UnhealthyNow(statusOf(r.object), r.env.Promise, string(r.request.UID), r.clock.Now())
}

// holdsOrLeaves says whether the request holds a slot; if not, it takes the request out of the
// queue, where a ticket it left in an earlier run would hold back those behind it while it
// waits to be healthy.
func (r *run) holdsOrLeaves(ctx context.Context) (bool, error) {
	view, err := r.turn.Inspect(ctx)
	if err != nil {
		return false, err
	}
	if _, held := view.HeldBy(r.request); held {
		return true, nil
	}
	if _, err := r.turn.LeaveQueue(ctx, r.request); err != nil {
		return false, err
	}
	return false, nil
}

// awaitHealthy blocks (--wait=0, --preflight=wait) until the request is no longer unhealthy,
// reading it again every interval, and returns its baseline then ("").
func (r *run) awaitHealthy(ctx context.Context, every time.Duration) (string, error) {
	for {
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s to be healthy before its upgrade: %w", r.request, ctx.Err())
		case <-r.clock.After(every):
		}
		u, err := r.dynamic.Resource(r.request.GroupVersionResource).Namespace(r.request.Namespace).Get(ctx, r.request.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("reading %s to see whether it is healthy yet: %w", r.request, err)
		}
		status, _ := u.Object["status"].(map[string]any)
		if b := health.UnhealthyNow(status, r.env.Promise, string(r.request.UID), r.clock.Now()); b == "" {
			r.out.printf("%s is healthy: it goes on to queue for its upgrade", r.request)
			return "", nil
		}
	}
}
