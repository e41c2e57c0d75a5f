package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// shippedPlatformRole is the ClusterRole config/agent-platform installs on the platform.
func shippedPlatformRole() rbacv1.ClusterRole {
	ginkgo.GinkgoHelper()
	root, err := controlplane.ModuleDir("")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "config", "agent-platform", "clusterrole.yaml"))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var role rbacv1.ClusterRole
	gomega.Expect(yaml.Unmarshal(data, &role)).To(gomega.Succeed())
	return role
}

// platformKubeconfig is a kubeconfig for a platform ServiceAccount that holds exactly the shipped
// role, bound in the requests' namespace.
func platformKubeconfig(ctx context.Context, ns string) string {
	ginkgo.GinkgoHelper()
	role := shippedPlatformRole()
	role.ObjectMeta = metav1.ObjectMeta{GenerateName: "turnstile-agent-records-"}
	created, err := platform.Client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(platform.Client.RbacV1().ClusterRoles().Delete, created.Name, metav1.DeleteOptions{})
	_, err = platform.Client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "turnstile-agent-records"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: created.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "turnstile-agent", Namespace: ns}},
	}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return writeFile(ns+"-platform.kubeconfig", platform.ServiceAccountKubeconfig(ctx, ns, "turnstile-agent"))
}

// destinationKubeconfig is a kubeconfig for a Destination ServiceAccount bound to exactly the
// ClusterRole config/agent ships.
func destinationKubeconfig(ctx context.Context, ns string) string {
	ginkgo.GinkgoHelper()
	root, err := controlplane.ModuleDir("")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "config", "agent", "rbac.yaml"))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var role rbacv1.ClusterRole
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "kind: ClusterRole\n") {
			gomega.Expect(yaml.Unmarshal([]byte(doc), &role)).To(gomega.Succeed())
		}
	}
	gomega.Expect(role.Rules).NotTo(gomega.BeEmpty())
	role.ObjectMeta = metav1.ObjectMeta{GenerateName: "turnstile-agent-"}
	created, err := destination.Client.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(destination.Client.RbacV1().ClusterRoles().Delete, created.Name, metav1.DeleteOptions{})
	binding, err := destination.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "turnstile-agent-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: created.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "turnstile-agent", Namespace: ns}},
	}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(destination.Client.RbacV1().ClusterRoleBindings().Delete, binding.Name, metav1.DeleteOptions{})
	return writeFile(ns+"-destination.kubeconfig", destination.ServiceAccountKubeconfig(ctx, ns, "turnstile-agent"))
}

func writeFile(name string, data []byte) string {
	ginkgo.GinkgoHelper()
	path := filepath.Join(scratch, name)
	gomega.Expect(os.WriteFile(path, data, 0o600)).To(gomega.Succeed())
	return path
}

func freeAddress() string {
	ginkgo.GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// startAgent runs turnstile-agent against the two clusters, as ServiceAccounts holding exactly
// the shipped permissions on each; when the spec ends it is stopped with SIGTERM and must exit
// cleanly.
func startAgent(destKC, destNS, platformKC, listen string, args ...string) *gexec.Session {
	ginkgo.GinkgoHelper()
	cmd := exec.Command(agentBin, append([]string{
		"--kubeconfig=" + destKC,
		"--platform-kubeconfig=" + platformKC, "--namespace=" + destNS, "--listen=" + listen,
	}, args...)...)
	session, err := gexec.Start(cmd, ginkgo.GinkgoWriter, ginkgo.GinkgoWriter)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func() {
		session.Signal(syscall.SIGTERM)
		gomega.Eventually(session).WithTimeout(patience.Scale(10 * time.Second)).Should(gexec.Exit(0))
	})
	return session
}

