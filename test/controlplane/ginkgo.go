package controlplane

import (
	"context"
	"encoding/json"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
)

// Suite is the control plane a Ginkgo suite shares between its specs and parallel processes.
// Its fields are set once the suite's SynchronizedBeforeSuite has run.
type Suite struct {
	// Config authenticates as a cluster admin.
	Config *rest.Config
	// Client is a typed admin client.
	Client kubernetes.Interface
	// Kubeconfig is the admin kubeconfig, for child processes.
	Kubeconfig []byte

	// cp is set on the first parallel process only: the one that started it.
	cp *ControlPlane
}

// ForSuite registers a SynchronizedBeforeSuite that starts one control plane for the whole
// suite (on the first parallel process) and a SynchronizedAfterSuite that stops it. Call it at
// the top level of a suite file: var env = controlplane.ForSuite(...).
func ForSuite(opts ...Option) *Suite { return ForSuites(opts)[0] }

// ForSuites is ForSuite for a suite that needs several clusters, e.g. a platform and a
// Destination: one control plane per list of options.
func ForSuites(clusters ...[]Option) []*Suite {
	suites := make([]*Suite, len(clusters))
	for i := range suites {
		suites[i] = &Suite{}
	}
	ginkgo.SynchronizedBeforeSuite(func() []byte {
		kubeconfigs := make([][]byte, len(clusters))
		for i, opts := range clusters {
			cp, err := Start(opts...)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			suites[i].cp = cp
			kubeconfigs[i] = cp.Kubeconfig
		}
		shared, err := json.Marshal(kubeconfigs)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		return shared
	}, func(shared []byte) {
		var kubeconfigs [][]byte
		gomega.Expect(json.Unmarshal(shared, &kubeconfigs)).To(gomega.Succeed())
		for i, kc := range kubeconfigs {
			cfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			cfg.QPS, cfg.Burst = 1000, 2000
			// Specs that restart the apiserver keep using their clients, as the stages do.
			apiclient.RideOutOutages(cfg, apiclient.TransientBudget)
			suites[i].Kubeconfig, suites[i].Config = kc, cfg
			suites[i].Client = kubernetes.NewForConfigOrDie(cfg)
		}
	})
	ginkgo.SynchronizedAfterSuite(func() {}, func() {
		for _, s := range suites {
			if s.cp != nil {
				gomega.Expect(s.cp.Stop()).To(gomega.Succeed())
			}
		}
	})
	return suites
}

// ControlPlane is the running control plane; only the first parallel process has it.
func (s *Suite) ControlPlane() *ControlPlane {
	ginkgo.GinkgoHelper()
	gomega.Expect(s.cp).NotTo(gomega.BeNil(), "the control plane lives on parallel process 1; run this spec Serial or without -p")
	return s.cp
}

// AsServiceAccount is the admin config impersonating a ServiceAccount.
func (s *Suite) AsServiceAccount(namespace, name string) *rest.Config {
	return AsServiceAccount(s.Config, namespace, name)
}

// ServiceAccountKubeconfig is a kubeconfig with a real token for the ServiceAccount, which it
// creates if missing.
func (s *Suite) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) []byte {
	ginkgo.GinkgoHelper()
	out, err := ServiceAccountKubeconfig(ctx, s.Config, namespace, name)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return out
}

// Namespace creates a namespace with a generated name for the current spec and deletes it when
// the spec ends.
func (s *Suite) Namespace(prefix string) string {
	ginkgo.GinkgoHelper()
	ns, err := s.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
	}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func(ctx context.Context) error {
		return s.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	}, ginkgo.NodeTimeout(10*time.Second))
	return ns.Name
}
