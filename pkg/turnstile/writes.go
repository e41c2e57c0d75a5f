package turnstile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ErrNotHeld is returned when a request holds no slot.
var ErrNotHeld = errors.New("holds no slot")

// isLostRace reports whether a compare-and-swap lost to another writer: the object changed
// (Conflict), was created (AlreadyExists), or was deleted (NotFound, an update of a Lease the
// watch still showed) since it was read. The loser decides again from what the watch brings.
func isLostRace(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || (apierrors.IsNotFound(err) && !isNamespaceNotFound(err))
}

func (t *Turnstile) labels(role string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelPromise: t.cfg.Promise, LabelRole: role}
}

// own makes the Promise, when known, the Lease's one owner.
func (t *Turnstile) own(l *coordinationv1.Lease) {
	if o := t.cfg.Owner; o != nil && (len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != o.UID) {
		l.OwnerReferences = []metav1.OwnerReference{*o}
	}
}

func (t *Turnstile) durationSeconds() *int32 {
	return ptr.To(int32(t.cfg.LeaseDuration / time.Second))
}

// stamp writes the request, as holder and renewed now, into a slot or ticket Lease.
func (t *Turnstile) stamp(l *coordinationv1.Lease, req Request, target string, now time.Time) {
	l.Spec.HolderIdentity = ptr.To(req.Identity())
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	l.Spec.LeaseDurationSeconds = t.durationSeconds()
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationUID] = string(req.UID)
	l.Annotations[AnnotationRequest] = req.Key()
	l.Annotations[AnnotationVersion] = target
	l.Annotations[AnnotationWave] = strconv.Itoa(req.Wave)
}

// take writes the request into a slot: a new holder, or the same one re-entering. Every write is
// a compare-and-swap; a lost race comes back as a Conflict or AlreadyExists error.
func (t *Turnstile) take(ctx context.Context, s Slot, req Request, target, baseline string, now time.Time, reenter bool) (Slot, error) {
	l := s.Lease
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: t.cfg.Namespace, Labels: t.labels(RoleSlot)}}
	} else {
		l = l.DeepCopy()
	}
	// A re-run of the same attempt keeps its start; a new version or a retry after failure
	// starts a new attempt, and fresh health is judged from then.
	sameAttempt := reenter && s.Phase != PhaseFailed && s.Version == target
	if !sameAttempt {
		l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
	}
	if !reenter {
		l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
	}
	t.stamp(l, req, target, now)
	// A new attempt records how the request stood before it; a retry of the same version after
	// a failure keeps what its first attempt recorded.
	switch {
	case sameAttempt || reenter && s.Version == target && baseline == "":
	case baseline != "":
		l.Annotations[AnnotationBaseline] = baseline
	default:
		delete(l.Annotations, AnnotationBaseline)
	}
	l.Annotations[AnnotationPhase] = PhaseUpgrading
	delete(l.Annotations, AnnotationMessage)

	t.own(l)
	var err error
	if s.Lease == nil {
		l, err = t.leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		l, err = t.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		return Slot{}, t.writeError("taking slot "+s.Name, err)
	}
	return slotFrom(t.cfg.Promise, s.Index, l), nil
}

// putTicket queues the request, or renews its place, and returns the ticket as written (nil if
// another writer got there first; the watch brings theirs). A ticket left by an earlier request
// of the same name (another uid) is taken over with a new arrival.
func (t *Turnstile) putTicket(ctx context.Context, req Request, target string, old Ticket, exists bool, now time.Time) (*Ticket, error) {
	var l *coordinationv1.Lease
	if exists {
		l = old.Lease.DeepCopy()
		if old.UID != req.UID {
			l.Spec.AcquireTime = &metav1.MicroTime{Time: now}
		}
	} else {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: TicketName(t.cfg.Promise, req), Namespace: t.cfg.Namespace, Labels: t.labels(RoleTicket)},
			Spec:       coordinationv1.LeaseSpec{AcquireTime: &metav1.MicroTime{Time: now}},
		}
	}
	t.stamp(l, req, target, now)
	t.own(l)
	if l.Labels == nil {
		l.Labels = t.labels(RoleTicket)
	}
	if key, ok := orderKey(req.Wave, l.Spec.AcquireTime.Time); ok {
		l.Labels[LabelOrder] = strconv.FormatInt(key, 10)
	} else {
		delete(l.Labels, LabelOrder)
	}
	var err error
	if exists {
		l, err = t.leases.Update(ctx, l, metav1.UpdateOptions{})
	} else {
		l, err = t.leases.Create(ctx, l, metav1.CreateOptions{})
	}
	if isLostRace(err) {
		return nil, nil
	}
	if err != nil {
		return nil, t.writeError("queueing in "+TicketName(t.cfg.Promise, req), err)
	}
	tk := ticketFrom(l)
	return &tk, nil
}

