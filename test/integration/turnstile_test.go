package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// leasesIn lists the Leases of the test Promise in the slot namespace, by role.
func leasesIn(ctx context.Context, slotNS, role string) []coordinationv1.Lease {
	ginkgo.GinkgoHelper()
	list, err := env.Client.CoordinationV1().Leases(slotNS).List(ctx, metav1.ListOptions{
		LabelSelector: turnstile.LabelRole + "=" + role + "," + turnstile.LabelPromise + "=" + promiseName,
	})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return list.Items
}

// holderOf is the request (namespace/name) holding slot i, or "".
func holderOf(ctx context.Context, slotNS string, i int) string {
	l, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.SlotName(promiseName, i), metav1.GetOptions{})
	if err != nil || ptr.Deref(l.Spec.HolderIdentity, "") == "" {
		return ""
	}
	return l.Annotations[turnstile.AnnotationRequest]
}

// upgrade plays a whole upgrade of a request that holds a slot: it turns healthy with a record
// stamped with the target version, and await releases the slot.
func upgrade(ctx context.Context, obj *unstructured.Unstructured, o stageOpts) {
	ginkgo.GinkgoHelper()
	setHealth(ctx, obj, "healthy", freshNow(), "v2")
	o.env = mergeEnv(o.env, map[string]string{"TURNSTILE_MIN_HEALTHY": "0s"})
	runStage(ctx, "await", obj, 0, o)
}

