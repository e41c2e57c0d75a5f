package e2e

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/pkg/bindings"
	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// binding is a request's ResourceBinding, which current Kratix creates for every request.
func binding(ctx context.Context, request string) bindings.Binding {
	ginkgo.GinkgoHelper()
	list, ok, err := bindings.List(ctx, h.Dynamic, harness.PromiseName, "default", request)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(ok && len(list) == 1).To(gomega.BeTrue(), "%s has one ResourceBinding", request)
	return list[0]
}

// upgradeSucceeded is the status of the UpgradeSucceeded condition of a request's binding.
func upgradeSucceeded(ctx context.Context, request string) string {
	ginkgo.GinkgoHelper()
	b := binding(ctx, request)
	u, err := h.Dynamic.Resource(bindings.GVR).Namespace(b.Namespace).Get(ctx, b.Name, metav1.GetOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "UpgradeSucceeded" {
			return fmt.Sprint(m["status"])
		}
	}
	return ""
}

// expectRollback runs `kubectl turnstile rollback` on a rollout at from, and expects requests'
// bindings pinned back to to, and the requests taken back through the turnstile: one at a time,
// each verified healthy at to, the canary first when canaryFirst.
func expectRollback(ctx, trackCtx context.Context, from, to string, requests []string, canaryFirst bool) {
	ginkgo.GinkgoHelper()
	back := h.Track(trackCtx, to)
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, []string{"rollback", harness.PromiseName, "-n", "default", "--kubeconfig", h.Kubeconfig}, &out, &errOut, clock.RealClock{})
	gomega.Expect(code).To(gomega.Equal(0), errOut.String())
	gomega.Expect(out.String()).To(gomega.ContainSubstring("moved %d request(s) back to %s", len(requests), to))
	for _, r := range requests {
		b := binding(ctx, r)
		gomega.Expect(b.Version).To(gomega.Equal(to), "%s's binding is pinned back", r)
		gomega.Expect(b.RolledBackFrom).To(gomega.Equal(from), "%s's binding says which rollout it undid", r)
	}
	gomega.Expect(h.WaitForRequests(ctx, patience.Scale(4*time.Minute), harness.AtPhase(to, "Upgraded"), requests...)).To(gomega.Succeed())
	want := map[string]string{}
	for _, r := range requests {
		want[r] = to
	}
	gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Equal(want))
	time.Sleep(time.Second) // one more sample for the tracker
	gomega.Expect(back.MaxInFlight()).To(gomega.Equal(1), "never more than one request going back at once")
	gomega.Expect(names(back.Upgrades())).To(gomega.ConsistOf(requests))
	if canaryFirst {
		gomega.Expect(back.First()).To(gomega.Equal(harness.Canary), "the canary went back first")
	}
}