func (t *Turnstile) deleteTicket(ctx context.Context, tk Ticket) error {
	err := t.leases.Delete(ctx, tk.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &tk.Lease.UID}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return t.writeError("leaving the queue ("+tk.Name+")", err)
}

// writeError names what a failed write needs: a missing namespace, or a missing permission.
func (t *Turnstile) writeError(doing string, err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err) && isNamespaceNotFound(err):
		return fmt.Errorf("%s: slot namespace %q does not exist: %w", doing, t.cfg.Namespace, err)
	default:
		return fmt.Errorf("%s: %w", doing, err)
	}
}

func isNamespaceNotFound(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	return status.Status().Details.Kind == "namespaces"
}

// ErrOtherAttempt is returned when the request holds its slot for another attempt than the one
// named: a newer version, or a retry that began since. That attempt is not this caller's to
// renew, fail or release.
var ErrOtherAttempt = errors.New("holds its slot for another attempt")

// Attempt is one request's try at one version in a slot: which version, and since when (the
// slot's acquireTime). A re-run of the same attempt keeps both; a new version or a retry after
// a failure starts a new one. The zero Attempt stands for whichever the request holds.
type Attempt struct {
	Version string
	Began   time.Time
}

// Attempt is the attempt under way in the slot.
func (s Slot) Attempt() Attempt { return Attempt{Version: s.Version, Began: s.AcquireTime} }

func (a Attempt) matches(s Slot) bool {
	return a == Attempt{} || (a.Version == s.Version && a.Began.Equal(s.AcquireTime))
}

func (a Attempt) String() string {
	return fmt.Sprintf("%s since %s", a.Version, a.Began.UTC().Format(time.RFC3339))
}

// updateHeld applies change to the slot the request holds for the attempt, retrying on conflicts
// with a fresh read, and returns the slot as written. The precondition, change's error, is judged
// on the same read as the write it guards, so nothing that changed in between is overwritten.
func (t *Turnstile) updateHeld(ctx context.Context, req Request, at Attempt, doing string, change func(Slot, *coordinationv1.Lease) error) (Slot, error) {
	for {
		s, ok, err := t.heldBy(ctx, req)
		if err != nil {
			return Slot{}, err
		}
		if !ok {
			return Slot{}, fmt.Errorf("%s: %s %w", doing, req.Key(), ErrNotHeld)
		}
		if !at.matches(s) {
			return Slot{}, fmt.Errorf("%s: %s %w (%s, not %s)", doing, req.Key(), ErrOtherAttempt, s.Attempt(), at)
		}
		l := s.Lease.DeepCopy()
		if err := change(s, l); err != nil {
			return Slot{}, err
		}
		l, err = t.leases.Update(ctx, l, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return Slot{}, t.writeError(doing+" ("+s.Name+")", err)
		}
		return slotFrom(t.cfg.Promise, s.Index, l), nil
	}
}

// heldBy reads the slot req holds, if any. It reads the slots in force (the rollout record's
// count, else the turnstile's, at most scannedSlots) one by one first: a read of one Lease goes
// to etcd and takes about a millisecond, where a consistent list of the Promise's Leases carries
// its whole queue and waits for the apiserver's watch cache to catch up (up to a tenth of a
// second, on every release). A list of the slots alone finds one beyond them, held since a
// larger count was in force, or says none is held: it carries the slots, never the queue.
func (t *Turnstile) heldBy(ctx context.Context, req Request) (Slot, bool, error) {
	n := t.cfg.Slots
	if l, err := t.leases.Get(ctx, RolloutName(t.cfg.Promise), metav1.GetOptions{}); err == nil {
		if recorded, _, err := termsFrom(l.Annotations); err == nil {
			n = max(n, recorded)
		}
	}
	for i := range min(n, scannedSlots) {
		l, err := t.leases.Get(ctx, SlotName(t.cfg.Promise, i), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return Slot{}, false, t.writeError("reading "+SlotName(t.cfg.Promise, i), err)
		}
		if s := slotFrom(t.cfg.Promise, i, l); s.heldBy(req) {
			return s, true, nil
		}
	}
	view, err := t.list(ctx, t.roleOptions(RoleSlot))
	if err != nil {
		return Slot{}, false, err
	}
	s, ok := view.HeldBy(req)
	return s, ok, nil
}

