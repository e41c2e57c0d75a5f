package gitsync

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

var destination = controlplane.ForSuite(controlplane.WithCRDs(controlplane.TurnstileCRDs))

func TestGitSync(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "Destination stand-in")
}

// stateStore is a bare repository and a clone to commit to, as Kratix's GitStateStore writes it.
type stateStore struct{ bare, work string }

func newStateStore() stateStore {
	ginkgo.GinkgoHelper()
	dir := ginkgo.GinkgoT().TempDir()
	s := stateStore{bare: filepath.Join(dir, "state.git"), work: filepath.Join(dir, "work")}
	run("", "git", "init", "-q", "--bare", s.bare)
	run("", "git", "clone", "-q", s.bare, s.work)
	return s
}

func run(dir string, args ...string) {
	ginkgo.GinkgoHelper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "%v: %s", args, out)
}

// commit writes files (path -> content; "" deletes) and pushes them.
func (s stateStore) commit(files map[string]string) {
	ginkgo.GinkgoHelper()
	for path, content := range files {
		full := filepath.Join(s.work, path)
		if content == "" {
			gomega.Expect(os.Remove(full)).To(gomega.Succeed())
			continue
		}
		gomega.Expect(os.MkdirAll(filepath.Dir(full), 0o755)).To(gomega.Succeed())
		gomega.Expect(os.WriteFile(full, []byte(content), 0o644)).To(gomega.Succeed())
	}
	run(s.work, "git", "add", "-A")
	run(s.work, "git", "-c", "user.name=kratix", "-c", "user.email=kratix@example.com", "commit", "-q", "-m", "kratix")
	run(s.work, "git", "push", "-q", "origin", "HEAD")
}

var _ = ginkgo.Describe("the destination stand-in", func() {
	ginkgo.It("applies what is committed for its Destination, updates it, and prunes what is removed", func(ctx context.Context) {
		ns := destination.Namespace("apps")
		store := newStateStore()
		client := dynamic.NewForConfigOrDie(destination.Config)
		disco := discovery.NewDiscoveryClientForConfigOrDie(destination.Config)
		syncer := &Syncer{Repo: store.bare, Path: "worker-1", Client: client,
			Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))}

		res, err := syncer.Once(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(res.Applied).To(gomega.BeZero(), "an empty repository has nothing to apply")

		configMap := func(version string) string {
			return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: " + ns + "}\ndata: {version: " + version + "}\n"
		}
		definition := "apiVersion: platform.kratix.io/v1alpha1\nkind: HealthDefinition\nmetadata: {name: web, namespace: " + ns + "}\n" +
			"spec: {promiseRef: {name: webapp}, schedule: '@every 5s', resourceRef: {name: web, namespace: default}}\n"
		store.commit(map[string]string{
			"worker-1/resources/default/webapp/web/configure/abc/app.yaml":               configMap("v1"),
			"worker-1/resources/default/webapp/web/configure/abc/health-definition.yaml": definition,
			"worker-2/resources/elsewhere.yaml":                                          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: " + ns + "}\n",
		})
		res, err = syncer.Once(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(res.Applied).To(gomega.Equal(2), "worker-1's two objects, not worker-2's")
		cm, err := destination.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(cm.Data).To(gomega.HaveKeyWithValue("version", "v1"))
		_, err = client.Resource(health.HealthDefinitions).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		_, err = destination.Client.CoreV1().ConfigMaps(ns).Get(ctx, "elsewhere", metav1.GetOptions{})
		gomega.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "another Destination's objects stay out")

		res, err = syncer.Once(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(res.Applied).To(gomega.BeZero(), "the same commit is not applied twice")

		store.commit(map[string]string{
			"worker-1/resources/default/webapp/web/configure/abc/app.yaml":               configMap("v2"),
			"worker-1/resources/default/webapp/web/configure/abc/health-definition.yaml": "",
		})
		res, err = syncer.Once(ctx)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect([]int{res.Applied, res.Pruned}).To(gomega.Equal([]int{1, 1}))
		cm, err = destination.Client.CoreV1().ConfigMaps(ns).Get(ctx, "web", metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(cm.Data).To(gomega.HaveKeyWithValue("version", "v2"))
		_, err = client.Resource(health.HealthDefinitions).Namespace(ns).Get(ctx, "web", metav1.GetOptions{})
		gomega.Expect(apierrors.IsNotFound(err)).To(gomega.BeTrue(), "removed from git, pruned from the cluster")
	})
})
