package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/bindings"
	"github.com/kratix-turnstile/turnstile/pkg/event"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// action is the shape of the commands that change a rollout: read the Promise, act, report.
func action(e *env, use, short, long string, args cobra.PositionalArgs,
	act func(ctx context.Context, c *clients, ts *turnstile.Turnstile, args []string, who string) (string, error)) *cobra.Command {
	return actionOn(e, use, short, long, args, func(ctx context.Context, c *clients, ts *turnstile.Turnstile, _ schema.GroupVersionResource, args []string, who string) (string, error) {
		return act(ctx, c, ts, args, who)
	})
}

// actionOn is action for commands that also need the API of the Promise's requests.
func actionOn(e *env, use, short, long string, args cobra.PositionalArgs,
	act func(ctx context.Context, c *clients, ts *turnstile.Turnstile, gvr schema.GroupVersionResource, args []string, who string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Long: long, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := e.clients()
			if err != nil {
				return err
			}
			gvr, _, err := requestsOf(ctx, c, args[0])
			if err != nil {
				return err
			}
			ts, err := e.turnstile(c, args[0])
			if err != nil {
				return err
			}
			msg, err := act(ctx, c, ts, gvr, args, operator(ctx, c))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
}

func newPauseCommand(e *env) *cobra.Command {
	var reason string
	var all bool
	cmd := action(e, "pause PROMISE | --all", "Grant no new slot (--all: for any Promise, stopping the line): upgrades under way finish, the rest wait",
		`pause stops the rollout handing out slots: requests already upgrading finish, every other
request waits, across Promise versions, until resume. Compare abort, which ends the rollout of
the current version for good.

pause --all stops the line: one platform-wide hold that every Promise's acquire in the slot
namespace honours (no new slots anywhere; upgrades under way finish), shown in every status,
until resume --all. For patching, DR exercises and incidents.`, nil,
		func(ctx context.Context, _ *clients, ts *turnstile.Turnstile, args []string, who string) (string, error) {
			if reason == "" {
				reason = "by " + who
			}
			return fmt.Sprintf("paused the rollout of %s: %s", args[0], reason), ts.Pause(ctx, reason, who)
		})
	cmd.Flags().StringVar(&reason, "reason", "", "why, shown to everyone waiting (default: by <you>)")
	return orAll(e, cmd, &all, func(ctx context.Context, ts *turnstile.Turnstile, who string) (string, error) {
		if reason == "" {
			reason = "by " + who
		}
		return fmt.Sprintf("held every rollout in %s: %s", ts.Namespace(), reason), ts.HoldAll(ctx, reason, who)
	})
}

func newResumeCommand(e *env) *cobra.Command {
	var all bool
	cmd := action(e, "resume PROMISE | --all", "Lift a pause (--all: the platform-wide hold): the rollout goes on from the next request in line", "", nil,
		func(ctx context.Context, _ *clients, ts *turnstile.Turnstile, args []string, who string) (string, error) {
			return fmt.Sprintf("resumed the rollout of %s", args[0]), ts.Resume(ctx, who)
		})
	return orAll(e, cmd, &all, func(ctx context.Context, ts *turnstile.Turnstile, who string) (string, error) {
		return fmt.Sprintf("lifted the platform-wide hold in %s", ts.Namespace()), ts.ReleaseHold(ctx, who)
	})
}

// orAll gives a command on one Promise an --all flag that acts on the platform-wide record
// instead, through act: with --all it takes no Promise, without it exactly one.
func orAll(e *env, cmd *cobra.Command, all *bool, act func(ctx context.Context, ts *turnstile.Turnstile, who string) (string, error)) *cobra.Command {
	one := cmd.RunE
	cmd.Flags().BoolVar(all, "all", false, "every Promise whose stages use the slot namespace: the platform-wide hold")
	cmd.Args = func(c *cobra.Command, args []string) error {
		if !*all {
			return cobra.ExactArgs(1)(c, args)
		}
		if len(args) > 0 {
			return fmt.Errorf("--all acts on every Promise: name none (got %q)", args[0])
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if !*all {
			return one(c, args)
		}
		ctx := c.Context()
		cl, err := e.clients()
		if err != nil {
			return err
		}
		ts, err := turnstile.Platform(turnstile.Config{Leases: cl.leases, Namespace: e.slotNamespace})
		if err != nil {
			return err
		}
		msg, err := act(ctx, ts, operator(ctx, cl))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.OutOrStdout(), msg)
		return nil
	}
	return cmd
}

func newAbortCommand(e *env) *cobra.Command {
	return action(e, "abort PROMISE", "End the rollout of the current version for good; upgraded requests stay",
		`abort ends the rollout of the Promise's current target version: no request gets a slot for it
again, upgrades under way finish, and requests already upgraded stay where they are. Unlike
pause, resume does not undo it: publishing a new Promise version starts a new rollout. To move
upgraded requests back, see rollback.`, cobra.ExactArgs(1),
		func(ctx context.Context, _ *clients, ts *turnstile.Turnstile, args []string, who string) (string, error) {
			v, err := ts.Abort(ctx, who)
			return fmt.Sprintf("aborted the rollout of %s to %s", args[0], v), err
		})
}

func newApproveCommand(e *env) *cobra.Command {
	return action(e, "approve PROMISE WAVE", "Let the next wave that waits for approval start", "", cobra.ExactArgs(2),
		func(ctx context.Context, _ *clients, ts *turnstile.Turnstile, args []string, who string) (string, error) {
			wave, err := strconv.Atoi(args[1])
			if err != nil || wave < 0 || wave > rollout.MaxWave {
				return "", fmt.Errorf("wave %q: want a whole number from 0 to %d", args[1], rollout.MaxWave)
			}
			return fmt.Sprintf("approved wave %d of %s", wave, args[0]), ts.Approve(ctx, wave, who)
		})
}

func newSkipCommand(e *env) *cobra.Command {
	var force bool
	cmd := actionOn(e, "skip PROMISE REQUEST", "Release a failed request's slot and mark it Skipped, so the rollout goes on",
		`skip gives up on one request's failed upgrade: it releases the request's slot, marks its status
Skipped, and records an Event with your name. REQUEST is NAME (in -n's namespace) or
NAMESPACE/NAME.`, cobra.ExactArgs(2),
		func(ctx context.Context, c *clients, ts *turnstile.Turnstile, gvr schema.GroupVersionResource, args []string, who string) (string, error) {
			key := args[1]
			if !strings.Contains(key, "/") {
				ns := e.requestNamespace()
				if ns == "" {
					ns = "default"
				}
				key = ns + "/" + key
			}
			return skip(ctx, c, ts, gvr, key, force, who)
		})
	cmd.Flags().BoolVar(&force, "force", false, "skip an upgrade that has not failed")
	return cmd
}

// skip releases the request's slot and marks its upgrade Skipped, naming the version it was
// upgrading to (the slot as it was before the release says which).
func skip(ctx context.Context, c *clients, ts *turnstile.Turnstile, gvr schema.GroupVersionResource, key string, force bool, who string) (string, error) {
	slot, err := ts.Skip(ctx, key, force)
	if err != nil {
		return "", err
	}
	named := slot.Version
	if named == "" {
		named = "an unrecorded version"
	}
	msg := fmt.Sprintf("upgrade to %s skipped by %s; %s released", named, who, slot.Name)
	if err := markSkipped(ctx, c, gvr, key, slot.Version, msg); err != nil {
		return "", err
	}
	return fmt.Sprintf("skipped %s's upgrade to %s: released %s", key, named, slot.Name), nil
}

// markSkipped writes Skipped into the request's status and records an Event naming the operator.
// The status carries the version, so that status shows the request Skipped in that rollout.
func markSkipped(ctx context.Context, c *clients, gvr schema.GroupVersionResource, key, version, msg string) error {
	ns, name, _ := strings.Cut(key, "/")
	st := rollout.Status{Phase: rollout.PhaseSkipped, Version: version, Since: time.Now(), Message: msg}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{rollout.StatusKey: st.Map()}})
	if err != nil {
		return fmt.Errorf("marking %s Skipped: %w", key, err)
	}
	obj, err := c.dynamic.Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("marking %s Skipped: %w", key, err)
	}
	ref := corev1.ObjectReference{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: ns, Name: name, UID: obj.GetUID()}
	return event.Recorder{Events: c.events, Component: "kubectl-turnstile"}.Record(ctx, ref, corev1.EventTypeWarning, "UpgradeSkipped", msg)
}