// scannedSlots bounds the slots heldBy reads one by one before it lists them all.
const scannedSlots = 16

// Release frees the slot the request holds for the attempt, for the next waiter, and takes the
// request out of the queue if a ticket of its was left there.
func (t *Turnstile) Release(ctx context.Context, req Request, at Attempt) (Slot, error) {
	now := t.cfg.Clock.Now()
	s, err := t.updateHeld(ctx, req, at, "releasing the slot", func(_ Slot, l *coordinationv1.Lease) error {
		clearHolder(l, now)
		return nil
	})
	if err != nil {
		return s, err
	}
	// The slot is free whatever comes of this: a ticket that cannot go now only expires.
	_, _ = t.LeaveQueue(ctx, req)
	return s, nil
}

// LeaveQueue deletes the request's ticket, if there is one of this request (its uid), and
// reports whether there was.
func (t *Turnstile) LeaveQueue(ctx context.Context, req Request) (bool, error) {
	l, err := t.leases.Get(ctx, TicketName(t.cfg.Promise, req), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, t.writeError("reading the ticket of "+req.Key(), err)
	}
	if tk := ticketFrom(l); tk.UID == req.UID || req.UID == "" {
		return true, t.deleteTicket(ctx, tk)
	}
	return false, nil
}

// clearHolder empties a slot Lease for the next holder.
func clearHolder(l *coordinationv1.Lease, now time.Time) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationReleasedWave] = l.Annotations[AnnotationWave]
	l.Annotations[AnnotationReleasedVersion] = l.Annotations[AnnotationVersion]
	l.Annotations[AnnotationReleasedAt] = now.UTC().Format(time.RFC3339Nano)
	l.Spec.HolderIdentity = nil
	l.Spec.AcquireTime = nil
	l.Spec.RenewTime = &metav1.MicroTime{Time: now}
	for _, k := range []string{AnnotationUID, AnnotationRequest, AnnotationVersion, AnnotationPhase, AnnotationMessage, AnnotationWave, AnnotationFailedAt, AnnotationBaseline} {
		delete(l.Annotations, k)
	}
}

// Renew records that the holder is still at work on the attempt, so its slot does not expire.
func (t *Turnstile) Renew(ctx context.Context, req Request, at Attempt) (Slot, error) {
	now := t.cfg.Clock.Now()
	return t.updateHeld(ctx, req, at, "renewing the slot", func(_ Slot, l *coordinationv1.Lease) error {
		l.Spec.RenewTime = &metav1.MicroTime{Time: now}
		return nil
	})
}

// MarkFailed records that the holder's attempt failed. The slot is kept, so the rollout pauses
// until the request recovers, is skipped, or is deleted.
func (t *Turnstile) MarkFailed(ctx context.Context, req Request, at Attempt, message string) (Slot, error) {
	now := t.cfg.Clock.Now()
	return t.updateHeld(ctx, req, at, "marking the upgrade failed", func(_ Slot, l *coordinationv1.Lease) error {
		l.Spec.RenewTime = &metav1.MicroTime{Time: now}
		l.Annotations[AnnotationPhase] = PhaseFailed
		l.Annotations[AnnotationMessage] = message
		l.Annotations[AnnotationFailedAt] = now.UTC().Format(time.RFC3339Nano)
		return nil
	})
}

// markWorkflowFailed marks a slot whose holder's Kratix workflow failed, so operators see why
// the rollout stopped. Losing the race is fine: whoever won wrote the same or newer news.
func (t *Turnstile) markWorkflowFailed(ctx context.Context, s Slot, reason string) {
	l := s.Lease.DeepCopy()
	l.Annotations[AnnotationPhase] = PhaseFailed
	l.Annotations[AnnotationMessage] = "configure workflow failed: " + reason
	l.Annotations[AnnotationFailedAt] = t.cfg.Clock.Now().UTC().Format(time.RFC3339Nano)
	_, _ = t.leases.Update(ctx, l, metav1.UpdateOptions{})
}

// Leave takes the request out of the turnstile: releases its slot and deletes its ticket. It is
// what a delete workflow does.
func (t *Turnstile) Leave(ctx context.Context, req Request) (released bool, err error) {
	if _, err := t.LeaveQueue(ctx, req); err != nil {
		return false, err
	}
	if _, err := t.Release(ctx, req, Attempt{}); errors.Is(err, ErrNotHeld) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}
