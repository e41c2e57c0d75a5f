// Package observer watches Turnstile's rollouts and shows them: Prometheus metrics and a live
// web page. It reads Promises, their requests and the turnstile's Leases through informers, and
// decides nothing: Turnstile has no controller, and the observer is not one.
package observer

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

var (
	promisesGVR = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "promises"}
	leasesGVR   = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
)

// Config is what the observer reads, and how.
type Config struct {
	Dynamic dynamic.Interface
	// SlotNamespace holds the turnstile's Leases.
	SlotNamespace string
	// Namespace limits the requests shown to one namespace; "" shows them all.
	Namespace string
	// Slots is the fewest slots a Promise is shown with: the acquire stage's --slots is not
	// written anywhere the observer can read, so a Promise shows the larger of this and the
	// slot Leases it has.
	Slots int
	Clock clock.Clock
	// Log receives a line when an informer cannot list what it should read.
	Log io.Writer
}

// Observer keeps the latest picture of every rollout, and the metrics counted from its changes.
type Observer struct {
	cfg     Config
	leases  cache.SharedIndexInformer
	promise cache.SharedIndexInformer
	changed chan struct{}
	metrics *Metrics

	mu       sync.Mutex
	requests map[schema.GroupVersionResource]*requestInformer
	snap     Snapshot
	subs     map[chan Snapshot]struct{}
	track    *tracker
}

type requestInformer struct {
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

// New builds an observer; Run starts it.
func New(cfg Config) *Observer {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Slots < 1 {
		cfg.Slots = 1
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	o := &Observer{cfg: cfg, changed: make(chan struct{}, 1), requests: map[schema.GroupVersionResource]*requestInformer{},
		subs: map[chan Snapshot]struct{}{}, metrics: newMetrics()}
	o.track = newTracker(o.metrics)
	o.leases = dynamicinformer.NewFilteredDynamicInformer(cfg.Dynamic, leasesGVR, cfg.SlotNamespace, 0, cache.Indexers{},
		func(lo *metav1.ListOptions) { lo.LabelSelector = turnstile.LabelPromise }).Informer()
	o.promise = dynamicinformer.NewFilteredDynamicInformer(cfg.Dynamic, promisesGVR, "", 0, cache.Indexers{}, nil).Informer()
	o.metrics.register(o)
	return o
}

// Metrics is what the observer counts, for a /metrics endpoint.
func (o *Observer) Metrics() *Metrics { return o.metrics }

// Run watches until ctx ends. It returns once the first picture is taken, with Ready's channel
// closed, or with the error that kept it from reading what it must.
func (o *Observer) Run(ctx context.Context) error {
	for _, inf := range []cache.SharedIndexInformer{o.leases, o.promise} {
		if _, err := inf.AddEventHandler(o.handler()); err != nil {
			return fmt.Errorf("watching: %w", err)
		}
		_ = inf.SetWatchErrorHandlerWithContext(o.watchErrors)
		go inf.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), o.leases.HasSynced, o.promise.HasSynced) {
		return fmt.Errorf("reading the Leases in %s and the Promises: %w", o.cfg.SlotNamespace, context.Cause(ctx))
	}
	o.refresh(ctx)
	go o.loop(ctx)
	return nil
}

func (o *Observer) poke() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

func (o *Observer) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { o.poke() }, UpdateFunc: func(any, any) { o.poke() }, DeleteFunc: func(any) { o.poke() },
	}
}

// watchErrors says what keeps an informer from reading, once it is something a person must
// fix (no rights, no such API); a watch that expired or dropped is client-go's to renew.
func (o *Observer) watchErrors(_ context.Context, r *cache.Reflector, err error) {
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) {
		fmt.Fprintf(o.cfg.Log, "observer: watching %s: %v\n", r.TypeDescription(), err)
	}
}

// loop takes a new picture after every burst of changes: a handoff writes several objects at
// once, and one picture of the lot is what a person wants to see.
func (o *Observer) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			o.mu.Lock()
			for _, ri := range o.requests {
				ri.stop()
			}
			o.mu.Unlock()
			return
		case <-o.changed:
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		o.refresh(ctx)
	}
}

