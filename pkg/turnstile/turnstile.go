package turnstile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/clock"
)

// DefaultNamespace is where slot Leases live unless configured otherwise.
const DefaultNamespace = "kratix-platform-system"

// DefaultLeaseDuration is how long a slot or ticket stays valid without renewal. It must cover
// the gap between the acquire and await stages, that is the Promise's own configure pipeline,
// and the retryAfter interval of stages that exit while they wait.
const DefaultLeaseDuration = 10 * time.Minute

// Config configures a Turnstile.
type Config struct {
	// Leases reads and writes the slot, ticket and rollout Leases. Required.
	Leases coordinationv1client.LeasesGetter
	// Holders follows the requests that hold slots, so that a deleted holder's slot is
	// reclaimed at once and a holder whose workflow failed keeps it. Optional: without it,
	// such slots are reclaimed only when they expire.
	Holders HolderWatcher
	// Namespace is the slot namespace. Defaults to DefaultNamespace.
	Namespace string
	// Promise names the turnstile: one per Promise. Required; a DNS label.
	Promise string
	// Slots is how many requests may upgrade at once. Defaults to 1; must be at least 1.
	Slots int
	// LeaseDuration is how long a slot or ticket stays valid without renewal. Holders and
	// blocking waiters renew at a third of it. Defaults to DefaultLeaseDuration; at least 3s.
	LeaseDuration time.Duration
	// Clock is the source of time, injectable for tests. Defaults to the real clock.
	Clock clock.WithTicker
}

// Turnstile is one Promise's set of slots and its queue.
type Turnstile struct {
	cfg    Config
	leases coordinationv1client.LeaseInterface
}

