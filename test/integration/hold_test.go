package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// createNamespaces creates namespaces for a spec's requests and slots.
func createNamespaces(ctx context.Context, names ...string) {
	ginkgo.GinkgoHelper()
	for _, name := range names {
		_, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
	}
}

// Bounds for tryAcquire.
var (
	untilBlocked = patience.Scale(5 * time.Second)
	untilGranted = patience.Scale(time.Minute)
)

// holdKubeconfig is a kubeconfig for an operator bound, in the slot namespace, to exactly the
// ClusterRole config/operator ships for the platform-wide hold.
func holdKubeconfig(ctx context.Context, slotNS string) string {
	ginkgo.GinkgoHelper()
	var role rbacv1.ClusterRole
	gomega.Expect(yaml.Unmarshal(shipped("config", "operator", "rbac.yaml"), &role)).To(gomega.Succeed())
	gomega.Expect(role.Rules).NotTo(gomega.BeEmpty())
	role.ObjectMeta = metav1.ObjectMeta{GenerateName: "turnstile-operator-hold-"}
	created, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(env.Client.RbacV1().ClusterRoles().Delete, created.Name, metav1.DeleteOptions{})
	const sa = "oncall"
	_, err = env.Client.CoreV1().ServiceAccounts(slotNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = env.Client.RbacV1().RoleBindings(slotNS).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "oncall-hold"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: created.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: slotNS}}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	path := filepath.Join(scratch, slotNS+"-oncall.kubeconfig")
	gomega.Expect(os.WriteFile(path, env.ServiceAccountKubeconfig(ctx, slotNS, sa), 0o600)).To(gomega.Succeed())
	return path
}

// tryAcquire asks for a slot for a request of promise, giving up after within: the grant, or the
// place it waits in. A spec that expects a grant gives it long (it returns as soon as it has
// one); one that expects a wait gives it long enough for a first decision on a busy machine.
func tryAcquire(ctx context.Context, slotNS, promise string, within time.Duration) (*turnstile.Grant, *turnstile.WaitingError) {
	ginkgo.GinkgoHelper()
	ts, err := turnstile.New(turnstile.Config{Leases: env.Client.CoordinationV1(), Namespace: slotNS, Promise: promise})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	req := turnstile.Request{GroupVersionResource: databases, Kind: "Database", Namespace: "default", Name: promise + "-1", UID: types.UID("uid-" + promise), Wave: 1}
	waitCtx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	grant, err := ts.Acquire(waitCtx, req, turnstile.AcquireOptions{Target: "v2"})
	var waiting *turnstile.WaitingError
	if errors.As(err, &waiting) {
		return nil, waiting
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return grant, nil
}

var _ = ginkgo.Describe("stopping the line: pause --all", ginkgo.Ordered, ginkgo.Label("area:hold"), func() {
	const slotNS = "held-slots"
	var kubeconfig string

	ginkgo.BeforeAll(func(ctx context.Context) {
		createNamespaces(ctx, slotNS)
		kubeconfig = holdKubeconfig(ctx, slotNS)
	})

	oncall := func(ctx context.Context, args ...string) (int, string, string) {
		return kubectlTurnstileAs(ctx, kubeconfig, slotNS, args...)
	}

	ginkgo.It("holds every Promise's rollout until resume --all, with only the rights config/operator ships", func(ctx context.Context) {
		code, out, stderr := oncall(ctx, "pause", "--all", "--reason", "incident 42")
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		gomega.Expect(out).To(gomega.Equal("held every rollout in " + slotNS + ": incident 42\n"))

		for _, promise := range []string{"database", "cache"} {
			grant, waiting := tryAcquire(ctx, slotNS, promise, untilBlocked)
			gomega.Expect(grant).To(gomega.BeNil(), "%s took a slot during a platform-wide hold", promise)
			gomega.Expect(waiting.Wait.Blocked).To(gomega.BeTrue())
			gomega.Expect(waiting.Wait.Message()).To(gomega.Equal("waiting: platform-wide hold: incident 42 (kubectl turnstile resume --all lifts it)"))
		}

		code, out, stderr = oncall(ctx, "resume", "--all")
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		gomega.Expect(out).To(gomega.Equal("lifted the platform-wide hold in " + slotNS + "\n"))
		for _, promise := range []string{"database", "cache"} {
			grant, waiting := tryAcquire(ctx, slotNS, promise, untilGranted)
			gomega.Expect(waiting).ToNot(gomega.HaveOccurred(), "%s still waits after the hold was lifted", promise)
			gomega.Expect(grant.Slot.Index).To(gomega.Equal(0))
		}
	})

	ginkgo.It("refuses what makes no sense in one line, writing nothing", func(ctx context.Context) {
		code, _, stderr := oncall(ctx, "resume", "--all")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.Equal("error: no platform-wide hold in " + slotNS + " to lift\n"))
		code, _, stderr = oncall(ctx, "pause", "--all", "database")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.Equal("error: --all acts on every Promise: name none (got \"database\")\n"))
		code, _, stderr = oncall(ctx, "pause")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.ContainSubstring("accepts 1 arg(s), received 0"))
		l, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.HoldName, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(l.Annotations).NotTo(gomega.HaveKey(turnstile.AnnotationPaused))
	})
})
