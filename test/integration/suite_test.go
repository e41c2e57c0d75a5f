// Package integration holds Turnstile's integration specs. They run against a real etcd and
// kube-apiserver (see test/controlplane), never a fake clientset.
package integration

import (
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

var env = controlplane.ForSuite(controlplane.WithCRDs(
	controlplane.KratixCRDs, controlplane.TurnstileCRDs, controlplane.CRDDir("test", "testdata/crds")))

func TestIntegration(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	ginkgo.RunSpecs(t, "Integration")
}