// refresh follows the request APIs of the Promises with a rollout and takes a new picture.
// Only those: the observer may read the requests of no other Promise.
func (o *Observer) refresh(ctx context.Context) {
	rolling := map[string]bool{}
	for _, obj := range o.leases.GetStore().List() {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			rolling[u.GetLabels()[turnstile.LabelPromise]] = true
		}
	}
	promises := map[string]promiseAPI{}
	for _, obj := range o.promise.GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || !rolling[u.GetName()] {
			continue
		}
		gvr, declared, err := report.API(u)
		if err != nil {
			continue
		}
		promises[u.GetName()] = promiseAPI{gvr: gvr, declared: declared}
	}
	o.follow(ctx, promises)
	snap := o.picture(promises)
	o.mu.Lock()
	o.track.observe(o.snap, snap)
	snap.Timeline = o.track.timelines()
	o.snap = snap
	subs := make([]chan Snapshot, 0, len(o.subs))
	for ch := range o.subs {
		subs = append(subs, ch)
	}
	o.mu.Unlock()
	for _, ch := range subs {
		select { // each subscriber keeps only the newest picture
		case <-ch:
		default:
		}
		ch <- snap
	}
}

type promiseAPI struct {
	gvr      schema.GroupVersionResource
	declared string
}

// follow runs one request informer per API the Promises offer, and stops those no Promise
// offers any more.
func (o *Observer) follow(ctx context.Context, promises map[string]promiseAPI) {
	want := map[schema.GroupVersionResource]bool{}
	for _, p := range promises {
		want[p.gvr] = true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for gvr, ri := range o.requests {
		if !want[gvr] {
			ri.stop()
			delete(o.requests, gvr)
		}
	}
	for gvr := range want {
		if _, ok := o.requests[gvr]; ok {
			continue
		}
		inf := dynamicinformer.NewFilteredDynamicInformer(o.cfg.Dynamic, gvr, o.cfg.Namespace, 0, cache.Indexers{}, nil).Informer()
		_, _ = inf.AddEventHandler(o.handler())
		_ = inf.SetWatchErrorHandlerWithContext(o.watchErrors)
		rctx, stop := context.WithCancel(ctx)
		go inf.RunWithContext(rctx)
		// A list with nothing in it brings no event: say once that it is in.
		go func() {
			if cache.WaitForCacheSync(rctx.Done(), inf.HasSynced) {
				o.poke()
			}
		}()
		o.requests[gvr] = &requestInformer{informer: inf, stop: stop}
	}
}

// picture is every rollout as the informers show it now.
func (o *Observer) picture(promises map[string]promiseAPI) Snapshot {
	now := o.cfg.Clock.Now()
	byPromise := map[string][]*coordinationv1.Lease{}
	for _, obj := range o.leases.GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		l := &coordinationv1.Lease{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, l); err != nil {
			continue
		}
		p := l.Labels[turnstile.LabelPromise]
		byPromise[p] = append(byPromise[p], l)
	}
	snap := Snapshot{At: now}
	// The platform-wide hold is every Promise's: each rollout's view reads it with its own.
	platform := byPromise[turnstile.AllPromises]
	snap.Hold = turnstile.NewView(turnstile.AllPromises, 1, platform).Hold
	for promise, leases := range byPromise {
		leases = append(leases, platform...)
		api, ok := promises[promise]
		if !ok {
			continue
		}
		o.mu.Lock()
		ri := o.requests[api.gvr]
		o.mu.Unlock()
		if ri == nil || !ri.informer.HasSynced() {
			continue
		}
		var requests []unstructured.Unstructured
		for _, obj := range ri.informer.GetStore().List() {
			if u, ok := obj.(*unstructured.Unstructured); ok {
				requests = append(requests, *u)
			}
		}
		snap.Rollouts = append(snap.Rollouts, rolloutOf(promise, api.declared, leases, requests, o.cfg.Slots, now))
	}
	sort.Slice(snap.Rollouts, func(i, j int) bool { return snap.Rollouts[i].Promise < snap.Rollouts[j].Promise })
	return snap
}

// Subscribe returns a channel that receives each new picture, starting with the current one,
// and a function to stop.
func (o *Observer) Subscribe() (<-chan Snapshot, func()) {
	ch := make(chan Snapshot, 1)
	o.mu.Lock()
	o.subs[ch] = struct{}{}
	ch <- o.snap
	o.mu.Unlock()
	return ch, func() {
		o.mu.Lock()
		delete(o.subs, ch)
		o.mu.Unlock()
	}
}

// Snapshot is the current picture.
func (o *Observer) Snapshot() Snapshot {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.snap
}
