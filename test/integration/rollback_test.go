package integration

import (
	"context"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kratix-turnstile/turnstile/pkg/bindings"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// installBindings installs the ResourceBinding CRD of later Kratix releases for one spec.
func installBindings(ctx context.Context) {
	ginkgo.GinkgoHelper()
	crds, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{"testdata/bindings"}, ErrorIfPathMissing: true})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func(ctx context.Context) {
		gomega.Expect(envtest.UninstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{"testdata/bindings"}})).To(gomega.Succeed())
		crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		gomega.Eventually(func() bool {
			_, err := dyn().Resource(crdGVR).Get(ctx, crds[0].Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.BeTrue())
	})
}

func createBinding(ctx context.Context, ns, request, version string) {
	ginkgo.GinkgoHelper()
	b := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.kratix.io/v1alpha1", "kind": "ResourceBinding",
		"metadata": map[string]any{"name": request + "-binding", "namespace": ns,
			"labels": map[string]any{"kratix.io/promise-name": promiseName, "kratix.io/resource-name": request}},
		"spec": map[string]any{"version": version, "promiseRef": map[string]any{"name": promiseName},
			"resourceRef": map[string]any{"name": request, "namespace": ns}},
	}}
	gomega.Eventually(func() error {
		_, err := dyn().Resource(bindings.GVR).Namespace(ns).Create(ctx, b, metav1.CreateOptions{})
		return err
	}).WithTimeout(patience.Scale(10*time.Second)).Should(gomega.Succeed(), "the CRD is being established")
}

func bindingVersion(ctx context.Context, ns, request string) string {
	ginkgo.GinkgoHelper()
	u, err := dyn().Resource(bindings.GVR).Namespace(ns).Get(ctx, request+"-binding", metav1.GetOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	v, _, _ := unstructured.NestedString(u.Object, "spec", "version")
	return v
}

var _ = ginkgo.Describe("rollback where Kratix has ResourceBindings", ginkgo.Serial, ginkgo.Label("area:cli", "area:rollback"), func() {
	ginkgo.It("aborts the rollout and moves the requests it touched back, through the turnstile", ginkgo.SpecTimeout(patience.Scale(2*time.Minute)), func(ctx context.Context) {
		installBindings(ctx)
		createPromise(ctx, "v2")
		slotNS, ns := env.Namespace("slots"), env.Namespace("requests")
		putLease(ctx, slotNS, turnstile.RolloutName(promiseName), turnstile.RoleRollout, "", time.Time{},
			map[string]string{turnstile.AnnotationTarget: "v2", turnstile.AnnotationPrevious: "v1"})
		for name, phase := range map[string]string{"up-1": rollout.PhaseUpgraded, "up-2": rollout.PhaseFailed, "later": ""} {
			r := createRequest(ctx, ns, name, true, nil)
			st := rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v1", Since: time.Now()}
			if phase != "" {
				st = rollout.Status{Phase: phase, Version: "v2", Since: time.Now()}
			}
			withStatus(ctx, r, st, "", time.Time{}, "")
			createBinding(ctx, ns, name, bindings.Latest)
		}

		code, out, stderr := kubectlTurnstile(ctx, slotNS, "rollback", promiseName, "-n", ns)
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		gomega.Expect(out).To(gomega.ContainSubstring("moved 2 request(s) back to v1, through the turnstile: " + ns + "/up-1, " + ns + "/up-2"))
		gomega.Expect(bindingVersion(ctx, ns, "up-1")).To(gomega.Equal("v1"))
		gomega.Expect(bindingVersion(ctx, ns, "up-2")).To(gomega.Equal("v1"))
		gomega.Expect(bindingVersion(ctx, ns, "later")).To(gomega.Equal(bindings.Latest), "it never reached v2")

		// Kratix re-runs up-1 at v1: its acquire takes the version from its binding, and goes
		// through the turnstile as the rollout of v1, which the abort of v2 does not hold back.
		up1, err := dyn().Resource(databases).Namespace(ns).Get(ctx, "up-1", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		s := runStage(ctx, "acquire", up1, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_TARGET_VERSION": ""}})
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("version", "v1"))
		l, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.RolloutName(promiseName), metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(l.Annotations).To(gomega.And(
			gomega.HaveKeyWithValue(turnstile.AnnotationTarget, "v1"), gomega.HaveKeyWithValue(turnstile.AnnotationPrevious, "v2"),
			gomega.HaveKeyWithValue(turnstile.AnnotationAborted, "v2")))
	})
})
