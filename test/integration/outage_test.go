package integration

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

var _ = ginkgo.Describe("an apiserver outage", ginkgo.Label("area:turnstile"), ginkgo.Serial, func() {
	const contenders = 12
	ginkgo.It("is ridden out mid-rollout: every request finishes and no stage exits non-zero",
		ginkgo.SpecTimeout(patience.Per(contenders, 10*time.Second, 3*time.Minute)), func(ctx context.Context) {
			slotNS, ns := env.Namespace("slots"), env.Namespace("requests")
			// Every stage's own bound covers the whole queue ahead of it plus the outage.
			opts := stageOpts{slotNamespace: slotNS, within: patience.Per(contenders, 10*time.Second, 2*time.Minute)}
			var upgraded atomic.Int32
			wait := contend(ctx, ns, contenders, opts, func() { time.Sleep(200 * time.Millisecond) }, func() { upgraded.Add(1) })
			// Mid-rollout: some requests are through, one holds the slot, the rest wait on
			// their watches with tickets to renew.
			gomega.Eventually(upgraded.Load).WithContext(ctx).WithTimeout(patience.Per(3, 10*time.Second, time.Minute)).
				Should(gomega.BeNumerically(">=", 3))
			ginkgo.By("restarting kube-apiserver, down for 3s")
			gomega.Expect(env.ControlPlane().RestartAPIServer(3 * time.Second)).To(gomega.Succeed())
			wait()
			gomega.Expect(upgraded.Load()).To(gomega.Equal(int32(contenders)))
			gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleTicket)).To(gomega.BeEmpty(), "no ticket is left behind")
		})
})
