package integration

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/test/patience"
)

// These specs prove the control plane under every other spec is the real thing: optimistic
// concurrency, watches and RBAC behave as they do in a cluster.
var _ = ginkgo.Describe("the test control plane", ginkgo.Label("area:harness"), func() {
	var ns string
	ginkgo.BeforeEach(func() { ns = env.Namespace("harness") })

	ginkgo.It("gives exactly one winner when two Lease updates race from the same resourceVersion", func(ctx context.Context) {
		leases := env.Client.CoordinationV1().Leases(ns)
		lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "race"}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		for round := range 10 {
			results := make([]error, 2)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Distinct values each round: an update that changes nothing succeeds
					// without a write, so it would not contend.
					mine := lease.DeepCopy()
					mine.Spec.HolderIdentity = ptr.To(fmt.Sprintf("holder-%d-%d", round, i))
					_, results[i] = leases.Update(ctx, mine, metav1.UpdateOptions{})
				}()
			}
			wg.Wait()
			wins, conflicts := 0, 0
			for _, err := range results {
				switch {
				case err == nil:
					wins++
				case apierrors.IsConflict(err):
					conflicts++
				default:
					ginkgo.Fail("unexpected error: " + err.Error())
				}
			}
			gomega.Expect([]int{wins, conflicts}).To(gomega.Equal([]int{1, 1}), "round %d", round)
			lease, err = leases.Get(ctx, "race", metav1.GetOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
		}
	})

	ginkgo.It("delivers a Lease change to a watch started from an older resourceVersion", func(ctx context.Context) {
		leases := env.Client.CoordinationV1().Leases(ns)
		lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "watched"}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		w, err := leases.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", "watched").String(),
			ResourceVersion: lease.ResourceVersion,
		})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		defer w.Stop()

		lease.Spec.HolderIdentity = ptr.To("watcher-test")
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		var event watch.Event
		gomega.Eventually(w.ResultChan()).WithTimeout(patience.Scale(5 * time.Second)).Should(gomega.Receive(&event))
		gomega.Expect(event.Type).To(gomega.Equal(watch.Modified))
		gomega.Expect(event.Object.(*coordinationv1.Lease).Spec.HolderIdentity).To(gomega.HaveValue(gomega.Equal("watcher-test")))
	})

	ginkgo.It("forbids a ServiceAccount to update Leases until a Role grants it", func(ctx context.Context) {
		lease, err := env.Client.CoordinationV1().Leases(ns).Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "guarded"}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		asSA := kubernetes.NewForConfigOrDie(env.AsServiceAccount(ns, "pipeline"))
		update := func(ctx context.Context) error {
			mine := lease.DeepCopy()
			mine.Spec.HolderIdentity = ptr.To("pipeline")
			_, err := asSA.CoordinationV1().Leases(ns).Update(ctx, mine, metav1.UpdateOptions{})
			return err
		}

		err = update(ctx)
		gomega.Expect(apierrors.IsForbidden(err)).To(gomega.BeTrue(), "want Forbidden, got %v", err)

		_, err = env.Client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "lease-writer"},
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "update"},
			}},
		}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = env.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "lease-writer"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "lease-writer"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "pipeline", Namespace: ns}},
		}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		// The authorizer's informers see the new binding a moment after it is written.
		gomega.Eventually(update).WithContext(ctx).WithTimeout(patience.Scale(10 * time.Second)).Should(gomega.Succeed())
	})
})
