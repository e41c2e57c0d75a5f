// Package agent holds turnstile-agent's specs: the real agent binary, a platform control plane
// (where records go) and a Destination control plane (where definitions live).
package agent

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
	"github.com/kratix-turnstile/turnstile/test/patience"
	"github.com/kratix-turnstile/turnstile/test/testbin"
)

var (
	clusters = controlplane.ForSuites(
		[]controlplane.Option{controlplane.WithCRDs(controlplane.KratixCRDs)},
		[]controlplane.Option{controlplane.WithCRDs(controlplane.TurnstileCRDs)},
	)
	platform, destination = clusters[0], clusters[1]

	agentBin string
	scratch  string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if scratch, err = os.MkdirTemp("", "turnstile-agent-test-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(scratch)
		if agentBin, err = testbin.Build(scratch, "github.com/kratix-turnstile/turnstile/cmd/turnstile-agent"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

func TestAgent(t *testing.T) {
	gomega.RegisterFailHandler(ginkgo.Fail)
	// An Eventually without a bound of its own waits long enough for a loaded machine.
	gomega.SetDefaultEventuallyTimeout(patience.Scale(10 * time.Second))
	ginkgo.RunSpecs(t, "Agent")
}
