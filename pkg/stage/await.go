package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/kube"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

type awaitFlags struct {
	slotFlags
	minHealthy       time.Duration
	failureThreshold int
	progressDeadline time.Duration
	gates            bool
	maxUnhealthy     float64
	maxFailed        float64
	minSample        int
	gateSelector     string
	defaultWave      int
}

func newAwaitCommand() *command {
	f := &awaitFlags{}
	cmd := newCommand("await", "Release the request's slot once it is freshly healthy; keep it if the upgrade fails",
		`await runs as the last pipeline. It watches the live request's status.healthStatus and
releases the request's slot once the state is healthy or ready, every health record is fresh (run
after the slot was taken, or stamped with the target version), and it has stayed so for
--min-healthy. After --failure-threshold unhealthy readings in a row, or no success by
--progress-deadline, it marks the upgrade Failed and keeps the slot: the rollout pauses, and the
request's status says why. A request that recovers is still let through.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runAwait(ctx, cmd, out, f) }
	f.register(cmd.flags, "how long to watch before handing back to Kratix")
	fs := cmd.flags
	fs.DurationVar(&f.minHealthy, "min-healthy", 30*time.Second, "how long the request must stay freshly healthy (reset by any blip)")
	fs.IntVar(&f.failureThreshold, "failure-threshold", 3, "unhealthy or degraded readings in a row that fail the upgrade")
	fs.DurationVar(&f.progressDeadline, "progress-deadline", 10*time.Minute, "fail the upgrade if it is not healthy this long after the slot was taken")
	fs.BoolVar(&f.gates, "gates", true, "pause the rollout when too many of this wave's upgrades go wrong")
	fs.Float64Var(&f.maxUnhealthy, "max-unhealthy-ratio", rollout.DefaultGates.MaxUnhealthy, "share of a wave's upgraded requests that may be unhealthy")
	fs.Float64Var(&f.maxFailed, "max-failed-ratio", rollout.DefaultGates.MaxFailed, "share of a wave's upgraded requests whose upgrade may fail")
	fs.IntVar(&f.minSample, "gate-min-sample", rollout.DefaultGates.MinSample, "upgraded requests a wave needs before a gate judges it")
	fs.StringVar(&f.gateSelector, "gate-selector", "", "judge the gates over the requests matching this label selector only (default: all the Promise's requests)")
	fs.IntVar(&f.defaultWave, "default-wave", 1, "wave of requests without a wave label (as acquire's --default-wave)")
	return cmd
}

func (f *awaitFlags) validate() error {
	switch {
	case f.minHealthy < 0:
		return fmt.Errorf("--min-healthy must not be negative, got %s", f.minHealthy)
	case f.failureThreshold < 1:
		return fmt.Errorf("--failure-threshold must be at least 1, got %d", f.failureThreshold)
	case f.progressDeadline <= 0:
		return fmt.Errorf("--progress-deadline must be positive, got %s", f.progressDeadline)
	case f.maxUnhealthy < 0 || f.maxUnhealthy > 1 || f.maxFailed < 0 || f.maxFailed > 1:
		return fmt.Errorf("--max-unhealthy-ratio and --max-failed-ratio are shares between 0 and 1, got %g and %g", f.maxUnhealthy, f.maxFailed)
	case f.minSample < 1:
		return fmt.Errorf("--gate-min-sample must be at least 1, got %d", f.minSample)
	}
	if f.wait > 0 && f.minHealthy >= f.wait {
		return fmt.Errorf("--min-healthy (%s) must be shorter than --wait (%s): a soak cannot span two runs", f.minHealthy, f.wait)
	}
	if _, err := labels.Parse(f.gateSelector); err != nil {
		return fmt.Errorf("--gate-selector %q: %w", f.gateSelector, err)
	}
	return nil
}

// awaiting is one await run's state.
type awaiting struct {
	*run
	flags   *awaitFlags
	slot    turnstile.Slot
	held    bool
	target  string
	since   time.Time
	gate    *health.Gate
	fresh   health.Freshness
	failed  bool
	started time.Time
}

func runAwait(ctx context.Context, cmd *command, out io.Writer, f *awaitFlags) error {
	r, err := setup(cmd.flags, out, "await", &f.slotFlags, f.validate, &f.defaultWave)
	if err != nil {
		return err
	}
	if r.env.Action == "delete" || r.env.DryRun {
		r.out.printf("nothing to await for %s (%s%s)", r.request, r.env.Action, map[bool]string{true: ", dry run"}[r.env.DryRun])
		return nil
	}
	a := &awaiting{run: r, flags: f, started: time.Now()}
	view, err := r.turn.Inspect(ctx)
	if err != nil {
		return err
	}
	a.slot, a.held = view.HeldBy(r.request)
	if a.held {
		a.target, a.since, a.failed = a.slot.Version, a.slot.AcquireTime, a.slot.Phase == turnstile.PhaseFailed
	}
	if a.target == "" {
		if a.target, err = r.targetVersion(ctx, f.target); err != nil {
			return err
		}
	}
	if !a.held {
		phase, _ := r.object.StatusField(rollout.StatusKey, "phase").(string)
		version, _ := r.object.StatusField(rollout.StatusKey, "version").(string)
		if phase == rollout.PhaseUpgraded && version == a.target {
			r.out.printf("%s is already upgraded to %s", r.request, a.target)
			return nil
		}
		// A request that went straight through (a first install) is verified the same way,
		// from when it passed acquire.
		sinceText, _ := r.object.StatusField(rollout.StatusKey, "since").(string)
		if a.since, err = time.Parse(time.RFC3339, sinceText); err != nil {
			a.since = a.started
		}
	}
	a.gate = &health.Gate{MinHealthy: f.minHealthy, FailureThreshold: f.failureThreshold, Deadline: a.since.Add(f.progressDeadline)}
	// An earlier run of this same attempt handed back its count of bad readings in a row.
	if st, ok := rollout.StatusFrom(statusOf(r.object)); ok && st.Version == a.target && st.Since.Unix() == a.since.Unix() && st.Failures > 0 {
		a.gate.Restore(st.Failures, st.Reading)
	}
	a.fresh = health.Freshness{Since: a.since, Version: a.target}
	where := "holding no slot"
	if a.held {
		where = "holding " + a.slot.Name
	}
	r.out.printf("%s: verifying %s (%s): fresh since %s, soak %s", r.request, a.target, where, a.since.UTC().Format(time.RFC3339), f.minHealthy)
	// Renew at the start of every run: with retryAfter, a run may be too short for the ticker.
	if a.held && time.Since(a.slot.RenewTime) > f.leaseDuration/3 {
		if err := a.renew(ctx); err != nil {
			return err
		}
	}
	return a.watch(ctx)
}

// watch follows the live request until the gate passes, the wait budget runs out, or ctx ends.
func (a *awaiting) watch(ctx context.Context) error {
	objects := a.dynamic.Resource(a.request.GroupVersionResource).Namespace(a.request.Namespace)
	budget := newTimer(a.flags.wait)
	// Within a run, a third of the lease duration; across retryAfter runs, the renewal at the
	// start of each run keeps the slot well inside its lease.
	renew := time.NewTicker(a.flags.leaseDuration / 3)
	defer renew.Stop()
	var (
		live     *unstructured.Unstructured
		events   watch.Interface
		last     health.Observation
		verdict  health.Verdict
		lastLine string
	)
	defer func() {
		if events != nil {
			events.Stop()
		}
	}()
	for {
		if events == nil {
			obj, err := objects.Get(ctx, a.request.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("reading %s: %w", a.request.Key(), err)
			}
			if events, err = kube.WatchObject(ctx, objects, a.request.Name, obj.GetResourceVersion()); err != nil {
				return err
			}
			live = obj
		}
		if live != nil {
			if live.GetUID() != a.request.UID {
				return fmt.Errorf("%s was deleted while its upgrade was being verified", a.request.Key())
			}
			status, _ := live.Object["status"].(map[string]any)
			st, ok := health.StatusOf(status)
			last = health.Observe(st, ok, a.fresh)
			verdict = a.gate.Observe(time.Now(), last)
			live = nil
		}
		if verdict.Message != lastLine {
			lastLine = verdict.Message
			a.out.printf("%s", verdict.Message)
		}
		if verdict.Passed {
			return a.pass(ctx, verdict)
		}
		if verdict.Failed && !a.failed {
			a.fail(ctx, verdict)
		}
		recheck := newTimer(time.Until(a.recheckAt(verdict)))
		select {
		case ev, ok := <-events.ResultChan():
			switch {
			case !ok:
				events.Stop()
				events = nil
				select { // the watch ended (history expired, or an error): read afresh shortly
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-time.After(time.Second):
				}
			case ev.Type == watch.Deleted:
				return fmt.Errorf("%s was deleted while its upgrade was being verified", a.request.Key())
			default:
				if u, isObj := ev.Object.(*unstructured.Unstructured); isObj {
					live = u
				}
			}
		case <-recheck.C:
			verdict = a.gate.At(time.Now(), last)
		case <-renew.C:
			if a.held {
				if err := a.renew(ctx); err != nil {
					return err
				}
			}
		case <-budget.C:
			return a.handBack(verdict)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		recheck.Stop()
	}
}

// pass releases the slot: the upgrade is proved, and the next request may go.
func (a *awaiting) pass(ctx context.Context, v health.Verdict) error {
	msg := fmt.Sprintf("upgraded to %s: %s", a.target, v.Message)
	// The request says it is upgraded before the next one can take the slot, so that its
	// status never shows two requests upgrading at once (status.yaml lands after the pipeline).
	if err := a.publish(report{Phase: rollout.PhaseUpgraded, Version: a.target, Since: time.Now(), Message: msg}); err != nil {
		a.out.printf("%s", oneLine(err.Error()))
	}
	if a.held {
		_, err := a.turn.Release(ctx, a.request)
		switch {
		case errors.Is(err, turnstile.ErrNotHeld):
			msg += "; its slot had already been released"
		case err != nil:
			return err
		default:
			msg += "; released " + a.slot.Name
		}
	}
	a.out.printf("%s", msg)
	a.events.emit(ctx, corev1.EventTypeNormal, "Upgraded", msg)
	a.judgeGates(ctx, rollout.PhaseUpgraded)
	return a.write(report{Phase: rollout.PhaseUpgraded, Version: a.target, Since: time.Now(), Message: msg})
}

// fail marks the upgrade Failed and keeps the slot, so the rollout pauses visibly. The stage
// goes on watching: a request that recovers is still let through.
func (a *awaiting) fail(ctx context.Context, v health.Verdict) {
	a.failed = true
	msg := "upgrade to " + a.target + " failed: " + v.Message
	if a.held {
		if _, err := a.turn.MarkFailed(ctx, a.request, msg); err != nil {
			a.out.printf("could not mark %s failed: %s", a.slot.Name, oneLine(err.Error()))
		}
		a.out.printf("%s; keeping %s, so the rollout pauses until this request recovers, is skipped or is deleted", msg, a.slot.Name)
	} else {
		a.out.printf("%s", msg)
	}
	a.events.emit(ctx, corev1.EventTypeWarning, "UpgradeFailed", msg)
	if err := a.publish(report{Phase: rollout.PhaseFailed, Version: a.target, Slot: a.slot.Name, Since: time.Now(), Message: msg}); err != nil {
		a.out.printf("%s", oneLine(err.Error()))
	}
	a.judgeGates(ctx, rollout.PhaseFailed)
}

// handBack reports where verification stands and asks Kratix to run the pipeline again later.
func (a *awaiting) handBack(v health.Verdict) error {
	phase := rollout.PhaseVerifying
	if a.failed {
		phase = rollout.PhaseFailed
	}
	a.out.printf("still %s after %s: asking Kratix to retry in %s", phase, a.flags.wait, a.flags.retryAfter)
	failures, reading := a.gate.Failures()
	if err := a.write(report{Phase: phase, Version: a.target, Slot: a.slot.Name, Since: a.since, Message: v.Message,
		Failures: failures, Reading: reading}); err != nil {
		return err
	}
	return a.pipe.WriteRetryAfter(a.flags.retryAfter, v.Message)
}

// statusOf is the request's status as object.yaml has it.
func statusOf(obj interface{ GetValue(string) (any, error) }) map[string]any {
	v, _ := obj.GetValue("status")
	m, _ := v.(map[string]any)
	return m
}

// renew keeps the slot from expiring. A slot that is no longer held (an operator skipped the
// request, or it expired) is not an error: verification goes on, with nothing to release.
func (a *awaiting) renew(ctx context.Context) error {
	_, err := a.turn.Renew(ctx, a.request)
	if errors.Is(err, turnstile.ErrNotHeld) {
		a.held = false
		a.out.printf("%s no longer holds %s (skipped, or reclaimed): verifying without it", a.request, a.slot.Name)
		return nil
	}
	return err
}

// recheckAt is when the verdict changes by itself: the soak ends, or the deadline passes.
func (a *awaiting) recheckAt(v health.Verdict) time.Time {
	if !v.PassAt.IsZero() {
		return v.PassAt
	}
	if !a.failed && time.Now().Before(a.gate.Deadline) {
		return a.gate.Deadline
	}
	return time.Time{}
}

// newTimer is a timer firing after d; d <= 0 means never.
func newTimer(d time.Duration) *time.Timer {
	if d <= 0 {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTimer(d)
}
