package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
)

// farWaiter is one in-process Acquire and what it reported while it waited.
type farWaiter struct {
	req   turnstile.Request
	mu    sync.Mutex
	waits []turnstile.Wait
	grant chan *turnstile.Grant
}

func (w *farWaiter) last() turnstile.Wait {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waits) == 0 {
		return turnstile.Wait{Position: -1}
	}
	return w.waits[len(w.waits)-1]
}

var _ = ginkgo.Describe("waiters far back in the queue", ginkgo.Label("area:turnstile"), func() {
	// Far back, a waiter follows one ticket ahead of it and the rollout's controls, not every
	// Lease: it must still hear of a pause and a resume, see its place move, and go in its turn.
	ginkgo.It("hear of a pause, move up the queue and go in their turn", ginkgo.SpecTimeout(patience.Scale(3*time.Minute)), func(ctx context.Context) {
		const waiters = 24 // with one slot, all but the first nine are far
		slotNS := env.Namespace("slots")
		ts, err := turnstile.New(turnstile.Config{Leases: env.Client.CoordinationV1(), Namespace: slotNS, Promise: promiseName, Slots: 1})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		request := func(name string) turnstile.Request {
			return turnstile.Request{GroupVersionResource: databases, Kind: "Database", Namespace: "default", Name: name, UID: types.UID("uid-" + name), Wave: 1}
		}
		holder := request("holder")
		_, err = ts.Acquire(ctx, holder, turnstile.AcquireOptions{Target: "v2"})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		var ws []*farWaiter
		for i := range waiters {
			w := &farWaiter{req: request(fmt.Sprintf("db-%02d", i)), grant: make(chan *turnstile.Grant, 1)}
			ws = append(ws, w)
			go func() {
				defer ginkgo.GinkgoRecover()
				g, err := ts.Acquire(ctx, w.req, turnstile.AcquireOptions{Target: "v2", OnWait: func(wt turnstile.Wait) {
					w.mu.Lock()
					w.waits = append(w.waits, wt)
					w.mu.Unlock()
				}})
				if ctx.Err() == nil {
					gomega.Expect(err).NotTo(gomega.HaveOccurred())
				}
				w.grant <- g
			}()
			// One at a time, so that the order of arrival is known.
			gomega.Eventually(func() int { return len(leasesIn(ctx, slotNS, turnstile.RoleTicket)) }).WithContext(ctx).Should(gomega.Equal(i + 1))
		}
		last := ws[waiters-1]
		gomega.Eventually(func() int { return last.last().Position }).WithContext(ctx).Should(gomega.Equal(waiters - 1))

		gomega.Expect(ts.Pause(ctx, "far test", "spec")).To(gomega.Succeed())
		for _, w := range ws {
			gomega.Eventually(func() string { return w.last().Reason }).WithContext(ctx).Should(gomega.HavePrefix("rollout paused"), "%s hears of the pause", w.req.Name)
		}
		gomega.Expect(ts.Resume(ctx, "spec")).To(gomega.Succeed())
		for _, w := range ws {
			gomega.Eventually(func() bool { return w.last().Blocked }).WithContext(ctx).Should(gomega.BeFalse(), "%s hears of the resume", w.req.Name)
		}

		_, err = ts.Release(ctx, holder, turnstile.Attempt{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		for i, w := range ws {
			var g *turnstile.Grant
			gomega.Eventually(w.grant).WithContext(ctx).WithTimeout(patience.Scale(30*time.Second)).Should(gomega.Receive(&g), "%s goes %s", w.req.Name, turnstile.Ordinal(i+1))
			for _, later := range ws[i+1:] {
				gomega.Expect(later.grant).NotTo(gomega.Receive(), "%s went before %s", later.req.Name, w.req.Name)
			}
			_, err := ts.Release(ctx, w.req, g.Slot.Attempt())
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
		}
		// The last waiter saw its place move up while far back: more than its first place and
		// its last, but not every place (one report each time its marker left).
		var places []string
		for _, wt := range last.waits {
			places = append(places, fmt.Sprint(wt.Position))
		}
		gomega.Expect(len(places)).To(gomega.BeNumerically(">", 2), "places reported: %s", strings.Join(places, " "))
	})
})
