package integration

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

var _ = ginkgo.Describe("when upgrades may start: windows and the soak between waves", ginkgo.Label("area:windows"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	ginkgo.It("holds upgrades in the operator's freeze, and lets them through once it is cleared", func(ctx context.Context) {
		createPromise(ctx, "v2")
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "window", promiseName, "--allow", "0 2 * * * for 1h in Mars/Olympus")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.HavePrefix(`error: window "0 2 * * * for 1h in Mars/Olympus": time zone "Mars/Olympus"`))
		gomega.Expect(strings.Count(stderr, "\n")).To(gomega.Equal(1))
		_, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.RolloutName(promiseName), metav1.GetOptions{})
		gomega.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "a bad window writes nothing")

		// A freeze that began an hour ago, today only, for three hours.
		began := time.Now().UTC().Add(-time.Hour)
		freeze := fmt.Sprintf("%d %d %d %d * for 3h", began.Minute(), began.Hour(), began.Day(), int(began.Month()))
		code, out, stderr := kubectlTurnstile(ctx, slotNS, "window", promiseName, "--deny", freeze)
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		gomega.Expect(out).To(gomega.ContainSubstring("deny:       " + freeze + " in UTC"))

		code, out, stderr = kubectlTurnstile(ctx, slotNS, "window", promiseName, "--not-before", "2026-01-01T00:00:00Z")
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		gomega.Expect(out).To(gomega.ContainSubstring("deny:       "+freeze+" in UTC"), "a scheduled start keeps the freeze")
		gomega.Expect(out).To(gomega.ContainSubstring("not before: 2026-01-01T00:00:00Z"))

		_, waiting := tryAcquire(ctx, slotNS, promiseName, untilBlocked)
		gomega.Expect(waiting).To(gomega.HaveOccurred(), "a request took a slot inside a freeze")
		gomega.Expect(waiting.Wait.Message()).To(gomega.HavePrefix("waiting: in a deny window: opens "))
		gomega.Expect(waiting.Wait.Until).To(gomega.BeTemporally(">", time.Now()))

		code, out, _ = kubectlTurnstile(ctx, slotNS, "window", promiseName, "--deny", "none")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("deny:       none"))
		gomega.Expect(out).To(gomega.ContainSubstring("not before: 2026-01-01T00:00:00Z"), "lifting the freeze keeps the rest")
		grant, waiting := tryAcquire(ctx, slotNS, promiseName, untilGranted)
		gomega.Expect(waiting).ToNot(gomega.HaveOccurred())
		gomega.Expect(grant).NotTo(gomega.BeNil())

		code, out, _ = kubectlTurnstile(ctx, slotNS, "window", promiseName, "--clear")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("not before: -"))
	})

	ginkgo.It("hands back to Kratix until the window opens, not every --retry-after", func(ctx context.Context) {
		req := createRequest(ctx, ns, "scheduled", true, nil)
		opens := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
		s := runStage(ctx, "acquire", req, 0, stageOpts{slotNamespace: slotNS,
			args: []string{"--wait=1s", "--retry-after=30s", "--not-before=" + opens.Format(time.RFC3339)}})
		retryAfter, err := time.ParseDuration(s.metadata("workflow-control.yaml")["retryAfter"].(string))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		// Back at the opening, or within half a lease to keep its place: 5 minutes by default.
		gomega.Expect(retryAfter).To(gomega.Equal(turnstile.DefaultLeaseDuration / 2))
		gomega.Expect(s.turnstileStatus()).To(gomega.And(gomega.HaveKeyWithValue("phase", "Waiting"),
			gomega.HaveKeyWithValue("message", gomega.HavePrefix("waiting: scheduled to start at "+opens.Format("2006-01-02 15:04")))))
	})

	ginkgo.It("starts a wave only when the wave before it is done and has soaked", func(ctx context.Context) {
		canary := createRequest(ctx, ns, "canary", true, map[string]string{turnstile.WaveKey: "0"})
		later := createRequest(ctx, ns, "later", true, nil)
		args := []string{"--slots=3", "--wave-soak=1h", "--wait=1s", "--retry-after=30s"}
		runStage(ctx, "acquire", canary, 0, stageOpts{slotNamespace: slotNS, args: args})

		s := runStage(ctx, "acquire", later, 0, stageOpts{slotNamespace: slotNS, args: args})
		gomega.Expect(s.metadata("workflow-control.yaml")).To(gomega.HaveKeyWithValue("retryAfter", "30s"))
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("message",
			"waiting: wave 0 is still upgrading ("+ns+"/canary): wave 1 starts 1h after it is done"), "two slots are free, but wave 0 is not done")

		upgrade(ctx, canary, stageOpts{slotNamespace: slotNS})
		s = runStage(ctx, "acquire", later, 0, stageOpts{slotNamespace: slotNS, args: args})
		retryAfter, err := time.ParseDuration(s.metadata("workflow-control.yaml")["retryAfter"].(string))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(retryAfter).To(gomega.Equal(turnstile.DefaultLeaseDuration/2), "it comes back within half a lease, to keep its place for when the soak ends")
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("message", gomega.HavePrefix("waiting: wave 0 soaks for 1h after its last upgrade: wave 1 starts at ")))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.BeEmpty())
	})

	ginkgo.It("counts --slots as a share of the fleet once, when the rollout begins, and caps the canary wave", func(ctx context.Context) {
		canaries := []*unstructured.Unstructured{
			createRequest(ctx, ns, "canary-1", true, map[string]string{turnstile.WaveKey: "0"}),
			createRequest(ctx, ns, "canary-2", true, map[string]string{turnstile.WaveKey: "0"}),
		}
		var later []*unstructured.Unstructured
		for i := range 4 {
			later = append(later, createRequest(ctx, ns, fmt.Sprintf("later-%d", i), true, nil))
		}
		// Runs that should wait give up after a second; runs that should take have a busy
		// machine's while.
		opts := stageOpts{slotNamespace: slotNS, args: []string{"--slots=50%", "--wave-slots=0=1", "--wait=1s", "--retry-after=30s"}}
		takes := stageOpts{slotNamespace: slotNS, args: []string{"--slots=50%", "--wave-slots=0=1", "--wait=" + patience.Scale(time.Minute).String(), "--retry-after=30s"}}
		s := runStage(ctx, "acquire", canaries[0], 0, takes)
		// The specs share one kind, so the fleet counts other specs' requests too.
		counted := regexp.MustCompile(`--slots 50% of (\d+) requests: (\d+) slot\(s\)`).FindStringSubmatch(s.stdout())
		gomega.Expect(counted).NotTo(gomega.BeNil(), s.stdout())
		fleet, _ := strconv.Atoi(counted[1])
		n, _ := strconv.Atoi(counted[2])
		gomega.Expect(fleet).To(gomega.BeNumerically(">=", 6))
		gomega.Expect(n).To(gomega.Equal(fleet / 2))
		record, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.RolloutName(promiseName), metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(record.Annotations).To(gomega.And(gomega.HaveKeyWithValue(turnstile.AnnotationSlots, counted[2]),
			gomega.HaveKeyWithValue(turnstile.AnnotationWaveSlots, "0=1")))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/canary-1"))

		s = runStage(ctx, "acquire", canaries[1], 0, opts)
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("message", "waiting for a rollout slot: 1st in queue; slot held by "+ns+"/canary-1"),
			"the canary wave goes one at a time, with slots free")
		s = runStage(ctx, "acquire", later[0], 0, opts)
		gomega.Expect(s.stdout()).NotTo(gomega.ContainSubstring("--slots 50% of"), "the share is counted once, by the rollout's first request")
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("message", gomega.HavePrefix("waiting for a rollout slot: 2nd in queue")),
			"no later wave starts beside the capped canary wave")

		upgrade(ctx, canaries[0], stageOpts{slotNamespace: slotNS})
		runStage(ctx, "acquire", canaries[1], 0, takes)
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.Equal(ns + "/canary-2"))
		upgrade(ctx, canaries[1], stageOpts{slotNamespace: slotNS})

		held := 0
		for i, r := range later {
			o := opts
			if i < n {
				o = takes
			}
			runStage(ctx, "acquire", r, 0, o)
		}
		for i := range n {
			if holderOf(ctx, slotNS, i) != "" {
				held++
			}
		}
		gomega.Expect(held).To(gomega.Equal(min(len(later), n)), "once the canary wave is done, the next goes as wide as the share")
	})
})
