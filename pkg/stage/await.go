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
	requireProof     bool
}

func newAwaitCommand() *command {
	f := &awaitFlags{}
	cmd := newCommand("await", "Release the request's slot once it is freshly healthy; keep it if the upgrade fails",
		`await runs as the last pipeline. It reads the attempt (version, start, lease) from the slot
acquire took, watches the live request's status.healthStatus and releases the slot once the
request's own records (stamped with its Promise and uid) that are fresh (run after the attempt
began, for the target version) are healthy or ready, and have stayed so for --min-healthy.
After --failure-threshold unhealthy readings in a row, or no success by
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
	fs.BoolVar(&f.requireProof, "require-version-proof", false,
		"release only on records whose checks proved the new version answered (a check expecting ${version})")
	fs.IntVar(&f.defaultWave, "default-wave", 1, "wave of requests without a wave label (as acquire's --default-wave)")
	return cmd
}

func (f *awaitFlags) validate() error {
	if f.minHealthy < 0 {
		return fmt.Errorf("--min-healthy must not be negative, got %s", f.minHealthy)
	}
	for _, err := range []error{
		durationIn("min-healthy", f.minHealthy, 0, maxMinHealthy),
		intIn("failure-threshold", f.failureThreshold, 1, maxFailureThreshold),
		durationIn("progress-deadline", f.progressDeadline, minProgressDeadline, maxProgressDeadline),
		share("max-unhealthy-ratio", f.maxUnhealthy),
		share("max-failed-ratio", f.maxFailed),
		intIn("gate-min-sample", f.minSample, 1, maxGateMinSample),
		intIn("default-wave", f.defaultWave, 0, rollout.MaxWave),
	} {
		if err != nil {
			return err
		}
	}
	if f.wait > 0 && f.minHealthy >= f.wait {
		return fmt.Errorf("--min-healthy (%s) must be shorter than --wait (%s): a soak cannot span two runs", f.minHealthy, f.wait)
	}
	// await holds the slot across runs but renews it only while running: it must run again
	// well before the lease runs out, or another request takes the slot meanwhile.
	if f.wait > 0 && f.retryAfter > f.leaseDuration/2 {
		return fmt.Errorf("--retry-after (%s) must be at most half --lease-duration (%s): the slot would expire between runs", f.retryAfter, f.leaseDuration)
	}
	if _, err := labels.Parse(f.gateSelector); err != nil {
		return fmt.Errorf("--gate-selector %q: %w", f.gateSelector, err)
	}
	return nil
}

// awaiting is one await run's state.
type awaiting struct {
	*run
	flags *awaitFlags
	slot  turnstile.Slot
	held  bool
	// attempt is the one the slot was taken for: await renews, fails and releases only it.
	attempt turnstile.Attempt
	// lost says why the slot was found no longer held, when it was: never reported as held.
	lost string
	// live is the request's turnstile status as last seen on the live object.
	live    rollout.Status
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
		// The slot is the one record of the attempt: its version, start and lease duration
		// are what acquire took it for, whatever this stage's own flags say.
		a.attempt = a.slot.Attempt()
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
		st, _ := rollout.StatusFrom(statusOf(r.object))
		switch {
		case st.Version == a.target && st.Phase == rollout.PhaseSkipped:
			r.out.printf("%s: its upgrade to %s was skipped by an operator: nothing to verify", r.request, a.target)
			return nil
		case st.Version == a.target && st.Slot == "" && st.Began(a.target):
			// A request that went straight through (a first install) is verified the same
			// way, from when it passed acquire; so is each later run of that verification.
			a.since = st.Since
		case st.Version == a.target && st.Slot != "" && !hasSlot(view, st.Slot):
			return fmt.Errorf("%s: acquire took %s for %s, but there is no such Lease in %s: acquire and await must share --slot-namespace",
				r.request, st.Slot, a.target, r.turn.Namespace())
		case st.Version == a.target && st.Slot != "":
			// acquire took a slot and it is gone: reclaimed after its lease ran out, or skipped.
			// The slot's name stays in every status this attempt writes, so that a later run
			// knows it as lost too, not as one that never had a slot.
			a.since, a.slot = st.Since, turnstile.Slot{Name: st.Slot}
			a.slotLost(ctx, fmt.Sprintf("%s no longer holds %s, which acquire took for %s", r.request, st.Slot, a.target))
		default:
			return fmt.Errorf("%s holds no slot for %s: acquire never took one (its status says %s); acquire and await must share "+
				"--slot-namespace, and acquire's --wait must be 0 on a Kratix without workflow-control", r.request, a.target, describe(st))
		}
		if a.since.IsZero() {
			a.since = a.started
		}
	}
	a.gate = &health.Gate{MinHealthy: f.minHealthy, FailureThreshold: f.failureThreshold, Deadline: a.since.Add(f.progressDeadline)}
	// An earlier run of this same attempt handed back its count of bad readings in a row.
	if st, ok := rollout.StatusFrom(statusOf(r.object)); ok && st.Version == a.target && st.Since.Unix() == a.since.Unix() && st.Failures > 0 {
		a.gate.Restore(st.Failures, st.Reading)
	}
	a.fresh = health.Freshness{Promise: a.env.Promise, RequestUID: string(a.request.UID), Since: a.since, Version: a.target,
		RequireProof: f.requireProof}
	where := "holding no slot"
	if a.held {
		where = "holding " + a.slot.Name
	}
	r.out.printf("%s: verifying %s (%s): fresh since %s, soak %s", r.request, a.target, where, a.since.UTC().Format(time.RFC3339), f.minHealthy)
	// Renew at the start of every run: with retryAfter, a run may be too short for the ticker.
	if a.held && time.Since(a.slot.RenewTime) > a.slot.Duration/3 {
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
	// Within a run, a third of the slot's lease duration; across retryAfter runs, the renewal
	// at the start of each run keeps the slot well inside its lease.
	every := a.flags.leaseDuration / 3
	if a.held && a.slot.Duration >= turnstile.MinLeaseDuration {
		every = a.slot.Duration / 3 // a hand-edited Lease without a duration keeps the flag's
	}
	renew := time.NewTicker(every)
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
			a.live, _ = rollout.StatusFrom(status)
			if a.held && a.live.Phase == rollout.PhaseSkipped && a.live.Version == a.target {
				if err := a.renew(ctx); err != nil { // a skip released the slot: renewing says so
					return err
				}
			}
			if a.skipped() {
				a.out.printf("%s: its upgrade to %s was skipped by an operator: no longer verifying it", a.request, a.target)
				return nil
			}
			st, ok := health.StatusOf(status)
			now := time.Now()
			last = health.Observe(st, ok, a.fresh, now)
			verdict = a.gate.Observe(now, last)
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
			return a.handBack(ctx, verdict)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		recheck.Stop()
	}
}

// pass releases the slot: the upgrade is proved, and the next request may go. The gates are
// judged first, counting this request: a gate that trips pauses the rollout before the slot is
// free, so the request that tripped it is the last one through.
func (a *awaiting) pass(ctx context.Context, v health.Verdict) error {
	msg := fmt.Sprintf("upgraded to %s: %s", a.target, v.Message)
	// The request says it is upgraded before the next one can take the slot, so that its
	// status never shows two requests upgrading at once (status.yaml lands after the pipeline).
	if err := a.publish(report{Phase: rollout.PhaseUpgraded, Version: a.target, Since: time.Now(), Message: msg}); err != nil {
		a.out.printf("%s", oneLine(err.Error()))
	}
	a.judgeGates(ctx, rollout.PhaseUpgraded)
	if a.held {
		_, err := a.turn.Release(ctx, a.request, a.attempt)
		switch {
		case errors.Is(err, turnstile.ErrNotHeld) || errors.Is(err, turnstile.ErrOtherAttempt):
			a.slotLost(ctx, oneLine(err.Error()))
		case err != nil:
			return err
		default:
			msg += "; released " + a.slot.Name
		}
	}
	if a.lost != "" {
		msg += "; its slot was lost before it was verified (" + a.lost + ")"
	}
	a.out.printf("%s", msg)
	a.events.emit(ctx, corev1.EventTypeNormal, "Upgraded", msg)
	return a.write(report{Phase: rollout.PhaseUpgraded, Version: a.target, Since: time.Now(), Message: msg})
}

// slotLost says, loudly, that the attempt's slot is no longer held, and goes on verifying
// without it: the upgrade happened, but while others may have taken the slot it had, so
// more than the configured number may have been upgrading at once.
func (a *awaiting) slotLost(ctx context.Context, why string) {
	if a.lost != "" {
		return
	}
	a.held, a.lost = false, why
	if a.live.Phase == rollout.PhaseSkipped && a.live.Version == a.target {
		a.out.printf("%s: an operator skipped its upgrade to %s and released its slot", a.request, a.target)
		return
	}
	msg := why + ": its lease ran out or it was skipped, so another request may have upgraded beside it; verifying without a slot"
	a.out.printf("WARNING: %s", msg)
	a.events.emit(ctx, corev1.EventTypeWarning, "SlotLost", msg)
	// The status says so when this run hands back or ends: written now, it could overwrite the
	// Skipped that an operator's skip is about to write.
}

// refreshLive reads the request's live status afresh; a failed read keeps the last one seen.
func (a *awaiting) refreshLive(ctx context.Context) {
	live, err := a.dynamic.Resource(a.request.GroupVersionResource).Namespace(a.request.Namespace).Get(ctx, a.request.Name, metav1.GetOptions{})
	if err == nil {
		status, _ := live.Object["status"].(map[string]any)
		a.live, _ = rollout.StatusFrom(status)
	}
}

// skipped reports whether an operator skipped this attempt (kubectl turnstile skip): its slot
// is gone on purpose, and its status is theirs to keep.
func (a *awaiting) skipped() bool {
	return a.lost != "" && a.live.Phase == rollout.PhaseSkipped && a.live.Version == a.target
}

// fail marks the upgrade Failed and keeps the slot, so the rollout pauses visibly. The stage
// goes on watching: a request that recovers is still let through.
func (a *awaiting) fail(ctx context.Context, v health.Verdict) {
	a.failed = true
	msg := "upgrade to " + a.target + " failed: " + v.Message
	if a.held {
		_, err := a.turn.MarkFailed(ctx, a.request, a.attempt, msg)
		switch {
		case errors.Is(err, turnstile.ErrNotHeld) || errors.Is(err, turnstile.ErrOtherAttempt):
			a.refreshLive(ctx)
			a.slotLost(ctx, oneLine(err.Error()))
		case err != nil:
			a.out.printf("could not mark %s failed: %s", a.slot.Name, oneLine(err.Error()))
		}
	}
	if a.held {
		a.out.printf("%s; keeping %s, so the rollout pauses until this request recovers, is skipped or is deleted", msg, a.slot.Name)
	} else {
		a.out.printf("%s", msg)
	}
	if a.skipped() {
		return // the operator's Skipped stands
	}
	a.events.emit(ctx, corev1.EventTypeWarning, "UpgradeFailed", msg)
	if err := a.publish(report{Phase: rollout.PhaseFailed, Version: a.target, Slot: a.slot.Name, Since: time.Now(), Message: msg}); err != nil {
		a.out.printf("%s", oneLine(err.Error()))
	}
	a.judgeGates(ctx, rollout.PhaseFailed)
}

// handBack reports where verification stands and asks Kratix to run the pipeline again later.
func (a *awaiting) handBack(ctx context.Context, v health.Verdict) error {
	phase := rollout.PhaseVerifying
	if a.failed {
		phase = rollout.PhaseFailed
	}
	msg := v.Message
	// A skip may have released the slot since the last renewal: the status written here must
	// not undo it.
	a.refreshLive(ctx)
	if a.held {
		if err := a.renew(ctx); err != nil {
			return err
		}
	}
	if a.skipped() {
		a.out.printf("%s: its upgrade to %s was skipped by an operator: no longer verifying it", a.request, a.target)
		return nil
	}
	if a.lost != "" {
		msg += "; its slot was lost (" + a.lost + ")"
	}
	a.out.printf("still %s after %s: asking Kratix to retry in %s", phase, a.flags.wait, a.flags.retryAfter)
	failures, reading := a.gate.Failures()
	if err := a.write(report{Phase: phase, Version: a.target, Slot: a.slot.Name, Since: a.since, Message: msg,
		Failures: failures, Reading: reading}); err != nil {
		return err
	}
	return a.pipe.WriteRetryAfter(a.flags.retryAfter, v.Message)
}

// hasSlot reports whether the slot Lease of that name exists.
func hasSlot(v turnstile.View, name string) bool {
	for _, s := range v.Slots {
		if s.Name == name && s.Lease != nil {
			return true
		}
	}
	return false
}

// describe is a request's turnstile status in a few words, for errors.
func describe(st rollout.Status) string {
	if st.Phase == "" {
		return "nothing of the turnstile"
	}
	if st.Version == "" {
		return st.Phase + " for no version"
	}
	return st.Phase + " for " + st.Version
}

// statusOf is the request's status as object.yaml has it.
func statusOf(obj interface{ GetValue(string) (any, error) }) map[string]any {
	v, _ := obj.GetValue("status")
	m, _ := v.(map[string]any)
	return m
}

// renew keeps the slot from expiring. A slot that is no longer held for this attempt (an
// operator skipped the request, or it expired and was taken) is not an error, but it is said
// loudly: verification goes on, with nothing to release.
func (a *awaiting) renew(ctx context.Context) error {
	_, err := a.turn.Renew(ctx, a.request, a.attempt)
	if errors.Is(err, turnstile.ErrNotHeld) || errors.Is(err, turnstile.ErrOtherAttempt) {
		a.slotLost(ctx, oneLine(err.Error()))
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
