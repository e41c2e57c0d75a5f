package turnstile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Terms are what the first request of a rollout records for all of its requests, so that they
// agree however their pods were started: the waves that wait for approval, and how many may
// upgrade at once, overall (0: the Turnstile's Slots) and per wave.
type Terms struct {
	ApprovalWaves []int
	Slots         int
	WaveSlots     map[int]int
}

// RecordTarget notes on the rollout Lease that a rollout to target has begun, on terms, and
// returns the rollout record as it then stands. The first request of a new version writes it,
// as soon as it arrives (before it queues), so that approvals, slots, the canary's grace and
// status are right from the first second; everyone after finds it there and writes nothing. A
// pause stays across versions (it is the operator's to lift); an abort and approvals belong to
// the version they were given for.
func (t *Turnstile) RecordTarget(ctx context.Context, target string, terms Terms) (Rollout, error) {
	l, err := t.updateRollout(ctx, func(l *coordinationv1.Lease) error {
		a := l.Annotations
		if target == "" {
			return errUnchanged
		}
		if a[AnnotationTarget] == target {
			if _, ok := a[AnnotationSlots]; ok {
				return errUnchanged
			}
			// A record written before slots were recorded: the first request to find it
			// fills them in, so that every request of the rollout counts alike from then on.
			t.recordSlots(a, terms)
			return nil
		}
		// A request still on the version before this rollout's (a pipeline left over from it)
		// does not turn the rollout back; a rollback does, once the current version is aborted.
		if a[AnnotationPrevious] == target && a[AnnotationAborted] != a[AnnotationTarget] {
			return errUnchanged
		}
		if a[AnnotationTarget] != "" {
			a[AnnotationPrevious] = a[AnnotationTarget]
		}
		a[AnnotationTarget] = target
		a[AnnotationStarted] = t.cfg.Clock.Now().UTC().Format(time.RFC3339)
		a[AnnotationApprovalWaves] = FormatWaves(terms.ApprovalWaves)
		t.recordSlots(a, terms)
		delete(a, AnnotationApproved)
		return nil
	})
	if err != nil || l == nil {
		return Rollout{}, err
	}
	return rolloutFrom(l), nil
}

// recordSlots writes the terms' slot count (the Turnstile's when they name none) and caps.
func (t *Turnstile) recordSlots(a map[string]string, terms Terms) {
	a[AnnotationSlots] = strconv.Itoa(cmp.Or(terms.Slots, t.cfg.Slots))
	a[AnnotationWaveSlots] = FormatWaveSlots(terms.WaveSlots)
}

// Record reads the rollout record; an empty one when there is none yet.
func (t *Turnstile) Record(ctx context.Context) (Rollout, error) {
	l, err := t.leases.Get(ctx, RolloutName(t.cfg.Promise), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Rollout{}, nil
	case err != nil:
		return Rollout{}, t.writeError("reading the rollout of "+t.cfg.Promise, err)
	}
	return rolloutFrom(l), nil
}

// errUnchanged stops updateRollout without writing.
var errUnchanged = errors.New("unchanged")

// updateRollout applies change to the rollout Lease, creating it if needed, and retries on
// conflicts with a fresh read. A change returning an error writes nothing. It returns the Lease
// as written, or as read when change left it unchanged; nil when there is none.
func (t *Turnstile) updateRollout(ctx context.Context, change func(*coordinationv1.Lease) error) (*coordinationv1.Lease, error) {
	return t.updateRecord(ctx, RolloutName(t.cfg.Promise), t.labels(RoleRollout), t.own, "the rollout of "+t.cfg.Promise, change)
}

// updateRecord is updateRollout for any record Lease: name, with labels when it is created,
// and own to set its owner before each write.
func (t *Turnstile) updateRecord(ctx context.Context, name string, labels map[string]string, own func(*coordinationv1.Lease),
	what string, change func(*coordinationv1.Lease) error) (*coordinationv1.Lease, error) {
	for {
		l, err := t.leases.Get(ctx, name, metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		switch {
		case create:
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.cfg.Namespace, Labels: labels}}
		case err != nil:
			return nil, t.writeError("reading "+what, err)
		}
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		if err := change(l); errors.Is(err, errUnchanged) {
			if create {
				return nil, nil
			}
			return l, nil
		} else if err != nil {
			return nil, err
		}
		own(l)
		if create {
			l, err = t.leases.Create(ctx, l, metav1.CreateOptions{})
		} else {
			l, err = t.leases.Update(ctx, l, metav1.UpdateOptions{})
		}
		if isLostRace(err) {
			continue
		}
		if err != nil {
			return nil, t.writeError("updating "+what, err)
		}
		return l, nil
	}
}

