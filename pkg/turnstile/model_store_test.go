package turnstile

// The Lease store, clocks and stale watches of the model-based test (model_test.go).
//
// The store implements coordinationv1client.LeaseInterface, so the model drives the package's
// own writers (take, putTicket, deleteTicket, updateHeld through Release/Renew/MarkFailed,
// markWorkflowFailed, Leave, Skip and the rollout levers) unchanged: only the apiserver is
// simulated. Every write makes a new revision; the model keeps every revision, so a waiter can
// decide on the store as its watch showed it some time ago.

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/clock"
)

var mLeases = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// mStore is one slot namespace's Leases, with the apiserver's compare-and-swap: Create fails
// with AlreadyExists, Update with Conflict on a stale resourceVersion (NotFound on a deleted
// object), Delete with Conflict when its uid precondition fails.
type mStore struct {
	// A method the model does not expect (Watch, Patch, …) hits this nil interface and panics.
	coordinationv1client.LeaseInterface

	promise string
	slots   int
	now     func() time.Time // true time, stamped on each revision
	uids    int
	objs    map[string]*coordinationv1.Lease
	// revs[r] is the store after revision r (revs[0]: empty). Objects are never changed once
	// stored: every write stores a fresh copy, and readers copy before they change anything.
	revs []mRev
	// parsed are the selections of the waiters' watches.
	parsed map[watchSet][]mSelector
	// writes counts successful writes; lost counts writes refused by a conflict.
	writes, lost int
}

// mSelector is one watch's selection, parsed.
type mSelector struct {
	labels labels.Selector
	fields fields.Selector
}

type mRev struct {
	at     time.Time
	leases []*coordinationv1.Lease // sorted by name
	view   *View                   // NewView of leases, built on first use
	views  map[watchSet]View       // the Views selectedAt gave, by what was watched
	name   string                  // the Lease written, for traces
	gone   bool                    // deleted
}

func newMStore(promise string, slots int, now func() time.Time) *mStore {
	return &mStore{promise: promise, slots: slots, now: now, objs: map[string]*coordinationv1.Lease{}, parsed: map[watchSet][]mSelector{},
		revs: []mRev{{at: now()}}}
}

func (s *mStore) head() int { return len(s.revs) - 1 }

// commit stores l (nil: deletes name) as a new revision.
func (s *mStore) commit(name string, l *coordinationv1.Lease) {
	prev := s.revs[len(s.revs)-1].leases
	next := make([]*coordinationv1.Lease, 0, len(prev)+1)
	for _, o := range prev {
		if o.Name != name {
			next = append(next, o)
		}
	}
	if l != nil {
		l.ResourceVersion = strconv.Itoa(len(s.revs))
		s.objs[name] = l
		i := sort.Search(len(next), func(i int) bool { return next[i].Name > name })
		next = slices.Insert(next, i, l)
	} else {
		delete(s.objs, name)
	}
	s.writes++
	s.revs = append(s.revs, mRev{at: s.now(), leases: next, name: name, gone: l == nil})
}

// since is, for traces, the writes after revision rev and whether a write lost a race since
// lost was the count of lost writes.
func (s *mStore) since(rev, lost int) string {
	var out []string
	for _, r := range s.revs[rev+1:] {
		what := "wrote "
		if r.gone {
			what = "deleted "
		}
		out = append(out, what+strings.TrimPrefix(r.name, "turnstile-"+s.promise+"-"))
	}
	if s.lost > lost {
		out = append(out, "lost a race")
	}
	if len(out) == 0 {
		return ""
	}
	return "; " + strings.Join(out, ", ")
}

func (s *mStore) Create(_ context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	if _, ok := s.objs[l.Name]; ok {
		s.lost++
		return nil, apierrors.NewAlreadyExists(mLeases, l.Name)
	}
	c := l.DeepCopy()
	s.uids++
	c.UID = types.UID("lease-uid-" + strconv.Itoa(s.uids))
	s.commit(c.Name, c)
	return c, nil
}

func (s *mStore) Update(_ context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	cur, ok := s.objs[l.Name]
	switch {
	case !ok:
		return nil, apierrors.NewNotFound(mLeases, l.Name)
	case l.ResourceVersion != cur.ResourceVersion:
		s.lost++
		return nil, apierrors.NewConflict(mLeases, l.Name, errors.New("the object has been modified"))
	}
	c := l.DeepCopy()
	c.UID = cur.UID
	s.commit(c.Name, c)
	return c, nil
}

func (s *mStore) Delete(_ context.Context, name string, opts metav1.DeleteOptions) error {
	cur, ok := s.objs[name]
	switch {
	case !ok:
		return apierrors.NewNotFound(mLeases, name)
	case opts.Preconditions != nil && opts.Preconditions.UID != nil && *opts.Preconditions.UID != cur.UID:
		s.lost++
		return apierrors.NewConflict(mLeases, name, errors.New("precondition failed: uid"))
	}
	s.commit(name, nil)
	return nil
}

// Get copies: updateRollout changes what it gets.
func (s *mStore) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	if l, ok := s.objs[name]; ok {
		return l.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(mLeases, name)
}