// New validates the configuration and returns a Turnstile.
func New(cfg Config) (*Turnstile, error) {
	if cfg.Leases == nil {
		return nil, errors.New("turnstile: a Leases client is required")
	}
	if errs := validation.IsDNS1123Label(cfg.Promise); len(errs) > 0 {
		return nil, fmt.Errorf("turnstile: promise name %q: %s", cfg.Promise, errs[0])
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(cfg.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("turnstile: slot namespace %q: %s", cfg.Namespace, errs[0])
	}
	if cfg.Slots == 0 {
		cfg.Slots = 1
	}
	if cfg.Slots < 1 {
		return nil, fmt.Errorf("turnstile: slots must be at least 1, got %d", cfg.Slots)
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.LeaseDuration < 3*time.Second {
		return nil, fmt.Errorf("turnstile: lease duration must be at least 3s, got %s", cfg.LeaseDuration)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Turnstile{cfg: cfg, leases: cfg.Leases.Leases(cfg.Namespace)}, nil
}

// Namespace is the slot namespace.
func (t *Turnstile) Namespace() string { return t.cfg.Namespace }

// Grant is a slot held by a request.
type Grant struct {
	Slot Slot
	// Reentered: the request already held this slot (a re-run of its workflow).
	Reentered bool
	// Waited: how long this call waited for it.
	Waited time.Duration
}

// WaitingError is returned by Acquire when its context ends before a slot is free.
type WaitingError struct {
	Wait Wait
	Err  error
}

func (e *WaitingError) Error() string { return e.Wait.Message() + ": " + e.Err.Error() }
func (e *WaitingError) Unwrap() error { return e.Err }

// AcquireOptions are the per-call settings of Acquire.
type AcquireOptions struct {
	// Target is the version the request is upgrading to; it is recorded on the slot.
	Target string
	// OnWait is called whenever the request's place in the queue changes while it waits.
	OnWait func(Wait)
	// ApprovalWaves are the waves that wait for an operator's approval, recorded when this
	// request is the first to take a slot for a new target version.
	ApprovalWaves []int
}

// Acquire blocks until the request holds a slot, and returns it. A request that already holds
// one re-enters it. If ctx ends first it returns a *WaitingError, leaving the request's ticket
// in place so that it keeps its arrival when it comes back.
func (t *Turnstile) Acquire(ctx context.Context, req Request, opts AcquireOptions) (*Grant, error) {
	start := t.cfg.Clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := t.watch(ctx)
	if err != nil {
		return nil, err
	}
	holders := newHolderTracker(ctx, t.cfg.Holders, req.GroupVersionResource, w.poke)
	var (
		last     Wait
		reported bool
		// mine is this request's ticket as last written here: the watch may not show it yet.
		mine *Ticket
	)
	for {
		now := t.cfg.Clock.Now()
		view := NewView(t.cfg.Promise, t.cfg.Slots, w.leases())
		holders.follow(view.Slots, req)
		d := decide(decideInput{promise: t.cfg.Promise, view: view, me: req, target: opts.Target,
			slots: t.cfg.Slots, now: now, holders: holders.statuses()})
		for _, s := range d.unmarked {
			t.markWorkflowFailed(ctx, s, holders.statuses()[s.HolderUID].WorkflowFailed)
		}
		if tk, ok := view.TicketOf(t.cfg.Promise, req); ok && tk.UID == req.UID && (mine == nil || !tk.RenewTime.Before(mine.RenewTime)) {
			mine = &tk
		}
		stale, hadStale := view.TicketOf(t.cfg.Promise, req)
		switch {
		case d.action == actTake && mine == nil:
			// Queue first, even with the slot free: the ticket fixes this request's arrival for
			// everyone else, so the order of a burst of arrivals is theirs, not the race's.
			tk, err := t.putTicket(ctx, req, opts.Target, stale, hadStale, now)
			if err != nil {
				return nil, err
			}
			if tk != nil {
				mine = tk
				continue
			}
			// Someone else wrote the ticket first: wait for the watch to bring it.
		case d.action == actTake || d.action == actReenter:
			if d.action == actTake {
				if err := t.RecordTarget(ctx, view, opts.Target, opts.ApprovalWaves); err != nil {
					return nil, err
				}
			}
			slot, err := t.take(ctx, d.slot, req, opts.Target, now, d.action == actReenter)
			if isLostRace(err) {
				break // the watch brings the winner's write; decide again then
			}
			if err != nil {
				return nil, err
			}
			if mine != nil {
				// The slot is held: a ticket left behind by a failed delete only expires.
				_ = t.deleteTicket(ctx, *mine)
			}
			return &Grant{Slot: slot, Reentered: d.action == actReenter, Waited: t.cfg.Clock.Since(start)}, nil
		case mine == nil || !mine.RenewTime.Add(t.cfg.LeaseDuration/3).After(now):
			tk, err := t.putTicket(ctx, req, opts.Target, stale, hadStale, now)
			if err != nil {
				return nil, err
			}
			if tk != nil {
				mine = tk
			}
		}
		if !reported || d.wait.Position != last.Position || d.wait.Message() != last.Message() {
			last, reported = d.wait, true
			if opts.OnWait != nil {
				opts.OnWait(d.wait)
			}
		}
		if err := w.next(ctx, t.cfg.Clock, earliest(d.recheck, now.Add(t.cfg.LeaseDuration/3))); err != nil {
			if ctx.Err() != nil {
				return nil, &WaitingError{Wait: last, Err: err}
			}
			return nil, err // the watch failed for good (Forbidden): not a wait that ran out
		}
	}
}

// Inspect reads the turnstile's current state once, for reporting.
func (t *Turnstile) Inspect(ctx context.Context) (View, error) {
	list, err := t.leases.List(ctx, t.listOptions())
	if err != nil {
		return View{}, fmt.Errorf("listing leases in %s: %w", t.cfg.Namespace, err)
	}
	leases := make([]*leaseT, 0, len(list.Items))
	for i := range list.Items {
		leases = append(leases, &list.Items[i])
	}
	return NewView(t.cfg.Promise, t.cfg.Slots, leases), nil
}
