// The end-to-end suite: the example Promise on a real Kratix platform (see test/harness),
// upgraded through Turnstile, in a sandbox of its own.
package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/test/harness"
	"github.com/kratix-turnstile/turnstile/test/harness/reexec"
	"github.com/kratix-turnstile/turnstile/test/harness/sandbox"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(sandbox.Run(m.Run))
}

func TestEndToEnd(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	// An Eventually without a bound of its own waits long enough for a loaded machine.
	gomega.SetDefaultEventuallyTimeout(patience.Scale(10 * time.Second))
	ginkgo.RunSpecs(t, "End to end: Turnstile on real Kratix")
}

var h *harness.Harness

var _ = ginkgo.BeforeSuite(func(ctx context.Context) {
	var err error
	// E2E_KEEP names a directory to keep the harness's logs in, for reading after a failure.
	h, err = harness.Start(ctx, harness.Options{Progress: ginkgo.GinkgoWriter, Dir: os.Getenv("E2E_KEEP")})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(h.Stop)
}, ginkgo.NodeTimeout(patience.Scale(5*time.Minute)))
