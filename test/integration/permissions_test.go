package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/test/patience"
	"github.com/kratix-turnstile/turnstile/workflows"
)

// shippedPipeline is a Pipeline from workflows/resource-workflows.yaml.
type shippedPipeline struct {
	Metadata struct{ Name string }
	Spec     struct {
		RBAC struct {
			Permissions []struct {
				rbacv1.PolicyRule `json:",inline"`
				ResourceNamespace string `json:"resourceNamespace"`
			}
		} `json:"rbac"`
	}
}

// shippedWorkflows reads the workflows we ship, filled in for the test Promise; the slot
// namespace they name becomes slotNS.
func shippedWorkflows(slotNS string) map[string][]shippedPipeline {
	ginkgo.GinkgoHelper()
	text := strings.NewReplacer("${PROMISE_GROUP}", databases.Group, "${PROMISE_PLURAL}", databases.Resource,
		"${STAGE_IMAGE}", "stage:test", "kratix-platform-system", slotNS).Replace(workflows.Resource)
	out := map[string][]shippedPipeline{}
	gomega.Expect(yaml.Unmarshal([]byte(text), &out)).To(gomega.Succeed())
	return out
}

// grantLikeKratix gives a pipeline's ServiceAccount what Kratix gives it: the default Role on
// the request's kind in the request's namespace, plus the pipeline's rbac.permissions (a Role
// here; a ClusterRole bound in resourceNamespace; or, for "*", bound cluster-wide).
func grantLikeKratix(ctx context.Context, ns, sa string, p *shippedPipeline) {
	ginkgo.GinkgoHelper()
	rbac := env.Client.RbacV1()
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	bind := func(namespace, kind, role string) {
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}
		meta := metav1.ObjectMeta{GenerateName: sa + "-"}
		if namespace == "" {
			crb, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: subject}, metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			ginkgo.DeferCleanup(rbac.ClusterRoleBindings().Delete, crb.Name, metav1.DeleteOptions{})
			return
		}
		_, err := rbac.RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: ref, Subjects: subject}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
	}
	role, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{databases.Group}, Resources: []string{databases.Resource, databases.Resource + "/status"}, Verbs: []string{"get", "list", "update", "create", "patch"}},
		{APIGroups: []string{"platform.kratix.io"}, Resources: []string{"works"}, Verbs: []string{"*"}},
	}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	bind(ns, "Role", role.Name)
	if p == nil {
		return
	}
	for _, perm := range p.Spec.RBAC.Permissions {
		if perm.ResourceNamespace == "" {
			r, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-"}, Rules: []rbacv1.PolicyRule{perm.PolicyRule}}, metav1.CreateOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			bind(ns, "Role", r.Name)
			continue
		}
		cr, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: sa + "-"}, Rules: []rbacv1.PolicyRule{perm.PolicyRule}}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(rbac.ClusterRoles().Delete, cr.Name, metav1.DeleteOptions{})
		if perm.ResourceNamespace == "*" {
			bind("", "ClusterRole", cr.Name)
		} else {
			bind(perm.ResourceNamespace, "ClusterRole", cr.Name)
		}
	}
}

// pipelineKubeconfig creates the pipeline's ServiceAccount, grants it what Kratix would, and
// returns a kubeconfig with a real token for it.
func pipelineKubeconfig(ctx context.Context, ns, sa string, p *shippedPipeline) string {
	ginkgo.GinkgoHelper()
	kubeconfig := env.ServiceAccountKubeconfig(ctx, ns, sa)
	grantLikeKratix(ctx, ns, sa, p)
	path := filepath.Join(scratch, ns+"-"+sa+".kubeconfig")
	gomega.Expect(os.WriteFile(path, kubeconfig, 0o600)).To(gomega.Succeed())
	return path
}

var _ = ginkgo.Describe("the permissions the workflows ship", ginkgo.Label("area:turnstile", "area:rbac"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func(ctx context.Context) {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
		createPromise(ctx, "v2")
	})

	ginkgo.It("are enough for every stage, and no stage needs the admin", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		wf := shippedWorkflows(slotNS)
		gomega.Expect(wf["configure"]).To(gomega.HaveLen(2))
		gomega.Expect(wf["delete"]).To(gomega.HaveLen(1))
		acquireKC := pipelineKubeconfig(ctx, ns, "database-resource-configure-turnstile-acquire", &wf["configure"][0])
		awaitKC := pipelineKubeconfig(ctx, ns, "database-resource-configure-turnstile-await", &wf["configure"][1])
		releaseKC := pipelineKubeconfig(ctx, ns, "database-resource-delete-turnstile-release", &wf["delete"][0])
		// The target version comes from the Promise, so reading it is exercised too; and the
		// requests are listed, so that earlier waves go first (a short grace: other specs'
		// requests share the kind).
		noTarget := map[string]string{"TURNSTILE_TARGET_VERSION": "", "TURNSTILE_WAVE_GRACE": "1s"}

		first := createRequest(ctx, ns, "first", true, nil)
		second := createRequest(ctx, ns, "second", true, nil)
		s := runStage(ctx, "acquire", first, 0, stageOpts{slotNamespace: slotNS, kubeconfig: acquireKC, env: noTarget})
		gomega.Expect(s.stdout()).NotTo(gomega.ContainSubstring("could not"))
		waiting := startStage(ctx, "acquire", second, stageOpts{slotNamespace: slotNS, kubeconfig: acquireKC, env: noTarget})
		gomega.Eventually(waiting.session.Out).WithTimeout(patience.Scale(15 * time.Second)).Should(gbytes.Say("waiting for a rollout slot"))

		setHealth(ctx, first, "healthy", freshNow(), "v2")
		s = runStage(ctx, "await", first, 0, stageOpts{slotNamespace: slotNS, kubeconfig: awaitKC,
			env: map[string]string{"TURNSTILE_TARGET_VERSION": "", "TURNSTILE_MIN_HEALTHY": "0s"}})
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("released"))
		gomega.Expect(s.stdout()).NotTo(gomega.ContainSubstring("could not"))
		gomega.Eventually(waiting.session).WithTimeout(patience.Scale(15 * time.Second)).Should(gexec.Exit(0))

		s = runStage(ctx, "acquire", second, 0, stageOpts{slotNamespace: slotNS, kubeconfig: releaseKC, action: "delete"})
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("released its slot"))
		gomega.Expect(s.stdout()).NotTo(gomega.ContainSubstring("could not"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.BeEmpty())
	})

	ginkgo.DescribeTable("fail clearly without them, naming what is missing",
		func(ctx context.Context, stageName, want string) {
			kc := pipelineKubeconfig(ctx, ns, "bare-"+stageName, nil)
			req := createRequest(ctx, ns, "req", true, nil)
			if stageName == "await" {
				runStage(ctx, "acquire", req, 0, stageOpts{slotNamespace: slotNS})
			}
			s := runStage(ctx, stageName, req, 1, stageOpts{slotNamespace: slotNS, kubeconfig: kc})
			gomega.Expect(s.stderr()).To(gomega.ContainSubstring(want))
			gomega.Expect(s.stderr()).To(gomega.ContainSubstring("grant it in the pipeline's spec.rbac.permissions"))
		},
		ginkgo.Entry("acquire", "acquire", `cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "slots-`),
		ginkgo.Entry("await", "await", `cannot list resource "leases"`),
	)
})