func mergeEnv(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// contend creates n requests and runs, for each at once as a Promise upgrade does, acquire, then
// configure (the Promise's own pipeline), then a whole upgrade, then done. It returns a func that
// waits for them all.
func contend(ctx context.Context, ns string, n int, opts stageOpts, configure, done func()) (wait func()) {
	ginkgo.GinkgoHelper()
	var wg sync.WaitGroup
	for i := range n {
		obj := createRequest(ctx, ns, fmt.Sprintf("db-%02d", i), true, nil)
		wg.Add(1)
		go func() {
			defer ginkgo.GinkgoRecover()
			defer wg.Done()
			runStage(ctx, "acquire", obj, 0, opts)
			configure()
			upgrade(ctx, obj, opts)
			done()
		}()
	}
	return wg.Wait
}

// maxOverlap is the largest number of intervals that share an instant.
func maxOverlap(intervals [][2]time.Time) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, iv := range intervals {
		edges = append(edges, edge{iv[0], 1}, edge{iv[1], -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	depth, most := 0, 0
	for _, e := range edges {
		depth += e.delta
		most = max(most, depth)
	}
	return most
}

var _ = ginkgo.Describe("the turnstile", ginkgo.Label("area:turnstile"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	ginkgo.DescribeTable("never lets more than N of 50 contenders upgrade at once",
		func(ctx context.Context, slots int) {
			const contenders = 50
			// The last waiter waits for every upgrade before its own: its bound grows with the
			// queue, a few seconds an upgrade on a loaded machine.
			opts := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_SLOTS": strconv.Itoa(slots)},
				within: patience.Per(contenders, 5*time.Second, time.Minute)}
			var (
				mu        sync.Mutex
				intervals [][2]time.Time
			)
			contend(ctx, ns, contenders, opts, func() {
				// The window between acquire and await is where the Promise's own configure
				// pipeline runs: it lies inside the slot's hold.
				began := time.Now()
				time.Sleep(time.Duration(20+rand.IntN(30)) * time.Millisecond)
				mu.Lock()
				intervals = append(intervals, [2]time.Time{began, time.Now()})
				mu.Unlock()
			}, func() {})()
			gomega.Expect(intervals).To(gomega.HaveLen(contenders))
			gomega.Expect(maxOverlap(intervals)).To(gomega.BeNumerically("<=", slots))

			slotLeases := leasesIn(ctx, slotNS, turnstile.RoleSlot)
			gomega.Expect(slotLeases).To(gomega.HaveLen(slots))
			transitions := 0
			for _, l := range slotLeases {
				gomega.Expect(ptr.Deref(l.Spec.HolderIdentity, "")).To(gomega.BeEmpty(), "every slot is released at the end")
				transitions += int(ptr.Deref(l.Spec.LeaseTransitions, 0))
			}
			gomega.Expect(transitions).To(gomega.Equal(contenders), "each upgrade took a slot exactly once")
			gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleTicket)).To(gomega.BeEmpty(), "no ticket is left behind")
		},
		ginkgo.Entry("N=1", 1, ginkgo.SpecTimeout(patience.Per(50, 6*time.Second, 2*time.Minute))),
		ginkgo.Entry("N=3", 3, ginkgo.SpecTimeout(patience.Per(50, 6*time.Second, 2*time.Minute))),
	)

	ginkgo.It("serves waiters first come, first served, with lower waves first", ginkgo.SpecTimeout(patience.Scale(2*time.Minute)), func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)

		exits := make(chan *unstructured.Unstructured, 4)
		arrive := func(name string, labels map[string]string, queued int) *unstructured.Unstructured {
			obj := createRequest(ctx, ns, name, true, labels)
			s := startStage(ctx, "acquire", obj, opts)
			gomega.Eventually(func() []coordinationv1.Lease { return leasesIn(ctx, slotNS, turnstile.RoleTicket) }).
				WithContext(ctx).Should(gomega.HaveLen(queued), "%s is queued", name)
			go func() {
				defer ginkgo.GinkgoRecover()
				gomega.Eventually(s.session).WithTimeout(patience.Scale(90 * time.Second)).Should(gexec.Exit(0))
				exits <- obj
			}()
			return obj
		}
		arrive("first", nil, 1)
		arrive("second", nil, 2)
		arrive("third", nil, 3)
		arrive("canary", map[string]string{turnstile.WaveKey: "0"}, 4)

		upgrade(ctx, holder, opts)
		for _, want := range []string{"canary", "first", "second", "third"} {
			var next *unstructured.Unstructured
			gomega.Eventually(exits).WithContext(ctx).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Receive(&next))
			gomega.Expect(next.GetName()).To(gomega.Equal(want))
			gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/" + want))
			gomega.Consistently(exits).WithTimeout(300*time.Millisecond).ShouldNot(gomega.Receive(), "only one at a time")
			upgrade(ctx, next, opts)
		}
	})

	ginkgo.It("lets a re-run of the holder's workflow re-enter its own slot", func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		again := runStage(ctx, "acquire", holder, 0, opts)
		gomega.Expect(again.stdout()).To(gomega.ContainSubstring("re-entered " + turnstile.SlotName(promiseName, 0)))
		slot := leasesIn(ctx, slotNS, turnstile.RoleSlot)
		gomega.Expect(slot).To(gomega.HaveLen(1))
		gomega.Expect(ptr.Deref(slot[0].Spec.LeaseTransitions, 0)).To(gomega.Equal(int32(1)), "re-entering is not a new holder")
	})

	ginkgo.It("reclaims at once the slot of a holder that was deleted", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		waiter := createRequest(ctx, ns, "waiter", true, nil)
		s := startStage(ctx, "acquire", waiter, opts)
		gomega.Eventually(func() []coordinationv1.Lease { return leasesIn(ctx, slotNS, turnstile.RoleTicket) }).WithContext(ctx).Should(gomega.HaveLen(1))

		gomega.Expect(dyn().Resource(databases).Namespace(ns).Delete(ctx, "holder", metav1.DeleteOptions{})).To(gomega.Succeed())
		// The lease lasts 10 minutes: only watching the holder frees the slot this soon.
		gomega.Eventually(s.session).WithTimeout(patience.Scale(15 * time.Second)).Should(gexec.Exit(0))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/waiter"))
	})

	ginkgo.It("lets the waiters behind the tickets of deleted requests go at once", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		// Two requests queue first and hand back (retryAfter), leaving their tickets; then they
		// are deleted before their delete workflows could take the tickets out. next is third,
		// further back than the waiters that follow the requests ahead.
		for _, name := range []string{"gone-1", "gone-2"} {
			gone := createRequest(ctx, ns, name, true, nil)
			runStage(ctx, "acquire", gone, 0, mergeOpts(opts, map[string]string{"TURNSTILE_WAIT": "1s", "TURNSTILE_RETRY_AFTER": "1s"}))
			gomega.Expect(dyn().Resource(databases).Namespace(ns).Delete(ctx, name, metav1.DeleteOptions{})).To(gomega.Succeed())
		}
		next := createRequest(ctx, ns, "next", true, nil)
		s := startStage(ctx, "acquire", next, opts)
		gomega.Eventually(func() []coordinationv1.Lease { return leasesIn(ctx, slotNS, turnstile.RoleTicket) }).WithContext(ctx).Should(gomega.HaveLen(3))

		upgrade(ctx, holder, opts)
		// The dead tickets last 10 minutes: only following them lets next past them this soon.
		gomega.Eventually(s.session).WithTimeout(patience.Scale(15 * time.Second)).Should(gexec.Exit(0))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/next"))
	})

	ginkgo.It("reclaims the slot of a holder that stopped renewing", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_LEASE_DURATION": "15s"}}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		waiter := createRequest(ctx, ns, "waiter", true, nil)
		s := runStage(ctx, "acquire", waiter, 0, opts)
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("slot held by " + ns + "/holder"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/waiter"))
	})

	ginkgo.It("keeps the slot of a holder whose configure workflow failed, and says so", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_LEASE_DURATION": "15s"}}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		patchStatus(ctx, holder, map[string]any{"conditions": []any{map[string]any{
			"type": "ConfigureWorkflowCompleted", "status": "False", "reason": "ConfigureWorkflowFailed",
			"message": "A Configure Pipeline has failed: configure", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
		}}})

		waiter := createRequest(ctx, ns, "waiter", true, nil)
		opts.env["TURNSTILE_WAIT"] = "20s" // past the holder's lease
		s := runStage(ctx, "acquire", waiter, 0, opts)
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Waiting"))
		gomega.Expect(s.turnstileStatus()["message"]).To(gomega.ContainSubstring(ns + "/holder (upgrade failed)"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns+"/holder"), "past its lease duration, a failed holder keeps the slot")
		slot := leasesIn(ctx, slotNS, turnstile.RoleSlot)[0]
		gomega.Expect(slot.Annotations).To(gomega.HaveKeyWithValue(turnstile.AnnotationPhase, turnstile.PhaseFailed))
		gomega.Expect(slot.Annotations[turnstile.AnnotationMessage]).To(gomega.ContainSubstring("A Configure Pipeline has failed"))
	})

	ginkgo.It("grants no slot while the rollout is paused, and goes on when it resumes", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		leases := env.Client.CoordinationV1().Leases(slotNS)
		rollout, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Name:        turnstile.RolloutName(promiseName),
			Labels:      map[string]string{turnstile.LabelPromise: promiseName, turnstile.LabelRole: turnstile.RoleRollout},
			Annotations: map[string]string{turnstile.AnnotationPaused: "true", turnstile.AnnotationPauseReason: "by the on-call"},
		}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		req := createRequest(ctx, ns, "req", true, nil)
		s := startStage(ctx, "acquire", req, stageOpts{slotNamespace: slotNS})
		gomega.Eventually(s.session.Out).WithContext(ctx).Should(gbytes.Say("waiting: rollout paused: by the on-call"))
		gomega.Consistently(s.session).WithTimeout(time.Second).ShouldNot(gexec.Exit())

		// acquire rolled the record forward to its version meanwhile: read it afresh.
		rollout, err = leases.Get(ctx, rollout.Name, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(rollout.Annotations).To(gomega.HaveKeyWithValue(turnstile.AnnotationTarget, "v2"), "recorded on arrival, before any slot")
		delete(rollout.Annotations, turnstile.AnnotationPaused)
		_, err = leases.Update(ctx, rollout, metav1.UpdateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(s.session).WithContext(ctx).Should(gexec.Exit(0))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/req"))
	})
})

