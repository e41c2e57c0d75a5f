package integration

import (
	"context"
	"strconv"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

func liveTurnstileStatus(ctx context.Context, obj *unstructured.Unstructured) map[string]any {
	ginkgo.GinkgoHelper()
	live, err := dyn().Resource(databases).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	st, _, _ := unstructured.NestedMap(live.Object, "status", "turnstile")
	return st
}

func eventReasons(ctx context.Context, obj *unstructured.Unstructured) []string {
	ginkgo.GinkgoHelper()
	list, err := env.Client.CoreV1().Events(obj.GetNamespace()).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + obj.GetName(),
	})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var reasons []string
	for _, e := range list.Items {
		reasons = append(reasons, e.Type+"/"+e.Reason)
	}
	return reasons
}

var _ = ginkgo.Describe("await's health gate", ginkgo.Label("area:turnstile", "area:health"), func() {
	var (
		slotNS, ns string
		opts       stageOpts
		holder     *unstructured.Unstructured
	)
	ginkgo.BeforeEach(func(ctx context.Context) {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
		opts = stageOpts{slotNamespace: slotNS}
		holder = createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, opts)
	})

	ginkgo.It("never releases on a healthy record left from before the upgrade", func(ctx context.Context) {
		setHealth(ctx, holder, "healthy", time.Now().Add(-time.Hour), "v1")
		s := runStage(ctx, "await", holder, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{
			"TURNSTILE_WAIT": "3s", "TURNSTILE_MIN_HEALTHY": "0s",
		}})
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/holder"))
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Verifying"))
		gomega.Expect(s.turnstileStatus()["message"]).To(gomega.ContainSubstring("predate the upgrade"))
		gomega.Expect(s.metadata("workflow-control.yaml")).To(gomega.HaveKeyWithValue("retryAfter", "30s"))
	})

	ginkgo.It("keeps the slot of an unhealthy upgrade, says why, and lets it through once it heals", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		setHealth(ctx, holder, "unhealthy", freshNow(), "v2")
		failing := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_WAIT": "3s", "TURNSTILE_FAILURE_THRESHOLD": "1", "TURNSTILE_MIN_HEALTHY": "1s"}}
		s := runStage(ctx, "await", holder, 0, failing)

		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Failed"))
		gomega.Expect(liveTurnstileStatus(ctx, holder)).To(gomega.HaveKeyWithValue("phase", "Failed"), "visible while the pipeline still runs")
		gomega.Expect(liveTurnstileStatus(ctx, holder)["message"]).To(gomega.ContainSubstring("is unhealthy"))
		gomega.Expect(eventReasons(ctx, holder)).To(gomega.ContainElement(corev1.EventTypeWarning + "/UpgradeFailed"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/holder"))
		slot := leasesIn(ctx, slotNS, turnstile.RoleSlot)[0]
		gomega.Expect(slot.Annotations).To(gomega.HaveKeyWithValue(turnstile.AnnotationPhase, turnstile.PhaseFailed))

		next := createRequest(ctx, ns, "next", true, nil)
		w := runStage(ctx, "acquire", next, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_WAIT": "2s"}})
		gomega.Expect(w.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Waiting"))
		gomega.Expect(w.turnstileStatus()["message"]).To(gomega.ContainSubstring(ns + "/holder (upgrade failed)"))

		// Healing: a fresh healthy reading lets the failed upgrade through after all.
		w = startStage(ctx, "acquire", next, opts)
		upgrade(ctx, holder, opts)
		gomega.Eventually(w.session).WithTimeout(patience.Scale(15 * time.Second)).Should(gexec.Exit(0))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/next"))
		gomega.Expect(eventReasons(ctx, holder)).To(gomega.ContainElement(corev1.EventTypeNormal + "/Upgraded"))
	})

	ginkgo.It("counts unhealthy readings in a row across runs (retryAfter)", func(ctx context.Context) {
		opts := stageOpts{slotNamespace: slotNS, env: map[string]string{
			"TURNSTILE_WAIT": "2s", "TURNSTILE_FAILURE_THRESHOLD": "2", "TURNSTILE_MIN_HEALTHY": "1s"}}
		setHealth(ctx, holder, "unhealthy", freshNow(), "v2")
		first := runStage(ctx, "await", holder, 0, opts)
		gomega.Expect(first.turnstileStatus()).To(gomega.And(
			gomega.HaveKeyWithValue("phase", "Verifying"), gomega.HaveKeyWithValue("failures", 1.0)))
		// Kratix's status-writer merges status.yaml into the request when the pipeline ends.
		patchStatus(ctx, holder, map[string]any{"turnstile": first.turnstileStatus()})

		setHealth(ctx, holder, "unhealthy", time.Now().Add(time.Second), "v2")
		second := runStage(ctx, "await", holder, 0, opts)
		gomega.Expect(second.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Failed"), "the second reading in a row, in another run")
		gomega.Expect(second.turnstileStatus()["message"]).To(gomega.ContainSubstring("unhealthy 2 times in a row"))
	})

	ginkgo.It("fails an upgrade that is not healthy by the progress deadline", func(ctx context.Context) {
		s := runStage(ctx, "await", holder, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{
			"TURNSTILE_WAIT": "4s", "TURNSTILE_PROGRESS_DEADLINE": "1s", "TURNSTILE_MIN_HEALTHY": "1s",
		}})
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("phase", "Failed"))
		gomega.Expect(s.turnstileStatus()["message"]).To(gomega.ContainSubstring("progress deadline"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/holder"))
	})
})

var _ = ginkgo.Describe("the ratio gates", ginkgo.Label("area:turnstile", "area:gates"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	// wave puts four requests upgraded and healthy, and a fifth whose upgrade then fails, plus
	// untouched requests (not yet upgraded) in the given health.
	// The specs share one kind: each judges only its own requests.
	only := func() map[string]string { return map[string]string{"gates-spec": ns} }
	awaitOpts := func() stageOpts {
		return stageOpts{slotNamespace: slotNS, env: map[string]string{
			"TURNSTILE_WAIT": "3s", "TURNSTILE_FAILURE_THRESHOLD": "1", "TURNSTILE_MIN_HEALTHY": "1s",
			"TURNSTILE_GATES": "true", "TURNSTILE_GATE_SELECTOR": "gates-spec=" + ns}}
	}
	failFifth := func(ctx context.Context, untouched int, untouchedHealth string) *stage {
		ginkgo.GinkgoHelper()
		for i := range 4 {
			r := createRequest(ctx, ns, "done-"+strconv.Itoa(i), true, only())
			withStatus(ctx, r, rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: time.Now(), Message: "upgraded"}, "healthy", time.Now(), "v2")
		}
		for i := range untouched {
			r := createRequest(ctx, ns, "later-"+strconv.Itoa(i), true, only())
			withStatus(ctx, r, rollout.Status{}, untouchedHealth, time.Now(), "v1")
		}
		fifth := createRequest(ctx, ns, "fifth", true, only())
		runStage(ctx, "acquire", fifth, 0, stageOpts{slotNamespace: slotNS})
		setHealth(ctx, fifth, "unhealthy", freshNow(), "v2")
		return runStage(ctx, "await", fifth, 0, awaitOpts())
	}
	rolloutLease := func(ctx context.Context) map[string]string {
		l, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.RolloutName(promiseName), metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		return l.Annotations
	}

	ginkgo.It("pause the rollout when a wave's unhealthy share passes 10 %, naming the gate", func(ctx context.Context) {
		s := failFifth(ctx, 0, "")
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("paused the rollout: wave 1: unhealthy-ratio 1/5 = 20 % > 10 %"))
		a := rolloutLease(ctx)
		gomega.Expect(a).To(gomega.HaveKeyWithValue(turnstile.AnnotationPaused, "true"))
		gomega.Expect(a[turnstile.AnnotationPauseReason]).To(gomega.Equal("wave 1: unhealthy-ratio 1/5 = 20 % > 10 %"))
		fifth, err := dyn().Resource(databases).Namespace(ns).Get(ctx, "fifth", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(eventReasons(ctx, fifth)).To(gomega.ContainElement("Warning/RolloutPaused"))
	})

	ginkgo.It("blame the checks or the environment when untouched requests are as unhealthy", func(ctx context.Context) {
		failFifth(ctx, 5, "unhealthy")
		gomega.Expect(rolloutLease(ctx)[turnstile.AnnotationPauseReason]).To(gomega.ContainSubstring(
			"but 5/5 = 100 % of the requests not yet upgraded are unhealthy too: suspect the checks or the environment"))
	})

	ginkgo.It("judge each request on its own records, not on another Promise's", func(ctx context.Context) {
		for i := range 4 {
			r := createRequest(ctx, ns, "done-"+strconv.Itoa(i), true, only())
			// Kratix aggregates every record for namespace/name: cache's unhealthy one makes the
			// request's state unhealthy, though its own (database's) says healthy.
			st := rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: time.Now().Add(-time.Minute), Message: "upgraded"}
			own := map[string]any{"state": "healthy", "lastRun": time.Now().Unix(), "source": map[string]any{"name": "own", "namespace": ns},
				"details": health.Stamp{Promise: promiseName, RequestUID: string(r.GetUID()), Version: "v2"}.Apply(nil)}
			foreign := map[string]any{"state": "unhealthy", "lastRun": time.Now().Unix(), "source": map[string]any{"name": "cache", "namespace": ns},
				"details": health.Stamp{Promise: "cache", RequestUID: "another-uid", Version: "v9"}.Apply(nil)}
			patchStatus(ctx, r, map[string]any{rollout.StatusKey: st.Map(),
				"healthStatus": map[string]any{"state": "unhealthy", "healthRecords": []any{own, foreign}}})
		}
		fifth := createRequest(ctx, ns, "fifth", true, only())
		runStage(ctx, "acquire", fifth, 0, stageOpts{slotNamespace: slotNS})
		setHealth(ctx, fifth, "healthy", freshNow(), "v2")
		s := runStage(ctx, "await", fifth, 0, awaitOpts())
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("upgraded to v2"))
		gomega.Expect(rolloutLease(ctx)).NotTo(gomega.HaveKey(turnstile.AnnotationPaused), "no request of the wave is unhealthy by its own records")
	})

	ginkgo.It("stay quiet below the minimum sample", func(ctx context.Context) {
		fifth := createRequest(ctx, ns, "fifth", true, only())
		runStage(ctx, "acquire", fifth, 0, stageOpts{slotNamespace: slotNS})
		setHealth(ctx, fifth, "unhealthy", freshNow(), "v2")
		runStage(ctx, "await", fifth, 0, awaitOpts())
		gomega.Expect(rolloutLease(ctx)).NotTo(gomega.HaveKey(turnstile.AnnotationPaused), "1 of 1 is not a verdict")
	})
})

