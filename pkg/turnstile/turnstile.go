package turnstile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// DefaultNamespace is where slot Leases live unless configured otherwise.
const DefaultNamespace = "kratix-platform-system"

// DefaultLeaseDuration is how long a slot or ticket stays valid without renewal. It must cover
// the gap between the acquire and await stages, that is the Promise's own configure pipeline,
// and the retryAfter interval of stages that exit while they wait.
const DefaultLeaseDuration = 10 * time.Minute

// Bounds of the lease duration.
const (
	// MinLeaseDuration: holders renew at a third of the lease. At 3s a node that stalls a
	// renewal for one second under load loses the slot to the next request, and two upgrades
	// run at once; 15s leaves a stalled renewal 5s.
	MinLeaseDuration = 15 * time.Second
	// MaxLeaseDuration: a slot whose holder died is reclaimed only when its lease runs out;
	// past a day the rollout stalls unnoticed. A Lease holds it as int32 seconds.
	MaxLeaseDuration = 24 * time.Hour
)

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
	// blocking waiters renew at a third of it. Defaults to DefaultLeaseDuration; from
	// MinLeaseDuration to MaxLeaseDuration.
	LeaseDuration time.Duration
	// Clock is the source of time, injectable for tests. Defaults to the real clock.
	Clock clock.WithTicker
	// Owner is the Promise, when known: every Lease the turnstile writes is owned by it, so its
	// slots, queue and rollout record go with it, and a Promise created again under the same
	// name starts clean (no pause, abort or approvals inherited). Optional.
	Owner *metav1.OwnerReference
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
	if cfg.LeaseDuration < MinLeaseDuration || cfg.LeaseDuration > MaxLeaseDuration {
		return nil, fmt.Errorf("turnstile: lease duration must be from %s to %s, got %s", MinLeaseDuration, MaxLeaseDuration, cfg.LeaseDuration)
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
	// Terms are recorded when this request is the first to arrive for a new target version;
	// those on record apply to every request of the rollout.
	Terms Terms
	// Expected are the Promise's requests of earlier waves than this one that had not begun
	// their upgrade to Target when acquire listed them. Until Grace after the rollout started,
	// this request takes no slot while one of them has not arrived: the canary goes first even
	// when Kratix re-runs it last. Grace 0 orders only the waiters present.
	Expected []Expected
	Grace    time.Duration
	// Calendar is when upgrades may start, as the Promise sets it; the operator's windows on
	// the rollout record (kubectl turnstile window) apply as well.
	Calendar window.Calendar
	// WaveSoak holds a wave until the waves before it are done and their last upgrade was
	// released this long ago; 0 lets a wave start as soon as slots and the queue allow.
	WaveSoak time.Duration
	// Baseline, when the request is unhealthy before its upgrade, says how; it is recorded with
	// the attempt, so that a failure it brings along is not blamed on the upgrade.
	Baseline string
}