var _ = ginkgo.Describe("the turnstile's Leases", ginkgo.Serial, ginkgo.Label("area:turnstile"), func() {
	// Owned, the garbage collector removes them with the Promise (this control plane runs no
	// kube-controller-manager, so the spec checks the ownership itself).
	ginkgo.It("are owned by the Promise", func(ctx context.Context) {
		createPromise(ctx, "v2")
		p, err := dyn().Resource(promises).Get(ctx, promiseName, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		slotNS, ns := env.Namespace("slots"), env.Namespace("requests")
		opts := stageOpts{slotNamespace: slotNS}
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
		waiter := createRequest(ctx, ns, "waiter", true, nil)
		runStage(ctx, "acquire", waiter, 0, mergeOpts(opts, map[string]string{"TURNSTILE_WAIT": "1s", "TURNSTILE_RETRY_AFTER": "1s"}))
		var leases []coordinationv1.Lease
		for _, role := range []string{turnstile.RoleSlot, turnstile.RoleTicket, turnstile.RoleRollout} {
			got := leasesIn(ctx, slotNS, role)
			gomega.Expect(got).NotTo(gomega.BeEmpty(), "a %s Lease", role)
			leases = append(leases, got...)
		}
		for _, l := range leases {
			gomega.Expect(l.OwnerReferences).To(gomega.ConsistOf(gomega.And(
				gomega.HaveField("Kind", "Promise"), gomega.HaveField("Name", promiseName), gomega.HaveField("UID", p.GetUID()),
			)), "Lease %s", l.Name)
		}
	})
})

// mergeOpts is o with more environment.
func mergeOpts(o stageOpts, env map[string]string) stageOpts {
	o.env = mergeEnv(o.env, env)
	return o
}
