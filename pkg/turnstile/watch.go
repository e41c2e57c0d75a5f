package turnstile

import (
	"context"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

type leaseT = coordinationv1.Lease

// signals is what wakes one waiter: news from any of the watches it runs (its Leases, the
// holders, its own request), or a watch that failed for good.
type signals struct {
	changed chan struct{}
	fatal   chan error
}

func newSignals() *signals {
	return &signals{changed: make(chan struct{}, 1), fatal: make(chan error, 1)}
}

func (s *signals) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *signals) fail(err error) {
	select {
	case s.fatal <- err:
	default:
	}
}

// next blocks until something changes, the clock reaches at, or ctx ends.
func (s *signals) next(ctx context.Context, clk clock.WithTicker, at time.Time) error {
	var fire <-chan time.Time
	if !at.IsZero() {
		timer := clk.NewTimer(at.Sub(clk.Now()))
		defer timer.Stop()
		fire = timer.C()
	}
	select {
	case <-s.changed:
		return nil
	case <-fire:
		return nil
	case err := <-s.fatal:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// leaseWatch keeps an up-to-date copy of the Leases some selections name: for each, one list,
// then one watch.
type leaseWatch struct {
	stores []cache.Store
	// stop ends the watches.
	stop context.CancelFunc
}

func (t *Turnstile) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: Selector(t.cfg.Promise).String()}
}

// roleOptions select the Promise's Leases of the roles given; RoleHold selects the platform's
// hold, which Selector takes in with every Promise's.
func (t *Turnstile) roleOptions(roles ...string) metav1.ListOptions {
	r, err := labels.NewRequirement(LabelRole, selection.In, roles)
	if err != nil {
		return metav1.ListOptions{LabelSelector: nothing.String()}
	}
	return metav1.ListOptions{LabelSelector: Selector(t.cfg.Promise).Add(*r).String()}
}

// watch starts following the Leases that each of sels selects and returns once it has listed
// them all, poking sig on every change. It stops when ctx ends. Errors that retrying cannot cure
// (Forbidden) go to sig as fatal, and end the wait for the first lists.
func (t *Turnstile) watch(ctx context.Context, sig *signals, sels ...metav1.ListOptions) (_ *leaseWatch, err error) {
	ctx, stop := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			stop()
		}
	}()
	w := &leaseWatch{stop: stop}
	failed := make(chan error, 1)
	var synced []<-chan struct{}
	for _, sel := range sels {
		inf, err := t.informer(ctx, sel, sig, failed)
		if err != nil {
			return nil, err
		}
		w.stores = append(w.stores, inf.GetStore())
		synced = append(synced, inf.HasSyncedChecker().Done())
	}
	// The sync checkers' channels close when the first lists are in: no polling for them.
	for _, done := range synced {
		select {
		case <-done:
		case err := <-failed:
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("listing leases in %s: %w", t.cfg.Namespace, context.Cause(ctx))
		}
	}
	return w, nil
}

// informer runs one list and watch of the Leases sel selects until ctx ends.
func (t *Turnstile) informer(ctx context.Context, sel metav1.ListOptions, sig *signals, failed chan error) (cache.SharedIndexInformer, error) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector, opts.FieldSelector = sel.LabelSelector, sel.FieldSelector
			// A consistent read, never the watch cache's "0": a pod's first view older than
			// its own request's last take (a re-run of the workflow) would let it take a
			// second slot.
			opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
			return t.leases.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector, opts.FieldSelector = sel.LabelSelector, sel.FieldSelector
			return t.leases.Watch(ctx, opts)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	poke := func(any) { sig.poke() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { sig.poke() },
		DeleteFunc: poke,
	}); err != nil {
		return nil, fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			err = fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err)
			select {
			case failed <- err:
			default:
			}
			sig.fail(err)
		}
	}); err != nil {
		return nil, fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err)
	}
	go inf.RunWithContext(ctx)
	return inf, nil
}

// leases are the Leases of every selection, each once.
func (w *leaseWatch) leases() []*coordinationv1.Lease {
	var out []*coordinationv1.Lease
	seen := map[string]bool{}
	for _, store := range w.stores {
		for _, o := range store.List() {
			l := o.(*coordinationv1.Lease)
			if !seen[l.Name] {
				seen[l.Name] = true
				out = append(out, l)
			}
		}
	}
	return out
}

// watchSet is what a waiter watches: before it has a ticket (first), the slots, the rollout's
// record, the hold and its own ticket, which is all its first turn needs (it re-enters a slot it
// holds, or writes its ticket, whatever else is queued); with a ticket (keyed), those and the
// tickets served no later than its own, which is all that decides whether it may take a slot
// (those behind it never go first); a waiter of a wave beyond orderedWaves, every Lease of the
// Promise. Tickets without an order label (of such a wave, or written before tickets had one)
// are always watched: their place is not known until read.
type watchSet struct {
	first, keyed bool
	key          int64
	ticket       string
}

func (t *Turnstile) watchFor(a *acquiring) watchSet {
	if a.mine == nil {
		return watchSet{first: true, ticket: TicketName(t.cfg.Promise, a.req)}
	}
	key, keyed := a.order()
	return watchSet{keyed: keyed, key: key}
}

// selections are the list options of ws's watches.
func (t *Turnstile) selections(ws watchSet) []metav1.ListOptions {
	records := t.roleOptions(RoleSlot, RoleRollout, RoleHold)
	switch {
	case ws.first:
		return []metav1.ListOptions{records, {LabelSelector: Selector(t.cfg.Promise).String(),
			FieldSelector: fields.OneTermEqualSelector("metadata.name", ws.ticket).String()}}
	case !ws.keyed:
		return []metav1.ListOptions{t.listOptions()}
	}
	order := func(op selection.Operator, vals ...string) labels.Requirement {
		r, _ := labels.NewRequirement(LabelOrder, op, vals)
		return *r
	}
	ours, _ := labels.NewRequirement(LabelPromise, selection.Equals, []string{t.cfg.Promise})
	isTicket, _ := labels.NewRequirement(LabelRole, selection.Equals, []string{RoleTicket})
	tickets := labels.NewSelector().Add(*ours, *isTicket)
	return []metav1.ListOptions{records,
		{LabelSelector: tickets.Add(order(selection.LessThan, strconv.FormatInt(ws.key+1, 10))).String()},
		{LabelSelector: tickets.Add(order(selection.DoesNotExist)).String()},
	}
}