func createDefinition(ctx context.Context, destNS, requestNS, request, input string) *health.HealthDefinition {
	ginkgo.GinkgoHelper()
	def, err := health.NewDefinition(destNS, "webapp", health.ResourceRef{Name: request, Namespace: requestNS, Generation: 2}, "@every 1s", input, "v2")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	u, err := health.ToUnstructured(def)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = dynamic.NewForConfigOrDie(destination.Config).Resource(health.HealthDefinitions).Namespace(destNS).Create(ctx, u, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return def
}

// record reads the HealthRecord for a request from the platform; nil while there is none.
func record(ctx context.Context, ns, request string) *health.HealthRecord {
	u, err := dynamic.NewForConfigOrDie(platform.Config).Resource(health.HealthRecords).Namespace(ns).
		Get(ctx, health.DefinitionName("webapp", ns, request), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	rec, err := health.FromUnstructured[health.HealthRecord](u)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return rec
}

func stateOf(ctx context.Context, ns, request string) func() string {
	return func() string {
		if rec := record(ctx, ns, request); rec != nil {
			return rec.Data.State
		}
		return ""
	}
}

func httpGet(url string) (int, string) {
	resp, err := http.Get(url) //nolint:noctx // a test probe of a local server
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var _ = ginkgo.Describe("turnstile-agent", ginkgo.Label("area:agent"), func() {
	var destNS, requestNS, listen string
	ginkgo.BeforeEach(func(ctx context.Context) {
		destNS = destination.Namespace("apps")
		requestNS = platform.Namespace("requests")
		listen = freeAddress()
		startAgent(destinationKubeconfig(ctx, destNS), destNS, platformKubeconfig(ctx, requestNS), listen, "--heartbeat=1h")
		gomega.Eventually(func() int { code, _ := httpGet("http://" + listen + "/readyz"); return code }).
			WithTimeout(patience.Scale(15 * time.Second)).Should(gomega.Equal(http.StatusOK))
	})

	ginkgo.It("reports an HTTP service going unhealthy and back, with its thresholds, stamped with the version", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		var status atomic.Int32
		status.Store(http.StatusOK)
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
		defer app.Close()
		createDefinition(ctx, destNS, requestNS, "web-1", fmt.Sprintf(
			"apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n  - {name: web, http: {url: %q}, failureThreshold: 3}\n", app.URL))

		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("healthy"))
		rec := record(ctx, requestNS, "web-1")
		gomega.Expect(rec.Data.Details).To(gomega.HaveKeyWithValue("version", "v2"))
		gomega.Expect(rec.Data.LastRun).To(gomega.BeNumerically("~", time.Now().Unix(), 5))
		gomega.Expect(rec.Data.ResourceRef.Generation).To(gomega.Equal(int64(2)))

		status.Store(http.StatusInternalServerError)
		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("unhealthy"))
		web := record(ctx, requestNS, "web-1").Data.Details["checks"].(map[string]any)["web"].(map[string]any)
		gomega.Expect(web["failures"]).To(gomega.BeNumerically(">=", 3), "unhealthy only after failureThreshold failures in a row")

		status.Store(http.StatusOK)
		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("healthy"))
	})

	ginkgo.It("reports a Deployment ready once it is rolled out", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		labels := map[string]string{"app": "web"}
		deploy, err := destination.Client.AppsV1().Deployments(destNS).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:v2"}}}}},
		}, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		createDefinition(ctx, destNS, requestNS, "web-1", fmt.Sprintf(
			"apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n  - {name: rollout, kube: {apiVersion: apps/v1, kind: Deployment, namespace: %s, name: web}, failureThreshold: 1}\n", destNS))
		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("unhealthy"))

		// There is no kubelet or Deployment controller here: the test plays their part.
		deploy.Status = appsv1.DeploymentStatus{ObservedGeneration: deploy.Generation, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}
		_, err = destination.Client.AppsV1().Deployments(destNS).UpdateStatus(ctx, deploy, metav1.UpdateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("ready"))
	})

	ginkgo.It("writes a record only when its state changes (or a heartbeat is due)", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		app := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		defer app.Close()
		createDefinition(ctx, destNS, requestNS, "web-1", fmt.Sprintf(
			"apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n  - {name: web, http: {url: %q}}\n", app.URL))
		gomega.Eventually(stateOf(ctx, requestNS, "web-1")).WithContext(ctx).Should(gomega.Equal("healthy"))
		written := record(ctx, requestNS, "web-1").ResourceVersion
		gomega.Consistently(func() string { return record(ctx, requestNS, "web-1").ResourceVersion }).
			WithTimeout(patience.Scale(3*time.Second)).Should(gomega.Equal(written), "checks run every second, but nothing changed")
		_, metrics := httpGet("http://" + listen + "/metrics")
		passes := regexp.MustCompile(`turnstile_agent_checks_total\{result="pass",type="http"\} (\d+)`).FindStringSubmatch(metrics)
		gomega.Expect(passes).To(gomega.HaveLen(2), "the pass counter is exported")
		gomega.Expect(strconv.Atoi(passes[1])).To(gomega.BeNumerically(">=", 3), "the checks ran all along")
		gomega.Expect(metrics).To(gomega.ContainSubstring(`turnstile_agent_records_written_total{reason="change"} 1`))
		code, _ := httpGet("http://" + listen + "/healthz")
		gomega.Expect(code).To(gomega.Equal(http.StatusOK))
	})

	ginkgo.It("reports container checks as unsupported, with an Event", ginkgo.SpecTimeout(patience.Scale(time.Minute)), func(ctx context.Context) {
		def, err := health.NewDefinition(destNS, "webapp", health.ResourceRef{Name: "web-1", Namespace: requestNS}, "@every 1s", "", "v2")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		def.Spec.Workflow = map[string]any{"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Pipeline"}
		u, err := health.ToUnstructured(def)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = dynamic.NewForConfigOrDie(destination.Config).Resource(health.HealthDefinitions).Namespace(destNS).Create(ctx, u, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Eventually(func() []string {
			events, err := destination.Client.CoreV1().Events(destNS).List(ctx, metav1.ListOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			var seen []string
			for _, e := range events.Items {
				seen = append(seen, e.Type+"/"+e.Reason+": "+e.Message)
			}
			return seen
		}).WithContext(ctx).Should(gomega.ContainElement(gomega.HavePrefix("Warning/Unsupported: unsupported: container checks")))
		gomega.Expect(record(ctx, requestNS, "web-1")).To(gomega.BeNil())
	})

	ginkgo.It("needs nothing on the platform but writing HealthRecords", func() {
		role := shippedPlatformRole()
		gomega.Expect(role.Rules).To(gomega.Equal([]rbacv1.PolicyRule{{
			APIGroups: []string{"platform.kratix.io"}, Resources: []string{"healthrecords"}, Verbs: []string{"get", "create", "update"},
		}}))
	})
})