func newRollbackCommand(e *env) *cobra.Command {
	return actionOn(e, "rollback PROMISE", "Move the requests this rollout touched back to the previous version, through the turnstile",
		`rollback ends the rollout of the current version (as abort does) and, where Kratix has
ResourceBindings, moves the binding of every request this rollout touched back to the previous
version. Kratix re-runs those requests, and Turnstile takes them through the same turnstile and
gates, one at a time, as the rollout of the previous version. Where Kratix has no
ResourceBindings it explains what to do instead.`, cobra.ExactArgs(1),
		func(ctx context.Context, c *clients, ts *turnstile.Turnstile, gvr schema.GroupVersionResource, args []string, who string) (string, error) {
			return e.rollback(ctx, c, ts, gvr, args[0], who)
		})
}

func (e *env) rollback(ctx context.Context, c *clients, ts *turnstile.Turnstile, gvr schema.GroupVersionResource, promise, who string) (string, error) {
	view, err := ts.Inspect(ctx)
	if err != nil {
		return "", err
	}
	target, previous := view.Rollout.Target, view.Rollout.Previous
	list, ok, err := bindings.List(ctx, c.dynamic, promise, e.requestNamespace(), "")
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &exitError{code: 1, msg: fmt.Sprintf(
			"This Kratix has no ResourceBindings (they came with PromiseRevisions in later Kratix releases), so requests cannot be moved back one by one.\n"+
				"To roll back %s, apply %s of the Promise again: Kratix re-runs every request's workflow, and Turnstile takes them\n"+
				"through the same turnstile and health gates, one at a time, as a new rollout. Meanwhile, pause the rollout (kubectl turnstile pause %s)\n"+
				"to stop more requests from upgrading.", promise, orDefaultVersion(previous), promise)}
	}
	if target == "" || previous == "" {
		return "", fmt.Errorf("the rollout of %s has no previous version recorded to go back to", promise)
	}
	if view.Rollout.AbortedVersion != target {
		if _, err := ts.Abort(ctx, who); err != nil {
			return "", err
		}
	}
	requests, err := c.dynamic.Resource(gvr).Namespace(e.requestNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing the requests of %s: %w", promise, err)
	}
	touched := map[string]bool{}
	for _, u := range requests.Items {
		status, _ := u.Object["status"].(map[string]any)
		if st, _ := rollout.StatusFrom(status); st.Began(target) {
			touched[u.GetNamespace()+"/"+u.GetName()] = true
		}
	}
	var moved []string
	for _, b := range list {
		key := b.Namespace + "/" + b.Request
		if !touched[key] {
			continue
		}
		if err := bindings.RollBack(ctx, c.dynamic, b, previous, target); err != nil {
			return "", err
		}
		moved = append(moved, key)
	}
	if len(moved) == 0 {
		return fmt.Sprintf("aborted the rollout of %s to %s; no request had reached it", promise, target), nil
	}
	sort.Strings(moved)
	return fmt.Sprintf("aborted the rollout of %s to %s and moved %d request(s) back to %s, through the turnstile: %s",
		promise, target, len(moved), previous, strings.Join(moved, ", ")), nil
}

func orDefaultVersion(v string) string {
	if v == "" {
		return "the previous version"
	}
	return v
}
