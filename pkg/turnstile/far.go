package turnstile

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// A waiter far back in the queue follows three Leases and a request, not the queue ahead of it:
// with every waiter watching the queue, each of an upgrade's writes reaches every waiter, which
// costs the apiserver O(N) events an upgrade and O(N²) a rollout. Far back, nothing but the
// queue moving (or the rollout's controls) can change what a waiter may do, and the queue moves
// in order: a ticket ahead leaves when its request takes a slot. So the waiter follows one
// ticket ahead of it, the marker, halfway to the front, and its request; it judges a pause or
// a hold on its last view; and it watches the queue ahead again once the marker is gone and it
// may be near, when the marker's request stops renewing it, on an abort, and after a lease (its
// status then learns of a failed upgrade that stopped the rollout). It renews its own ticket in
// place. It never takes a slot while far: it takes only on what decide makes of the queue ahead,
// as every waiter does, so the order and the count are what they were; only how soon a waiter
// far back hears of the queue moving changes.

// NearPlaces is how many places beyond the slots (and at least as many as there are slots) a
// waiter watches the queue ahead of it from: a waiter coming near lists it, which it has those
// handoffs' time to do before it can be next.
const NearPlaces = 8

// nearZone is how many places from the front a waiter watches the queue ahead of it with n slots.
func nearZone(n int) int { return n + max(n, NearPlaces) }

// marker picks, among the ahead tickets in front of a waiter, the one to follow: the one whose
// leaving halves the distance to the front but leaves at least near in front; ok is false when
// the waiter is near already.
func marker(ahead, near int) (index int, ok bool) {
	index = ahead - max(near, ahead/2) - 1
	return index, index >= 0
}

// ahead is the queue in front of req (its own ticket excluded), in the order it is served:
// tickets of an aborted version are never served, so they are not ahead of anyone.
func ahead(view View, req Request, now time.Time) []Ticket {
	q := view.Queue(now)
	i := slices.IndexFunc(q, func(t Ticket) bool { return t.Holder == req.Identity() })
	if i < 0 {
		return nil
	}
	aborted := view.Rollout.AbortedVersion
	return slices.DeleteFunc(q[:i], func(t Ticket) bool { return aborted != "" && t.Version == aborted })
}

// farWait is what a waiter far back in the queue knows while it follows only a marker.
type farWait struct {
	// ahead are the tickets in front of it when it last looked at everything, less those known
	// gone since.
	ahead []Ticket
	// near is how many places from the front it looks at everything again.
	near int
	// controls is the rollout record's and the hold's versions as last seen; terms what of
	// the record moves places (judged on the last view, a change of them is not).
	controls, terms string
	// last is the place it last reported.
	last Wait
	// refresh is when it looks at everything again regardless: when what blocks it lifts (a
	// window opening), and at the latest a lease after it went far, so that its status learns
	// of an upgrade that failed and stopped the rollout.
	refresh time.Time
	// renewAt is when its ticket is due a renewal; renew renews it in place, without looking at
	// everything, and says when the next is due (ok false: someone else wrote it since).
	renewAt time.Time
	renew   func(now time.Time) (next time.Time, ok bool, err error)
	// judge is what the waiter's last full view, with the controls as they are now, holds it
	// back with: a pause or a hold is reported without looking at everything again.
	judge func(controls View, now time.Time) Wait
	// report is told each new estimate of its place; gone says the waiter's request was deleted.
	report func(Wait)
	gone   func() bool
	// gvr is the kind of the requests, whose markers' requests are followed.
	gvr schema.GroupVersionResource
}

func controlsOf(v View) string { return v.Rollout.resourceVersion() + "/" + v.Hold.rv }

// termsOf is what of a rollout record changes the waiters' places or the slots they take from.
func termsOf(r Rollout) string {
	return fmt.Sprint(r.Target, r.Started, r.Slots, r.WaveSlots, r.TermsErr, r.AbortedVersion)
}

// far waits while the waiter is far from the front, and returns nil when it should watch the
// queue ahead of it again.
func (t *Turnstile) far(ctx context.Context, sig *signals, f farWait) error {
	controls, err := t.watch(ctx, sig, t.roleOptions(RoleRollout, RoleHold))
	if err != nil {
		return err
	}
	defer controls.stop()
	for {
		idx, ok := marker(len(f.ahead), f.near)
		if !ok {
			return nil
		}
		left, err := t.followMarker(ctx, sig, controls, &f, f.ahead[idx])
		if !left || err != nil {
			return err
		}
		f.ahead = f.ahead[idx+1:]
		f.last.Position = len(f.ahead)
		f.report(f.last)
	}
}