// Acquire blocks until the request holds a slot, and returns it. A request that already holds
// one re-enters it. If ctx ends first it returns a *WaitingError, leaving the request's ticket
// in place so that it keeps its arrival when it comes back.
func (t *Turnstile) Acquire(ctx context.Context, req Request, opts AcquireOptions) (*Grant, error) {
	start := t.cfg.Clock.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sig := newSignals()
	a := newAcquiring(req, opts)
	watching := t.watchFor(a)
	w, err := t.watch(ctx, sig, t.selections(watching)...)
	if err != nil {
		return nil, err
	}
	defer func() { w.stop() }()
	holders := newHolderTracker(ctx, t.cfg.Holders, req.GroupVersionResource, sig.poke)
	// The request itself is followed too: one deleted while it waits leaves the queue at once,
	// rather than queueing again after its delete workflow has taken it out.
	self := t.followSelf(ctx, req, sig.poke)
	var (
		last     Wait
		reported bool
		// position is the place last decided, -1 before the first decision; limit how many
		// slots it last had to take from.
		position = -1
		limit    int
		open     = openSlots{}
	)
	rewatch := false
	for {
		// What it watches follows its ticket: written, rewritten, or looked at again after far.
		if ws := t.watchFor(a); rewatch || ws != watching {
			rewatch = false
			w.stop()
			again, err := t.watch(ctx, sig, t.selections(ws)...)
			if err != nil {
				return nil, t.waitEnded(ctx, last, err)
			}
			w, watching = again, ws
		}
		now := t.cfg.Clock.Now()
		view := a.current(NewView(t.cfg.Promise, cmp.Or(opts.Terms.Slots, t.cfg.Slots), w.leases()), t.cfg.Promise)
		n := t.slotsOf(view.Rollout, opts.Terms)
		if limit == 0 {
			limit = n
		}
		if self.gone() {
			if _, err := t.LeaveQueue(context.WithoutCancel(ctx), req); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", req.Key(), ErrRequestGone)
		}
		// Only the waiters a freed slot would go to follow the holders and the tickets ahead
		// (to reclaim a slot whose holder is gone, to step past a ticket whose request is), and
		// every waiter near the front once a slot has stood open and untaken for StallGrace, which
		// is when tickets ahead may be dead (far back, a waiter follows its marker's request
		// instead). Following from further back would cost every waiter watches per handoff.
		// The others still decide as followers, so an expired slot whose holder they have not
		// heard from is never free to them.
		var stalledAt time.Time // when a slot open now will have stood open for StallGrace
		if since := open.see(view, now, limit); !since.IsZero() {
			stalledAt = since.Add(StallGrace)
		}
		following := position < 0 || position <= n || (!stalledAt.IsZero() && !now.Before(stalledAt))
		if following {
			holders.follow(view.Slots, view.Front(now, req, n, holders.statuses()), req)
		} else {
			holders.follow(nil, nil, req)
		}
		tr, err := t.turn(ctx, a, view, now, holders.statuses(), t.cfg.Holders != nil, watching.first)
		switch {
		case err != nil:
			return nil, err
		case tr.took != nil:
			return &Grant{Slot: *tr.took, Reentered: tr.reentered, Waited: t.cfg.Clock.Since(start)}, nil
		case tr.again:
			continue
		case watching.first:
			// Its first look shows no other ticket: its place is known once it watches those
			// ahead of its own, which it has just written (or the watch brings).
			if a.mine == nil {
				if err := sig.next(ctx, t.cfg.Clock, now.Add(time.Second)); err != nil {
					return nil, t.waitEnded(ctx, last, err)
				}
			}
			continue
		}
		position = tr.wait.Position
		if tr.limit > 0 {
			limit = tr.limit
		}
		if !following && position <= n {
			continue // it reached the front in this turn: decide again, following
		}
		if !reported || tr.wait.Position != last.Position || tr.wait.Message() != last.Message() {
			last, reported = tr.wait, true
			if opts.OnWait != nil {
				opts.OnWait(tr.wait)
			}
		}
		if position > n && stalledAt.IsZero() {
			if f, ok := t.farFrom(ctx, view, a, now, n, tr.recheck, last); ok {
				w.stop()
				holders.follow(nil, nil, req)
				f.report, f.gone = func(far Wait) {
					if last = far; opts.OnWait != nil {
						opts.OnWait(far)
					}
				}, self.gone
				if err := t.far(ctx, sig, f); err != nil {
					return nil, t.waitEnded(ctx, last, err)
				}
				rewatch = !self.gone() // one gone leaves the queue at the top of the loop
				continue
			}
		}
		if err := t.pace(ctx, last.Position-n); err != nil {
			return nil, t.waitEnded(ctx, last, err)
		}
		wake := earliest(tr.recheck, now.Add(t.cfg.LeaseDuration/3))
		if !following && !stalledAt.IsZero() {
			wake = earliest(wake, stalledAt)
		}
		if err := sig.next(ctx, t.cfg.Clock, wake); err != nil {
			return nil, t.waitEnded(ctx, last, err)
		}
	}
}

