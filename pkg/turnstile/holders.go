package turnstile

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
)

// HolderWatcher follows a request that holds a slot.
type HolderWatcher interface {
	// Watch follows the request until ctx ends, calling report whenever what is known of it
	// changes. It needs get and watch on the request's kind.
	Watch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, uid types.UID, report func(HolderStatus))
}

// DynamicHolders is a HolderWatcher over the dynamic client: a get, then a watch of the one
// object by name.
type DynamicHolders struct {
	Client dynamic.Interface
}

var _ HolderWatcher = DynamicHolders{}

// Watch implements HolderWatcher.
func (d DynamicHolders) Watch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, uid types.UID, report func(HolderStatus)) {
	objects := d.Client.Resource(gvr).Namespace(namespace)
	// A watch that ends before telling anything (forbidden, say) is retried ever more slowly.
	backoff := time.Second
	heard := false
	for ctx.Err() == nil {
		obj, err := objects.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			report(HolderStatus{Gone: true})
			return
		}
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			// Without get on the kind nothing more can be learned: the slot then frees on
			// expiry, as if the holder were well.
			report(HolderStatus{})
			return
		}
		if err != nil {
			// A restarting apiserver, say: the holder is still there to follow. Until it can be
			// read, nothing says its workflow failed: its slot frees on expiry, as if it were well.
			if !heard {
				heard = true
				report(HolderStatus{})
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		if obj.GetUID() != uid {
			report(HolderStatus{Gone: true})
			return
		}
		heard = true
		report(holderStatusOf(obj))
		rw, err := apiclient.WatchObject(ctx, objects, name, obj.GetResourceVersion())
		if err != nil {
			return
		}
		for ev := range rw.ResultChan() {
			backoff = time.Second
			u, ok := ev.Object.(*unstructured.Unstructured)
			if !ok {
				continue // a watch error: the retry watcher ends and the loop reads afresh
			}
			if ev.Type == watch.Deleted || u.GetUID() != uid {
				rw.Stop()
				report(HolderStatus{Gone: true})
				return
			}
			report(holderStatusOf(u))
		}
		rw.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// holderStatusOf reads the Kratix ConfigureWorkflowCompleted condition: False with reason
// ConfigureWorkflowFailed means the holder's upgrade failed before any await stage ran.
func holderStatusOf(obj *unstructured.Unstructured) HolderStatus {
	deleting := obj.GetDeletionTimestamp() != nil
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "ConfigureWorkflowCompleted" {
			continue
		}
		if m["status"] == "False" && m["reason"] == "ConfigureWorkflowFailed" {
			msg, _ := m["message"].(string)
			if msg == "" {
				msg = "ConfigureWorkflowFailed"
			}
			at, _ := m["lastTransitionTime"].(string)
			failedAt, _ := time.Parse(time.RFC3339, at)
			return HolderStatus{WorkflowFailed: msg, FailedAt: failedAt, Deleting: deleting}
		}
	}
	return HolderStatus{Deleting: deleting}
}

// holderTracker follows the current holders of a turnstile's slots for one waiter.
type holderTracker struct {
	ctx     context.Context
	watcher HolderWatcher
	gvr     schema.GroupVersionResource
	changed func()

	mu       sync.Mutex
	status   map[types.UID]HolderStatus
	watching map[types.UID]context.CancelFunc
}

func newHolderTracker(ctx context.Context, w HolderWatcher, gvr schema.GroupVersionResource, changed func()) *holderTracker {
	return &holderTracker{ctx: ctx, watcher: w, gvr: gvr, changed: changed,
		status: map[types.UID]HolderStatus{}, watching: map[types.UID]context.CancelFunc{}}
}

// follow starts watching the holders of slots and the requests of the tickets at the front of
// the queue that are new, and stops watching those that left. A ticket whose request was
// deleted would otherwise stand in front of the waiters behind it, with slots free, until it
// expired. The waiter itself is never watched: it knows it exists.
func (h *holderTracker) follow(slots []Slot, front []Ticket, self Request) {
	if h.watcher == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	current := map[types.UID]bool{}
	type followed struct {
		uid     types.UID
		request string
	}
	var all []followed
	for _, s := range slots {
		if s.Held() {
			all = append(all, followed{s.HolderUID, s.Request})
		}
	}
	for _, t := range front {
		all = append(all, followed{t.UID, t.Request})
	}
	for _, f := range all {
		if f.uid == "" || f.uid == self.UID || current[f.uid] {
			continue
		}
		current[f.uid] = true
		if _, ok := h.watching[f.uid]; ok {
			continue
		}
		namespace, name, _ := cache.SplitMetaNamespaceKey(f.request)
		ctx, cancel := context.WithCancel(h.ctx)
		h.watching[f.uid] = cancel
		uid := f.uid
		go h.watcher.Watch(ctx, h.gvr, namespace, name, uid, func(st HolderStatus) {
			h.mu.Lock()
			if ctx.Err() != nil { // no longer followed: its news would outlive it
				h.mu.Unlock()
				return
			}
			old, heard := h.status[uid]
			changed := !heard || old != st // the first word, even "all well", is news
			h.status[uid] = st
			h.mu.Unlock()
			if changed {
				h.changed()
			}
		})
	}
	for uid, cancel := range h.watching {
		if !current[uid] {
			cancel()
			delete(h.watching, uid)
			delete(h.status, uid)
		}
	}
}

func (h *holderTracker) statuses() map[types.UID]HolderStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[types.UID]HolderStatus, len(h.status))
	for k, v := range h.status {
		out[k] = v
	}
	return out
}

// selfWatch is what the waiter knows of its own request.
type selfWatch struct {
	mu     sync.Mutex
	status HolderStatus
}

func (s *selfWatch) gone() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.Gone || s.status.Deleting
}

// followSelf watches the waiting request itself; nil without a HolderWatcher.
func (t *Turnstile) followSelf(ctx context.Context, req Request, changed func()) *selfWatch {
	if t.cfg.Holders == nil || req.UID == "" {
		return nil
	}
	s := &selfWatch{}
	go t.cfg.Holders.Watch(ctx, req.GroupVersionResource, req.Namespace, req.Name, req.UID, func(st HolderStatus) {
		s.mu.Lock()
		s.status = st
		s.mu.Unlock()
		changed()
	})
	return s
}