func (t *Turnstile) changedBy(l *coordinationv1.Lease, by string) {
	l.Annotations[AnnotationBy] = by + " at " + t.cfg.Clock.Now().UTC().Format(time.RFC3339)
}

// Pause stops the rollout granting slots; upgrades under way finish. It stays paused, across
// versions, until Resume.
func (t *Turnstile) Pause(ctx context.Context, reason, by string) error {
	_, err := t.updateRollout(ctx, t.pausing(reason, by))
	return err
}

// Resume lifts a pause. It is an error to resume a rollout that is not paused.
func (t *Turnstile) Resume(ctx context.Context, by string) error {
	_, err := t.updateRollout(ctx, t.resuming(fmt.Errorf("the rollout of %s is not paused", t.cfg.Promise), by))
	return err
}

// pausing is the write of a pause, on the rollout record or the platform-wide hold.
func (t *Turnstile) pausing(reason, by string) func(*coordinationv1.Lease) error {
	return func(l *coordinationv1.Lease) error {
		l.Annotations[AnnotationPaused] = "true"
		l.Annotations[AnnotationPauseReason] = reason
		t.changedBy(l, by)
		return nil
	}
}

// resuming is the write that lifts a pause, or fails with notPaused when there is none.
func (t *Turnstile) resuming(notPaused error, by string) func(*coordinationv1.Lease) error {
	return func(l *coordinationv1.Lease) error {
		if l.Annotations[AnnotationPaused] != "true" {
			return notPaused
		}
		delete(l.Annotations, AnnotationPaused)
		delete(l.Annotations, AnnotationPauseReason)
		t.changedBy(l, by)
		return nil
	}
}

// Abort stops the rollout of the current target version for good: no more slots for it,
// upgrades under way finish, upgraded requests stay upgraded. Only a new version rolls out again.
func (t *Turnstile) Abort(ctx context.Context, by string) (string, error) {
	var version string
	_, err := t.updateRollout(ctx, func(l *coordinationv1.Lease) error {
		version = l.Annotations[AnnotationTarget]
		if version == "" {
			return fmt.Errorf("the Promise %s has no rollout under way to abort", t.cfg.Promise)
		}
		if l.Annotations[AnnotationAborted] == version {
			return fmt.Errorf("the rollout of %s to %s is already aborted", t.cfg.Promise, version)
		}
		l.Annotations[AnnotationAborted] = version
		t.changedBy(l, by)
		return nil
	})
	return version, err
}

// Approve lets a wave that waits for approval start. Only the next such wave can be approved.
func (t *Turnstile) Approve(ctx context.Context, wave int, by string) error {
	_, err := t.updateRollout(ctx, func(l *coordinationv1.Lease) error {
		r := rolloutFrom(l)
		if !slices.Contains(r.ApprovalWaves, wave) {
			return fmt.Errorf("wave %d of %s needs no approval (waves waiting for one: %s)", wave, t.cfg.Promise, orNone(FormatWaves(r.ApprovalWaves)))
		}
		if slices.Contains(r.Approved, wave) {
			return fmt.Errorf("wave %d of %s is already approved", wave, t.cfg.Promise)
		}
		for _, w := range r.ApprovalWaves {
			if w < wave && !slices.Contains(r.Approved, w) {
				return fmt.Errorf("wave %d is not next: approve wave %d first", wave, w)
			}
		}
		l.Annotations[AnnotationApproved] = FormatWaves(append(r.Approved, wave))
		t.changedBy(l, by)
		return nil
	})
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Skip releases the slot of a request whose upgrade failed, so the rollout goes on without it,
// and returns the slot as it was. key is namespace/name. Without force, only a Failed upgrade
// can be skipped: judged on the very read the release is written over, so an upgrade that
// recovered or started again meanwhile is never cleared by a skip meant for a failure.
func (t *Turnstile) Skip(ctx context.Context, key string, force bool) (Slot, error) {
	view, err := t.Inspect(ctx)
	if err != nil {
		return Slot{}, err
	}
	for _, s := range view.Slots {
		if !s.Held() || s.Request != key {
			continue
		}
		var skipped Slot
		_, err := t.updateHeld(ctx, s.holder(), Attempt{}, "skipping "+key, func(now Slot, l *coordinationv1.Lease) error {
			if now.Phase != PhaseFailed && !force {
				return fmt.Errorf("%s is %s, not Failed: only a failed upgrade is skipped (--force skips it anyway)", key, now.Phase)
			}
			skipped = now
			clearHolder(l, t.cfg.Clock.Now())
			return nil
		})
		if err != nil {
			return Slot{}, err
		}
		return skipped, nil
	}
	return Slot{}, fmt.Errorf("%s is not in the rollout of %s: it holds no slot", key, t.cfg.Promise)
}