var _ = ginkgo.Describe("a request unhealthy before its upgrade", ginkgo.Label("area:turnstile", "area:health"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	ginkgo.It("is upgraded, and its failure is reported as its own and left out of the gates", func(ctx context.Context) {
		mine := map[string]string{"spec": ns} // the gates judge this spec's requests only
		sick := createRequest(ctx, ns, "sick", true, mine)
		well := createRequest(ctx, ns, "well", true, mine)
		setHealth(ctx, sick, "unhealthy", time.Now(), "v1")
		setHealth(ctx, well, "healthy", time.Now(), "v1")
		opts := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_SLOTS": "2"}}
		s := runStage(ctx, "acquire", sick, 0, opts)
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring(ns + "/sick was unhealthy before its upgrade"))
		runStage(ctx, "acquire", well, 0, opts)
		baselines := map[string]string{}
		for _, l := range leasesIn(ctx, slotNS, turnstile.RoleSlot) {
			baselines[l.Annotations[turnstile.AnnotationRequest]] = l.Annotations[turnstile.AnnotationBaseline]
		}
		gomega.Expect(baselines).To(gomega.And(gomega.HaveKeyWithValue(ns+"/sick", gomega.ContainSubstring("is unhealthy")),
			gomega.HaveKeyWithValue(ns+"/well", "")), "the attempt records how each stood before it")

		gated := stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_WAIT": "3s", "TURNSTILE_FAILURE_THRESHOLD": "1",
			"TURNSTILE_MIN_HEALTHY": "1s", "TURNSTILE_GATES": "true", "TURNSTILE_GATE_MIN_SAMPLE": "1", "TURNSTILE_MAX_FAILED_RATIO": "0",
			"TURNSTILE_GATE_SELECTOR": "spec=" + ns}}
		setHealth(ctx, sick, "unhealthy", freshNow(), "v2")
		s = runStage(ctx, "await", sick, 0, gated)
		gomega.Expect(s.turnstileStatus()).To(gomega.And(gomega.HaveKeyWithValue("phase", "Failed"),
			gomega.HaveKeyWithValue("message", gomega.ContainSubstring("(it was unhealthy before the upgrade: "))))
		record := leasesIn(ctx, slotNS, turnstile.RoleRollout)
		gomega.Expect(record).To(gomega.HaveLen(1))
		gomega.Expect(record[0].Annotations).NotTo(gomega.HaveKey(turnstile.AnnotationPaused), "a failure it brought along trips no gate")

		setHealth(ctx, well, "unhealthy", freshNow(), "v2")
		runStage(ctx, "await", well, 0, gated)
		record = leasesIn(ctx, slotNS, turnstile.RoleRollout)
		gomega.Expect(record[0].Annotations).To(gomega.And(gomega.HaveKeyWithValue(turnstile.AnnotationPaused, "true"),
			gomega.HaveKeyWithValue(turnstile.AnnotationPauseReason, gomega.ContainSubstring("failed-ratio 1/1"))), "the upgrade's own failure does")
	})

	ginkgo.It("with --preflight=wait, stays out of the queue until it is healthy", func(ctx context.Context) {
		sick := createRequest(ctx, ns, "sick", true, nil)
		setHealth(ctx, sick, "unhealthy", time.Now(), "v1")
		opts := stageOpts{slotNamespace: slotNS, args: []string{"--preflight=wait", "--wait=1s", "--retry-after=30s"}}
		s := runStage(ctx, "acquire", sick, 0, opts)
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("message", gomega.HavePrefix("waiting: unhealthy before its upgrade (")))
		gomega.Expect(s.metadata("workflow-control.yaml")).To(gomega.HaveKeyWithValue("retryAfter", "30s"))
		gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleTicket)).To(gomega.BeEmpty(), "it keeps no place in line")
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.BeEmpty())

		setHealth(ctx, sick, "healthy", time.Now(), "v1")
		runStage(ctx, "acquire", sick, 0, stageOpts{slotNamespace: slotNS, args: []string{"--preflight=wait", "--wait=" + patience.Scale(time.Minute).String()}})
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/sick"))
	})
})
