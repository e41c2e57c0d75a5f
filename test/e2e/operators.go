package e2e

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// secondRequests are the second Promise's requests: alpha its canary.
const secondRequests = `apiVersion: example.turnstile.kratix.io/v1alpha1
kind: WebAppB
metadata: {name: alpha, namespace: default, labels: {turnstile.kratix.io/wave: "0"}}
spec: {message: "alpha"}
---
apiVersion: example.turnstile.kratix.io/v1alpha1
kind: WebAppB
metadata: {name: beta, namespace: default}
spec: {message: "beta"}
`

// kubectlTurnstile runs the plugin against the platform, as an operator would, and expects it
// to exit 0.
func kubectlTurnstile(ctx context.Context, args ...string) string {
	ginkgo.GinkgoHelper()
	code, out := kubectlTurnstileCode(ctx, args...)
	gomega.Expect(code).To(gomega.Equal(0), "kubectl turnstile %s: %s", strings.Join(args, " "), out)
	return out
}

// kubectlTurnstileCode is kubectlTurnstile with its exit code, and stderr after stdout.
func kubectlTurnstileCode(ctx context.Context, args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append(args, "--kubeconfig", h.Kubeconfig), &out, &errOut, clock.RealClock{})
	return code, out.String() + errOut.String()
}

