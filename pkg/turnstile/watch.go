package turnstile

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

type leaseT = coordinationv1.Lease

// leaseWatch keeps an up-to-date copy of one Promise's Leases: one list, then one watch.
type leaseWatch struct {
	store   cache.Store
	changed chan struct{}
	fatal   chan error
}

func (t *Turnstile) listOptions() metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: Selector(t.cfg.Promise).String()}
}

// watch starts following the Promise's Leases and returns once it has listed them. It stops
// when ctx ends. Errors that retrying cannot cure (Forbidden) end the wait with that error.
func (t *Turnstile) watch(ctx context.Context) (*leaseWatch, error) {
	sel := t.listOptions().LabelSelector
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector = sel
			// A consistent read, never the watch cache's "0": a pod's first view older than
			// its own request's last take (a re-run of the workflow) would let it take a
			// second slot.
			opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
			return t.leases.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = sel
			return t.leases.Watch(ctx, opts)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	w := &leaseWatch{store: inf.GetStore(), changed: make(chan struct{}, 1), fatal: make(chan error, 1)}
	poke := func(any) { w.poke() }
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    poke,
		UpdateFunc: func(_, obj any) { w.poke() },
		DeleteFunc: poke,
	}); err != nil {
		return nil, fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			select {
			case w.fatal <- fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err):
			default:
			}
		}
	}); err != nil {
		return nil, fmt.Errorf("watching leases in %s: %w", t.cfg.Namespace, err)
	}
	go inf.RunWithContext(ctx)
	// The sync checker's channel closes when the first list is in: no polling for it.
	select {
	case <-inf.HasSyncedChecker().Done():
		return w, nil
	case err := <-w.fatal:
		return nil, err
	case <-ctx.Done():
		return nil, fmt.Errorf("listing leases in %s: %w", t.cfg.Namespace, context.Cause(ctx))
	}
}

func (w *leaseWatch) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *leaseWatch) leases() []*coordinationv1.Lease {
	objs := w.store.List()
	out := make([]*coordinationv1.Lease, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*coordinationv1.Lease))
	}
	return out
}

// next blocks until the Leases change, the clock reaches at, or ctx ends.
func (w *leaseWatch) next(ctx context.Context, clk clock.WithTicker, at time.Time) error {
	var fire <-chan time.Time
	if !at.IsZero() {
		timer := clk.NewTimer(at.Sub(clk.Now()))
		defer timer.Stop()
		fire = timer.C()
	}
	select {
	case <-w.changed:
		return nil
	case <-fire:
		return nil
	case err := <-w.fatal:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
