package e2e

import (
	"context"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/test/harness"
)

var apps = []string{"shop", "blog", "chat", "mail", "wiki"}

func phase(version, want string) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		p, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "phase")
		v, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "version")
		return p == want && v == version
	}
}

var _ = ginkgo.Describe("the example Promise", ginkgo.Ordered, func() {
	ginkgo.It("installs five requests at v1", func(ctx context.Context) {
		gomega.Expect(h.ApplyPromise(ctx, "v1")).To(gomega.Succeed())
		gomega.Expect(h.ApplyRequests(ctx)).To(gomega.Succeed())
		gomega.Expect(h.WaitForRequests(ctx, 3*time.Minute, phase("v1", "Upgraded"), apps...)).To(gomega.Succeed())
	}, ginkgo.NodeTimeout(5*time.Minute))
	_ = harness.PromiseName
})
