// Package e2e is the end-to-end suite: the example Promise on a real Kratix platform (see
// internal/harness), upgraded through Turnstile, in a sandbox of its own. It runs once on each Kratix
// the harness has, from test/e2e/current and test/e2e/pinned; specs that need what only current
// Kratix has (workflow-control, ResourceBindings) run on that one.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/internal/harness/kratix"
	"github.com/kratix-turnstile/turnstile/internal/harness/reexec"
	"github.com/kratix-turnstile/turnstile/internal/harness/sandbox"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// Main is a suite package's TestMain: the harness runs in a sandbox.
func Main(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(sandbox.Run(m.Run))
}

// Run runs the suite on one Kratix.
func Run(t *testing.T, v kratix.Version) {
	version = v
	gomega.RegisterFailHandler(ginkgo.Fail)
	// An Eventually without a bound of its own waits long enough for a loaded machine.
	gomega.SetDefaultEventuallyTimeout(patience.Scale(10 * time.Second))
	if !ginkgo.RunSpecs(t, "End to end: Turnstile on "+v.Describe()) {
		// Last, where a reader of the output's tail sees them: why each spec failed.
		for _, f := range failures {
			fmt.Println("e2e: " + f)
		}
	}
}

// failures are the failed specs and their failures, a line each.
var failures []string

var _ = ginkgo.ReportAfterEach(func(r ginkgo.SpecReport) {
	if r.Failed() {
		msg := program.OneLine(r.Failure.Message)
		if more := r.Failure.AdditionalFailure; more != nil {
			// A spec that timed out says so first; why it was stuck comes after.
			msg += " then: " + program.OneLine(more.Failure.Message)
		}
		if runes := []rune(msg); len(runes) > 1200 {
			msg = string(runes[:1200]) + "…"
		}
		failures = append(failures, fmt.Sprintf("%s (%s): %s", r.FullText(), r.Failure.Location, msg))
	}
})

// After a failed spec, where the platform stands: its requests and pipelines' logs, and each
// rollout as its operator would see it.
var _ = ginkgo.AfterEach(func(ctx context.Context) {
	if ginkgo.CurrentSpecReport().Failed() {
		h.Diagnose(ctx, ginkgo.GinkgoWriter)
		for _, p := range []string{harness.PromiseName, harness.SecondPromiseName} {
			_, out := kubectlTurnstileCode(ctx, "status", p, "-n", "default")
			fmt.Fprintf(ginkgo.GinkgoWriter, "kubectl turnstile status %s:\n%s", p, out)
		}
	}
}, ginkgo.NodeTimeout(patience.Scale(30*time.Second)))

var (
	h       *harness.Harness
	version kratix.Version
)

var _ = ginkgo.BeforeSuite(func(ctx context.Context) {
	var err error
	// E2E_KEEP names a directory to keep the harness's logs in, for reading after a failure.
	keep := os.Getenv("E2E_KEEP")
	if keep != "" {
		keep += "/" + string(version)
	}
	h, err = harness.Start(ctx, harness.Options{Progress: ginkgo.GinkgoWriter, Dir: keep, Kratix: version})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(h.Stop)
}, ginkgo.NodeTimeout(patience.Scale(5*time.Minute)))