// slotsOf is how many requests may upgrade at once: as the rollout record says, else as this
// request's stage does.
func (t *Turnstile) slotsOf(r Rollout, terms Terms) int {
	return cmp.Or(r.Slots, terms.Slots, t.cfg.Slots)
}

// acquiring is what one Acquire call carries from one turn of its loop to the next.
type acquiring struct {
	req  Request
	opts AcquireOptions
	// mine is this request's ticket as last written here: the watch may not show it yet.
	mine *Ticket
	// record is the rollout record as this call found or wrote it on arrival, when the view
	// showed an older one (version staleRV of the rollout Lease). Until the watch brings a
	// newer version, the view's record is the previous rollout's, whose approvals and start
	// are not this one's: the record read is used instead.
	record  *Rollout
	staleRV string
	// expected are the earlier waves' requests that have not been seen arriving yet.
	expected []Expected
}

func newAcquiring(req Request, opts AcquireOptions) *acquiring {
	return &acquiring{req: req, opts: opts, expected: slices.Clone(opts.Expected)}
}

// current is view with the rollout record this call found or wrote on arrival, while the
// view's is older (the watch has not brought it yet).
func (a *acquiring) current(view View, promise string) View {
	if a.record != nil && a.record.Target == a.opts.Target && view.Rollout.predates(*a.record, a.staleRV) {
		view.Rollout = *a.record
		view.cover(promise, view.Rollout.Slots)
	}
	return view
}

// input is what decide needs to judge the request's place on view at now.
func (t *Turnstile) input(a *acquiring, view View, now time.Time, holders map[types.UID]HolderStatus, following bool) decideInput {
	return decideInput{promise: t.cfg.Promise, view: view, me: a.req, target: a.opts.Target, slots: t.slotsOf(view.Rollout, a.opts.Terms), now: now,
		holders: holders, following: following, expected: a.expected, grace: a.opts.Grace, calendar: a.opts.Calendar, waveSoak: a.opts.WaveSoak}
}

// order is the order label of the request's own ticket as last written here; keyed is false
// until it has one for the target.
func (a *acquiring) order() (key int64, keyed bool) {
	if a.mine == nil || a.mine.UID != a.req.UID || a.mine.Version != a.opts.Target {
		return 0, false
	}
	return orderKey(a.mine.Wave, a.mine.Arrival)
}

// turned is what one turn of the loop came to.
type turned struct {
	// took is the slot the request holds now; nil while it waits.
	took      *Slot
	reentered bool
	// again: a ticket was just written; decide again at once, on the view as it is.
	again bool
	// wait is the request's place while it waits; recheck when the view changes by itself;
	// limit how many slots it had to take from (0: not worked out).
	wait    Wait
	recheck time.Time
	limit   int
}

