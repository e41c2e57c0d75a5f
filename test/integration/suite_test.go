// Package integration holds Turnstile's integration specs. They run against a real etcd and
// kube-apiserver (see test/controlplane), never a fake clientset.
package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

var env = controlplane.ForSuite(controlplane.WithCRDs(
	controlplane.KratixCRDs, controlplane.TurnstileCRDs, controlplane.CRDDir("test", "testdata/crds")))

func TestIntegration(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	// An Eventually without a bound of its own waits long enough for a loaded machine.
	gomega.SetDefaultEventuallyTimeout(patience.Scale(10 * time.Second))
	ginkgo.RunSpecs(t, "Integration")
}

// shipped reads a file of the repository that ships, by its path from the module's root.
func shipped(path ...string) []byte {
	ginkgo.GinkgoHelper()
	root, err := controlplane.ModuleDir("")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	data, err := os.ReadFile(filepath.Join(append([]string{root}, path...)...))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return data
}