// List is a consistent read of the head revision, as a List without resourceVersion is. Its
// items share maps with the store: Inspect's callers copy before they change anything.
func (s *mStore) List(_ context.Context, _ metav1.ListOptions) (*coordinationv1.LeaseList, error) {
	list := &coordinationv1.LeaseList{}
	for _, l := range s.revs[len(s.revs)-1].leases {
		list.Items = append(list.Items, *l)
	}
	return list, nil
}

// viewAt is the View a watch showing revision r gives.
func (s *mStore) viewAt(r int) View {
	if s.revs[r].view == nil {
		v := NewView(s.promise, s.slots, s.revs[r].leases)
		s.revs[r].view = &v
	}
	return *s.revs[r].view
}

// selectedAt is the View the watches of sels showing revision r give: the Leases any of them
// selects, as the apiserver filters them (a waiter near the front watches only those ahead).
func (s *mStore) selectedAt(r int, t *Turnstile, ws watchSet) View {
	if v, ok := s.revs[r].views[ws]; ok {
		return v
	}
	parsed, ok := s.parsed[ws]
	if !ok {
		for _, sel := range t.selections(ws) {
			ls, err := labels.Parse(sel.LabelSelector)
			if err != nil {
				panic(err)
			}
			fs, err := fields.ParseSelector(sel.FieldSelector)
			if err != nil {
				panic(err)
			}
			parsed = append(parsed, mSelector{ls, fs})
		}
		s.parsed[ws] = parsed
	}
	var picked []*coordinationv1.Lease
	for _, l := range s.revs[r].leases {
		for _, sel := range parsed {
			if sel.labels.Matches(labels.Set(l.Labels)) && sel.fields.Matches(fields.Set{"metadata.name": l.Name}) {
				picked = append(picked, l)
				break
			}
		}
	}
	v := NewView(s.promise, s.slots, picked)
	if s.revs[r].views == nil {
		s.revs[r].views = map[watchSet]View{}
	}
	s.revs[r].views[ws] = v
	return v
}

// oldest is the oldest revision a watch may still show at now with a delay of at most lag: the
// last revision written at or before now-lag.
func (s *mStore) oldest(now time.Time, lag time.Duration) int {
	cut := now.Add(-lag)
	return max(sort.Search(len(s.revs), func(i int) bool { return s.revs[i].at.After(cut) })-1, 0)
}

// lease is the head revision's Lease name, or nil.
func (s *mStore) lease(name string) *coordinationv1.Lease { return s.objs[name] }

// slotAt is slot i as the head revision has it.
func (s *mStore) slotAt(i int) Slot { return slotFrom(s.promise, i, s.objs[SlotName(s.promise, i)]) }

// rollout is the rollout record as the head revision has it.
func (s *mStore) rollout() Rollout { return s.viewAt(s.head()).Rollout }

// mClock is a process's clock: true time plus its node's skew. Only Now and Since are used by
// the code under test; anything else hits the nil interface and panics.
type mClock struct {
	clock.WithTicker
	now  *time.Time
	skew time.Duration
}

func (c *mClock) Now() time.Time                  { return c.now.Add(c.skew) }
func (c *mClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// mTurnstile is the Turnstile a process uses: the store as its Lease client, its own clock.
// New is bypassed only because it wants a LeasesGetter; the configuration is what New makes.
func mTurnstile(s *mStore, lease time.Duration, clk *mClock) *Turnstile {
	return &Turnstile{cfg: Config{Namespace: DefaultNamespace, Promise: s.promise, Slots: s.slots,
		LeaseDuration: lease, Clock: clk}, leases: s}
}

// mDescribe is a one-line summary of the head revision, for traces.
func (s *mStore) describe(now time.Time) string {
	var b strings.Builder
	v := s.viewAt(s.head())
	for _, sl := range v.Slots {
		if !sl.Held() {
			b.WriteString(" [" + strconv.Itoa(sl.Index) + ": free]")
			continue
		}
		b.WriteString(" [" + strconv.Itoa(sl.Index) + ": " + sl.Request + "#" + string(sl.HolderUID) + " " + sl.Version + " " + sl.Phase)
		if sl.Expired(now) {
			b.WriteString(" expired")
		}
		b.WriteString("]")
	}
	for _, t := range v.Tickets {
		b.WriteString(" q:" + t.Request + "#" + string(t.UID) + "/w" + strconv.Itoa(t.Wave) + "/" + t.Version)
		if !t.Live(now) {
			b.WriteString("(stale)")
		}
	}
	r := v.Rollout
	if r.Target != "" || r.Paused || r.AbortedVersion != "" {
		b.WriteString(" rollout:" + r.Target)
		if r.Paused {
			b.WriteString(" paused")
		}
		if r.AbortedVersion != "" {
			b.WriteString(" aborted:" + r.AbortedVersion)
		}
		if len(r.ApprovalWaves) > 0 {
			b.WriteString(" approval:" + FormatWaves(r.ApprovalWaves) + " approved:" + FormatWaves(r.Approved))
		}
	}
	return strings.TrimSpace(b.String())
}
