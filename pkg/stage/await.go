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
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

func newAwaitCommand() *command {
	f := &stageflags.Await{}
	cmd := newCommand("await", "Release the request's slot once it is freshly healthy; keep it if the upgrade fails",
		`await runs as the last pipeline. It reads the attempt (version, start, lease) from the slot
acquire took, watches the live request's status.healthStatus and releases the slot once the
request's own records (stamped with its Promise and uid) that are fresh (run after the attempt
began, for the target version) are healthy or ready, and have stayed so for --min-healthy.
After --failure-threshold unhealthy readings in a row, or no success by
--progress-deadline, it marks the upgrade Failed and keeps the slot: the rollout pauses, and the
request's status says why. A request that recovers is still let through.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runAwait(ctx, cmd, out, f) }
	f.Register(cmd.flags)
	return cmd
}

// awaiting is one await run: the verification machine (turnstile.BeginAwait) and what carrying
// out its actions needs. Every decision of time and verdict is the machine's; this reads, writes
// and waits.
type awaiting struct {
	*run
	flags  *stageflags.Await
	target string
	m      turnstile.Await
	// slots and requests are what the machine's actions write and read: the request's slot (the
	// turnstile), and the request itself.
	slots    slotWriter
	requests requestReader
}

// slotWriter is what carrying out the await machine's actions does to the request's slot.
type slotWriter interface {
	Renew(ctx context.Context, req turnstile.Request, at turnstile.Attempt) (turnstile.Slot, error)
	Release(ctx context.Context, req turnstile.Request, at turnstile.Attempt) (turnstile.Slot, error)
	MarkFailed(ctx context.Context, req turnstile.Request, at turnstile.Attempt, message string) (turnstile.Slot, error)
}

// requestReader reads the live request, by name in its namespace.
type requestReader interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error)
}

func runAwait(ctx context.Context, cmd *command, out io.Writer, f *stageflags.Await) error {
	r, err := setup(cmd.flags, out, "await", &f.Slot, f.Validate, &f.DefaultWave)
	if err != nil {
		return err
	}
	if r.env.Action == "delete" || r.env.DryRun {
		r.out.printf("nothing to await for %s (%s%s)", r.request, r.env.Action, map[bool]string{true: ", dry run"}[r.env.DryRun])
		return nil
	}
	view, err := r.turn.Inspect(ctx)
	if err != nil {
		return err
	}
	a := &awaiting{run: r, flags: f, slots: r.turn,
		requests: r.dynamic.Resource(r.request.GroupVersionResource).Namespace(r.request.Namespace)}
	// The slot names the version it was taken for: the pipeline's own is read only without one.
	if s, held := view.HeldBy(r.request); held {
		a.target = s.Version
	}
	if a.target == "" {
		if a.target, err = r.targetVersion(ctx, f.Target); err != nil {
			return err
		}
	}
	st, _ := rollout.StatusFrom(statusOf(r.object))
	m, acts, err := turnstile.BeginAwait(turnstile.AwaitConfig{Promise: r.env.Promise, Namespace: r.turn.Namespace(),
		MinHealthy: f.MinHealthy, FailureThreshold: f.FailureThreshold, ProgressDeadline: f.ProgressDeadline,
		RequireProof: f.RequireProof, Wait: f.Wait, LeaseDuration: f.LeaseDuration},
		turnstile.AwaitStart{Request: r.request, View: view, Target: a.target, Status: st}, r.clock.Now())
	if err != nil {
		return err
	}
	a.m = m
	if over, err := a.carry(ctx, acts); over || err != nil {
		return err
	}
	return a.watch(ctx)
}

// watch follows the live request, feeding the machine each reading and its ticks, until the
// run is over or ctx ends.
func (a *awaiting) watch(ctx context.Context) error {
	objects := a.dynamic.Resource(a.request.GroupVersionResource).Namespace(a.request.Namespace)
	var events watch.Interface
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
			if events, err = apiclient.WatchObject(ctx, objects, a.request.Name, obj.GetResourceVersion()); err != nil {
				return err
			}
			if over, err := a.see(ctx, obj); over || err != nil {
				return err
			}
		}
		tick, stop := a.nextTick()
		var (
			over bool
			err  error
		)
		select {
		case ev, ok := <-events.ResultChan():
			switch {
			case !ok:
				events.Stop()
				events = nil
				select { // the watch ended (history expired, or an error): read afresh shortly
				case <-ctx.Done():
					err = context.Cause(ctx)
				case <-a.clock.After(time.Second):
				}
			case ev.Type == watch.Deleted:
				err = fmt.Errorf("%s was deleted while its upgrade was being verified", a.request.Key())
			default:
				if u, isObj := ev.Object.(*unstructured.Unstructured); isObj {
					over, err = a.see(ctx, u)
				}
			}
		case <-tick:
			over, err = a.feed(ctx, turnstile.AwaitEvent{On: turnstile.OnTick})
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		stop()
		if over || err != nil {
			return err
		}
	}
}

// nextTick fires when the machine next wants a tick; never when it wants none.
func (a *awaiting) nextTick() (<-chan time.Time, func()) {
	at := a.m.Next()
	if at.IsZero() {
		return nil, func() {}
	}
	wait := at.Sub(a.clock.Now())
	if wait <= 0 {
		// Due already: a fake clock's timer would not fire until the clock moved.
		due := make(chan time.Time, 1)
		due <- at
		return due, func() {}
	}
	t := a.clock.NewTimer(wait)
	return t.C(), func() { t.Stop() }
}

// see feeds the machine a reading of the live request.
func (a *awaiting) see(ctx context.Context, live *unstructured.Unstructured) (over bool, err error) {
	if live.GetUID() != a.request.UID {
		return true, fmt.Errorf("%s was deleted while its upgrade was being verified", a.request.Key())
	}
	status, _ := live.Object["status"].(map[string]any)
	st, _ := rollout.StatusFrom(status)
	hs, _ := health.StatusOf(status)
	return a.feed(ctx, turnstile.AwaitEvent{On: turnstile.OnReading, Live: st, Health: hs})
}

// feed steps the machine with ev at the clock's now, and carries out what it says.
func (a *awaiting) feed(ctx context.Context, ev turnstile.AwaitEvent) (over bool, err error) {
	var acts []turnstile.AwaitAction
	a.m, acts = a.m.Step(ev, a.clock.Now())
	return a.carry(ctx, acts)
}

// carry carries out the machine's actions in order. The last may be a slot write or a read,
// whose outcome the machine takes next, and so on until it asks for nothing more.
func (a *awaiting) carry(ctx context.Context, acts []turnstile.AwaitAction) (over bool, err error) {
	for len(acts) > 0 {
		var outcome *turnstile.AwaitEvent
		for i, act := range acts {
			if outcome, over, err = a.do(ctx, act); over || err != nil {
				return over, err
			}
			if outcome != nil && i < len(acts)-1 {
				// The machine would take the next outcome for this one's: never carry on past it.
				return true, fmt.Errorf("verifying %s: action %d of %d has an outcome but is not the last", a.request.Key(), i+1, len(acts))
			}
		}
		if outcome == nil {
			return false, nil
		}
		a.m, acts = a.m.Step(*outcome, a.clock.Now())
	}
	return false, nil
}

// do carries out one action: its outcome, for a slot write or a read; over when the run is.
func (a *awaiting) do(ctx context.Context, act turnstile.AwaitAction) (*turnstile.AwaitEvent, bool, error) {
	switch act.Do {
	case turnstile.DoSay:
		a.out.printf("%s", act.Line)
	case turnstile.DoWarn:
		a.events.emit(ctx, corev1.EventTypeWarning, act.Reason, act.Line)
	case turnstile.DoNote:
		a.events.emit(ctx, corev1.EventTypeNormal, act.Reason, act.Line)
	case turnstile.DoPublish:
		if err := a.publish(act.Status); err != nil {
			a.out.printf("%s", program.OneLine(err.Error()))
		}
	case turnstile.DoJudgeGates:
		a.judgeGates(ctx, act.Status.Phase)
	case turnstile.DoRenew:
		_, err := a.slots.Renew(ctx, a.request, act.Attempt)
		outcome, err := written(err)
		return outcome, false, err
	case turnstile.DoRelease:
		_, err := a.slots.Release(ctx, a.request, act.Attempt)
		outcome, err := written(err)
		return outcome, false, err
	case turnstile.DoMarkFailed:
		_, err := a.slots.MarkFailed(ctx, a.request, act.Attempt, act.Line)
		outcome, err := written(err)
		if err != nil {
			a.out.printf("could not mark %s failed: %s", act.Slot, program.OneLine(err.Error()))
		}
		return outcome, false, nil
	case turnstile.DoRefresh:
		// A failed read keeps the status last seen.
		live, err := a.requests.Get(ctx, a.request.Name, metav1.GetOptions{})
		if err != nil {
			return &turnstile.AwaitEvent{On: turnstile.OnDone}, false, nil
		}
		status, _ := live.Object["status"].(map[string]any)
		st, _ := rollout.StatusFrom(status)
		return &turnstile.AwaitEvent{On: turnstile.OnRefreshed, Live: st}, false, nil
	case turnstile.DoHandBack:
		a.out.printf("still %s after %s: asking Kratix to retry in %s", act.Status.Phase, a.flags.Wait, a.flags.RetryAfter)
		if err := a.write(act.Status); err != nil {
			return nil, true, err
		}
		return nil, true, a.pipe.WriteRetryAfter(a.flags.RetryAfter, act.Line)
	case turnstile.DoFinish:
		return nil, true, a.write(act.Status)
	case turnstile.DoStop:
		return nil, true, nil
	}
	return nil, false, nil
}

// written is the outcome of a slot write. A slot no longer held for the attempt (an operator
// skipped the request, or it expired and was taken) is not an error: the machine hears of it.
func written(err error) (*turnstile.AwaitEvent, error) {
	if errors.Is(err, turnstile.ErrNotHeld) || errors.Is(err, turnstile.ErrOtherAttempt) {
		return &turnstile.AwaitEvent{On: turnstile.OnLost, Why: program.OneLine(err.Error())}, nil
	}
	return &turnstile.AwaitEvent{On: turnstile.OnDone}, err
}

// statusOf is the request's status as object.yaml has it.
func statusOf(obj interface{ GetValue(string) (any, error) }) map[string]any {
	v, _ := obj.GetValue("status")
	m, _ := v.(map[string]any)
	return m
}
