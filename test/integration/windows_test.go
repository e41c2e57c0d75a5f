package integration

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
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
		gomega.Expect(waiting).NotTo(gomega.BeNil(), "a request took a slot inside a freeze")
		gomega.Expect(waiting.Wait.Message()).To(gomega.HavePrefix("waiting: in a deny window: opens "))
		gomega.Expect(waiting.Wait.Until).To(gomega.BeTemporally(">", time.Now()))

		code, out, _ = kubectlTurnstile(ctx, slotNS, "window", promiseName, "--deny", "none")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("deny:       none"))
		gomega.Expect(out).To(gomega.ContainSubstring("not before: 2026-01-01T00:00:00Z"), "lifting the freeze keeps the rest")
		grant, waiting := tryAcquire(ctx, slotNS, promiseName, untilGranted)
		gomega.Expect(waiting).To(gomega.BeNil())
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
})