// turn is one turn of Acquire's loop: decide on the view, at now, with what is known of the
// holders (following: as they are followed), and make the one write that the decision calls
// for; first says the view is a first look, with no ticket but the request's own. A lost race
// is no error: the watch brings the winner's write, and the next turn decides again.
func (t *Turnstile) turn(ctx context.Context, a *acquiring, view View, now time.Time, holders map[types.UID]HolderStatus, following, first bool) (turned, error) {
	req, target := a.req, a.opts.Target
	// A record from before slots were recorded (none, and none unreadable) gets them too.
	if a.record == nil && (view.Rollout.Target != target || view.Rollout.Slots == 0 && view.Rollout.TermsErr == nil) {
		r, err := t.RecordTarget(ctx, target, a.opts.Terms)
		if err != nil {
			return turned{}, err
		}
		a.record, a.staleRV = &r, view.Rollout.resourceVersion()
	}
	view = a.current(view, t.cfg.Promise)
	a.expected = arrived(a.expected, view, target)
	d := decide(t.input(a, view, now, holders, following))
	for _, s := range d.unmarked {
		t.markWorkflowFailed(ctx, s, holders[s.HolderUID].WorkflowFailed)
	}
	stale, hadStale := view.TicketOf(t.cfg.Promise, req)
	if hadStale && stale.UID == req.UID && (a.mine == nil || !stale.RenewTime.Before(a.mine.RenewTime)) {
		a.mine = &stale
	}
	out := turned{wait: d.wait, recheck: d.recheck, limit: d.limit}
	// A ticket still naming another version (an aborted one, say) or wave is rewritten at once:
	// others judge its place by what it names.
	rewrite := a.mine == nil || a.mine.Version != target || a.mine.Wave != req.Wave
	due := rewrite || !a.mine.RenewTime.Add(t.cfg.LeaseDuration/3).After(now)
	switch {
	case d.action == actReenter || d.action == actTake && !rewrite && !first:
		slot, err := t.take(ctx, d.slot, req, target, a.opts.Baseline, now, d.action == actReenter)
		if isLostRace(err) {
			return out, nil
		}
		if err != nil {
			return turned{}, err
		}
		if a.mine != nil {
			// The slot is held: the ticket goes, even if the caller's budget ends right now
			// (a ticket left behind would only expire). A failed delete is retried by the
			// release, which deletes the request's ticket too.
			cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = t.deleteTicket(cleanup, *a.mine)
			cancel()
		}
		out.took, out.reentered = &slot, d.action == actReenter
	case d.action == actTake || first || due:
		// Queue first, even with the slot free: the ticket fixes this request's arrival for
		// everyone else, so the order of a burst of arrivals is theirs, not the race's. A first
		// look shows no other ticket, so on it only a re-entry is decided: a take or a place is
		// decided again on the queue ahead of the ticket.
		again := d.action == actTake || first
		out.again = again && !due
		if due {
			tk, err := t.putTicket(ctx, req, target, stale, hadStale, now)
			if err != nil {
				return turned{}, err
			}
			if tk != nil {
				a.mine, out.again = tk, again
			}
			// Else someone else wrote the ticket first: the watch brings it.
		}
	}
	return out, nil
}

// ErrRequestGone is returned by Acquire when the request was deleted, or is being deleted,
// while it waited: it has left the queue.
var ErrRequestGone = errors.New("was deleted while it waited: it left the queue")

// waitEnded is the error that ends a wait: the caller's budget ran out, or the watch failed for
// good (Forbidden), which is no wait that ran out.
func (t *Turnstile) waitEnded(ctx context.Context, last Wait, err error) error {
	if ctx.Err() != nil {
		return &WaitingError{Wait: last, Err: err}
	}
	return err
}

// arrived drops from expected the requests that the view shows queued for, or holding a slot
// for, the target: once seen, a request has arrived for good, even after it has gone through.
func arrived(expected []Expected, v View, target string) []Expected {
	if len(expected) == 0 {
		return expected
	}
	here := map[string]bool{}
	for _, tk := range v.Tickets {
		if tk.Version == target {
			here[tk.Request] = true
		}
	}
	for _, s := range v.Slots {
		if s.Held() && s.Version == target {
			here[s.Request] = true
		}
	}
	return slices.DeleteFunc(expected, func(e Expected) bool { return here[e.Request] })
}

// Inspect reads the turnstile's current state once, for reporting.
func (t *Turnstile) Inspect(ctx context.Context) (View, error) {
	return t.list(ctx, t.listOptions())
}

// list reads the Leases opts select, as a view.
func (t *Turnstile) list(ctx context.Context, opts metav1.ListOptions) (View, error) {
	list, err := t.leases.List(ctx, opts)
	if err != nil {
		return View{}, fmt.Errorf("listing leases in %s: %w", t.cfg.Namespace, err)
	}
	leases := make([]*leaseT, 0, len(list.Items))
	for i := range list.Items {
		leases = append(leases, &list.Items[i])
	}
	return NewView(t.cfg.Promise, t.cfg.Slots, leases), nil
}