// followMarker watches the marker until it leaves the queue (left) or the waiter should look at
// everything again (not left), renewing the waiter's ticket when it is due. With a holder
// watcher, the marker's request is followed too: a deleted request's ticket may stay behind it.
func (t *Turnstile) followMarker(ctx context.Context, sig *signals, controls *leaseWatch, f *farWait, m Ticket) (left bool, err error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	w, err := t.watch(ctx, sig, metav1.ListOptions{LabelSelector: Selector(t.cfg.Promise).String(),
		FieldSelector: fields.OneTermEqualSelector("metadata.name", m.Name).String()})
	if err != nil {
		return false, err
	}
	var markerGone atomic.Bool
	if t.cfg.Holders != nil && m.UID != "" {
		namespace, name, _ := cache.SplitMetaNamespaceKey(m.Request)
		go t.cfg.Holders.Watch(ctx, f.gvr, namespace, name, m.UID, func(st HolderStatus) {
			if st.Gone || st.Deleting {
				markerGone.Store(true)
				sig.poke()
			}
		})
	}
	for {
		now := t.cfg.Clock.Now()
		if f.gone() || !now.Before(f.refresh) {
			return false, nil
		}
		if cv := NewView(t.cfg.Promise, 0, controls.leases()); controlsOf(cv) != f.controls {
			f.controls = controlsOf(cv)
			if termsOf(cv.Rollout) != f.terms {
				return false, nil // a new rollout, count or abort: the places move
			}
			judged := f.judge(cv, now)
			if judged.Blocked != f.last.Blocked || judged.Reason != f.last.Reason {
				f.last.Blocked, f.last.Reason, f.last.Until = judged.Blocked, judged.Reason, judged.Until
				f.report(f.last)
			}
		}
		if !now.Before(f.renewAt) {
			next, ok, err := f.renew(now)
			if err != nil || !ok {
				return false, err
			}
			f.renewAt = next
		}
		leases := w.leases()
		if len(leases) == 0 || markerGone.Load() {
			return true, nil
		}
		cur := ticketFrom(leases[0])
		if cur.UID != m.UID || !cur.Arrival.Equal(m.Arrival) || cur.Wave != m.Wave || cur.Version != m.Version {
			return true, nil // queued again, or for another wave or version: its place is not the one followed
		}
		if !cur.Live(now) {
			return false, nil // its request stopped renewing it: the queue decides past it
		}
		if err := sig.next(ctx, t.cfg.Clock, earliest(earliest(f.refresh, f.renewAt), cur.RenewTime.Add(cur.Duration))); err != nil {
			return false, err
		}
	}
}

// farFrom says whether the waiter, having decided on view at now (to look again at recheck, if
// not zero), may follow only a marker, and how. Not while it still expects an earlier wave's
// request to arrive: one that went through while it was far would leave no trace to see it by.
func (t *Turnstile) farFrom(ctx context.Context, view View, a *acquiring, now time.Time, n int, recheck time.Time, last Wait) (farWait, bool) {
	// As decide: past the grace it waits for them no longer.
	started := view.Rollout.Started
	expecting := len(a.expected) > 0 && a.opts.Grace > 0 && !started.IsZero() && now.Before(started.Add(a.opts.Grace))
	if expecting || a.mine == nil || a.mine.Version != a.opts.Target || a.mine.UID != a.req.UID {
		return farWait{}, false
	}
	near := nearZone(n)
	in := ahead(view, a.req, now)
	if _, ok := marker(len(in), near); !ok {
		return farWait{}, false
	}
	f := farWait{ahead: in, near: near, controls: controlsOf(view), terms: termsOf(view.Rollout), last: last, refresh: now.Add(t.cfg.LeaseDuration),
		renewAt: a.mine.RenewTime.Add(t.cfg.LeaseDuration / 3), gvr: a.req.GroupVersionResource}
	if last.Blocked && !recheck.IsZero() {
		f.refresh = earliest(f.refresh, recheck)
	}
	f.renew = func(now time.Time) (time.Time, bool, error) {
		tk, err := t.putTicket(ctx, a.req, a.opts.Target, *a.mine, true, now)
		if err != nil || tk == nil {
			return time.Time{}, false, err
		}
		a.mine = tk
		return tk.RenewTime.Add(t.cfg.LeaseDuration / 3), true, nil
	}
	f.judge = func(controls View, now time.Time) Wait {
		v := view
		v.Rollout, v.Hold = controls.Rollout, controls.Hold
		return decide(t.input(a, v, now, nil, false)).wait
	}
	return f, true
}