// began says whether any of the named requests of the example (or of the second Promise) began
// its upgrade to version.
func began(ctx context.Context, version string, second bool, names ...string) bool {
	ginkgo.GinkgoHelper()
	api := harness.WebApps
	if second {
		api = harness.SecondWebApps
	}
	for _, n := range names {
		u, err := h.Dynamic.Resource(api).Namespace("default").Get(ctx, n, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		status, _ := u.Object["status"].(map[string]any)
		if st, _ := rollout.StatusFrom(status); st.Began(version) {
			return true
		}
	}
	return false
}

// operatorSpecs are the operators' controls on real Kratix, once the story is told: stop the
// line across two Promises, a scheduled start, and a soak between waves. survivors are the
// example's requests left by the story.
func operatorSpecs(trackCtx context.Context, survivors func() []string) {
	ginkgo.It("stops the line across two Promises, and starts both again", func(ctx context.Context) {
		gomega.Expect(h.ApplyPromiseAs(ctx, "v1", harness.Variant{Second: true})).To(gomega.Succeed())
		gomega.Expect(h.Apply(ctx, []byte(secondRequests))).To(gomega.Succeed())
		gomega.Expect(h.WaitFor(ctx, harness.SecondWebApps, patience.Scale(3*time.Minute), harness.AtPhase("v1", "Upgraded"), "alpha", "beta")).To(gomega.Succeed())

		kubectlTurnstile(ctx, "pause", "--all", "--reason", "incident drill")
		ginkgo.DeferCleanup(func(ctx context.Context) { kubectlTurnstileCode(ctx, "resume", "--all") }) // an error once resumed
		gomega.Expect(h.ApplyPromise(ctx, "v6")).To(gomega.Succeed())
		gomega.Expect(h.ApplyPromiseAs(ctx, "v6", harness.Variant{Second: true})).To(gomega.Succeed())
		held := "waiting: platform-wide hold: incident drill"
		first := survivors()[0]
		gomega.Eventually(func() string { return harness.Message(get(ctx, first)) }).WithTimeout(patience.Scale(time.Minute)).
			Should(gomega.HavePrefix(held), "the example's requests wait on the hold")
		gomega.Eventually(func() string {
			u, err := h.Dynamic.Resource(harness.SecondWebApps).Namespace("default").Get(ctx, "alpha", metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			return harness.Message(u)
		}).WithTimeout(patience.Scale(time.Minute)).Should(gomega.HavePrefix(held), "and so do the second Promise's")
		gomega.Consistently(func() bool {
			return began(ctx, "v6", false, survivors()...) || began(ctx, "v6", true, "alpha", "beta")
		}).WithTimeout(10*time.Second).WithPolling(500*time.Millisecond).Should(gomega.BeFalse(), "no upgrade starts anywhere while the line is stopped")
		code, out := kubectlTurnstileCode(ctx, "status", harness.PromiseName, "-n", "default")
		gomega.Expect(code).To(gomega.Equal(1), "status exits 1 while the line is stopped")
		gomega.Expect(out).To(gomega.ContainSubstring("Held platform-wide: incident drill"))

		kubectlTurnstile(ctx, "resume", "--all")
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(4*time.Minute), harness.AtPhase("v6", "Upgraded"), survivors()...)).To(gomega.Succeed())
		gomega.Expect(h.WaitFor(ctx, harness.SecondWebApps, patience.Scale(3*time.Minute), harness.AtPhase("v6", "Upgraded"), "alpha", "beta")).To(gomega.Succeed())

		// The second Promise goes, with its requests and their apps.
		gomega.Expect(h.Dynamic.Resource(harness.Promises).Delete(ctx, harness.SecondPromiseName, metav1.DeleteOptions{})).To(gomega.Succeed())
		gomega.Eventually(func() error {
			_, err := h.Dynamic.Resource(harness.Promises).Get(ctx, harness.SecondPromiseName, metav1.GetOptions{})
			return err
		}).WithTimeout(patience.Scale(2 * time.Minute)).Should(gomega.MatchError(gomega.ContainSubstring("not found")))
		gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(time.Minute)).ShouldNot(gomega.Or(gomega.HaveKey("alpha"), gomega.HaveKey("beta")))
	}, ginkgo.NodeTimeout(patience.Scale(10*time.Minute)))

	ginkgo.It("holds a rollout for its scheduled start, and lets it through when it comes", func(ctx context.Context) {
		// Long enough for Kratix to start the requests' acquire pods before it.
		start := time.Now().Add(patience.Scale(60 * time.Second)).Truncate(time.Second)
		kubectlTurnstile(ctx, "window", harness.PromiseName, "--not-before", start.UTC().Format(time.RFC3339))
		v7 := h.Track(trackCtx, "v7")
		gomega.Expect(h.ApplyPromise(ctx, "v7")).To(gomega.Succeed())
		gomega.Eventually(func() string { return harness.Message(get(ctx, survivors()[0])) }).WithTimeout(patience.Scale(time.Minute)).
			Should(gomega.HavePrefix("waiting: scheduled to start at "), "the waiting requests say when")
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(5*time.Minute), harness.AtPhase("v7", "Upgraded"), survivors()...)).To(gomega.Succeed())
		gomega.Expect(names(v7.Upgrades())).To(gomega.ConsistOf(survivors()))
		for _, u := range v7.Upgrades() {
			gomega.Expect(u.Began).To(gomega.BeTemporally(">=", start), "%s began before the scheduled start", u.Name)
		}
		kubectlTurnstile(ctx, "window", harness.PromiseName, "--clear")
	}, ginkgo.NodeTimeout(patience.Scale(7*time.Minute)))

	ginkgo.It("soaks between waves: the next wave starts only once the canary wave has been done for the soak", func(ctx context.Context) {
		// The request deleted in the story comes back, a first install at v7, so that every wave
		// has its requests again.
		gomega.Expect(h.ApplyRequests(ctx)).To(gomega.Succeed())
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(3*time.Minute), harness.AtPhase("v7", "Upgraded"), harness.Requests...)).To(gomega.Succeed())
		soak := patience.Scale(20 * time.Second)
		v8 := h.Track(trackCtx, "v8")
		gomega.Expect(h.ApplyPromiseAs(ctx, "v8", harness.Variant{AcquireEnv: map[string]string{"TURNSTILE_WAVE_SOAK": soak.String()}})).To(gomega.Succeed())
		gomega.Eventually(func() string {
			for _, n := range harness.Requests {
				if m := harness.Message(get(ctx, n)); strings.Contains(m, "soaks for") {
					return m
				}
			}
			return ""
		}).WithTimeout(patience.Scale(2*time.Minute)).WithPolling(200*time.Millisecond).Should(gomega.ContainSubstring("wave 0 soaks for"),
			"a waiting request says the canary wave is soaking, and until when")
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(5*time.Minute), harness.AtPhase("v8", "Upgraded"), harness.Requests...)).To(gomega.Succeed())
		ups := v8.Upgrades()
		gomega.Expect(v8.First()).To(gomega.Equal(harness.Canary))
		var canaryDone time.Time
		for _, u := range ups {
			if u.Name == harness.Canary {
				canaryDone = u.Done
			}
		}
		for _, u := range ups {
			if u.Name != harness.Canary {
				// Upgraded shows before the slot's release, which the soak counts from; the
				// tracker samples the statuses a moment late.
				gomega.Expect(u.Began).To(gomega.BeTemporally(">=", canaryDone.Add(soak-patience.Scale(5*time.Second))), "%s began within the soak after the canary", u.Name)
			}
		}
	}, ginkgo.NodeTimeout(patience.Scale(9*time.Minute)))
}
