package e2e

import (
	"context"
	"fmt"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gstruct"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/test/patience"
	"github.com/kratix-turnstile/turnstile/test/scrape"
)

func get(ctx context.Context, name string) *unstructured.Unstructured {
	ginkgo.GinkgoHelper()
	u, err := h.Dynamic.Resource(harness.WebApps).Namespace("default").Get(ctx, name, metav1.GetOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return u
}

func turnstileStatus(ctx context.Context, name string) map[string]any {
	ginkgo.GinkgoHelper()
	st, _, _ := unstructured.NestedMap(get(ctx, name).Object, "status", "turnstile")
	return st
}

func names(ups []harness.Upgrade) []string {
	var out []string
	for _, u := range ups {
		out = append(out, u.Name)
	}
	return out
}

var _ = ginkgo.Describe("a Promise upgrade on real Kratix", ginkgo.Ordered, func() {
	// The trackers sample through several specs; they stop with the container.
	trackCtx, stopTracking := context.WithCancel(context.Background())
	ginkgo.AfterAll(func() { stopTracking() })

	ginkgo.It("installs five harness.Requests at v1, all at once: first installs are not queued", func(ctx context.Context) {
		gomega.Expect(h.ApplyPromise(ctx, "v1")).To(gomega.Succeed())
		gomega.Expect(h.ApplyRequests(ctx)).To(gomega.Succeed())
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(3*time.Minute), harness.AtPhase("v1", "Upgraded"), harness.Requests...)).To(gomega.Succeed())
		gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Equal(map[string]string{
			"shop": "v1", "blog": "v1", "chat": "v1", "mail": "v1", "wiki": "v1"}))
	}, ginkgo.NodeTimeout(patience.Scale(4*time.Minute)))

	var v2 *harness.Tracker
	var v2Began time.Time
	var observed string
	ginkgo.It("upgrades to v2 one request at a time and pauses on chat's unhealthy v2", func(ctx context.Context) {
		v2, v2Began = h.Track(trackCtx, "v2"), time.Now()
		var err error
		observed, err = h.Observe(trackCtx, "127.0.0.1:0")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(h.ApplyPromise(ctx, "v2")).To(gomega.Succeed())

		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(3*time.Minute), harness.AtPhase("v2", "Failed"), "chat")).To(gomega.Succeed())
		chat := turnstileStatus(ctx, "chat")
		gomega.Expect(chat["message"]).To(gomega.ContainSubstring("unhealthy"), "chat's status says why the rollout paused")
		gomega.Expect(chat).To(gomega.HaveKey("slot"), "chat keeps its slot, so nothing else upgrades")

		// Paused: while chat holds the slot, the harness.Requests that had not upgraded stay on v1,
		// waiting. (Kratix re-runs the harness.Requests in an order of its own: chat may be last.)
		var behind []string
		for _, n := range harness.Requests {
			if n != "chat" && !harness.AtPhase("v2", "Upgraded")(get(ctx, n)) {
				behind = append(behind, n)
			}
		}
		gomega.Consistently(func() []string { return harness.Ahead("v1", h.AppVersions(), behind) }).
			WithTimeout(10*time.Second).Should(gomega.BeEmpty(), "requests behind chat moved past v1 while it held the slot")
		for _, n := range behind {
			gomega.Expect(turnstileStatus(ctx, n)).To(gstruct.MatchKeys(gstruct.IgnoreExtras, gstruct.Keys{
				"phase": gomega.Equal("Waiting"), "version": gomega.Equal("v2")}), n)
		}
		ups := v2.Upgrades()
		gomega.Expect(ups).To(gomega.HaveLen(len(harness.Requests) - len(behind)))
		gomega.Expect(ups[len(ups)-1].Name).To(gomega.Equal("chat"), "the rollout stopped at chat")
		if version.Bindings() {
			// An SKE UpgradeRun that drives bindings waits on this condition: it must not read
			// chat's upgrade as done while Turnstile holds it.
			gomega.Expect(upgradeSucceeded(ctx, "chat")).NotTo(gomega.Equal("True"), "chat's ResourceBinding shows the upgrade in progress")
		}
	}, ginkgo.NodeTimeout(patience.Scale(4*time.Minute)))

	ginkgo.It("lets the rollout complete once chat is healed", func(ctx context.Context) {
		gomega.Expect(h.Apps.Heal("default", "chat")).To(gomega.Succeed())
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(3*time.Minute), harness.AtPhase("v2", "Upgraded"), harness.Requests...)).To(gomega.Succeed())
		gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Equal(map[string]string{
			"shop": "v2", "blog": "v2", "chat": "v2", "mail": "v2", "wiki": "v2"}))
		time.Sleep(time.Second) // one more sample for the tracker
		gomega.Expect(v2.MaxInFlight()).To(gomega.Equal(1), "never more than one request upgrading at once")
		ups := v2.Upgrades()
		gomega.Expect(names(ups)).To(gomega.ConsistOf(harness.Requests))
		gomega.Expect(v2.First()).To(gomega.Equal(harness.Canary), "the canary (wave 0) upgraded first")
		for i := 1; i < len(ups); i++ {
			gomega.Expect(ups[i].Began).To(gomega.BeTemporally(">=", ups[i-1].Done.Add(-time.Second)),
				"%s began before %s was done", ups[i].Name, ups[i-1].Name)
		}
		for _, u := range ups {
			if u.Name == "chat" {
				gomega.Expect(u.Paused).To(gomega.BeNumerically(">", 5*time.Second), "the rollout paused on chat")
			}
		}
	}, ginkgo.NodeTimeout(patience.Scale(4*time.Minute)))

	ginkgo.It("exports the rollout's metrics: every request upgraded, each upgrade timed, chat's unhealthy hold", func() {
		p, n := "promise="+harness.PromiseName, float64(len(harness.Requests))
		var m scrape.Families
		// The observer's informers may be a moment behind the requests the specs read.
		gomega.Eventually(func(g gomega.Gomega) {
			var err error
			m, err = scrape.Get(observed + "metrics")
			g.Expect(err).NotTo(gomega.HaveOccurred())
			g.Expect(m.Value("turnstile_requests", p, "version=v2", "phase=Upgraded")).To(gomega.Equal(n))
			g.Expect(m.Value("turnstile_slots_held", p)).To(gomega.BeZero())
			g.Expect(m.Value("turnstile_upgrade_duration_seconds_count", p)).To(gomega.Equal(n), "one upgrade timed per request, slot taken to released")
		}).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Succeed())
		ginkgo.AddReportEntry("metrics", fmt.Sprintf("slot waits %v (sum %.1fs), upgrades %v (sum %.1fs), unhealthy holds %v (sum %.1fs), handoffs %v (sum %.2fs), gate trips %v",
			m.Value("turnstile_slot_wait_seconds_count", p), m.Value("turnstile_slot_wait_seconds_sum", p),
			m.Value("turnstile_upgrade_duration_seconds_count", p), m.Value("turnstile_upgrade_duration_seconds_sum", p),
			m.Value("turnstile_unhealthy_hold_seconds_count", p), m.Value("turnstile_unhealthy_hold_seconds_sum", p),
			m.Value("turnstile_handoff_gap_seconds_count", p), m.Value("turnstile_handoff_gap_seconds_sum", p),
			m.Value("turnstile_gate_trips_total", p)), ginkgo.ReportEntryVisibilityAlways)
		gomega.Expect(m.Value("turnstile_requests", p, "version=v2", "phase=Waiting")).To(gomega.BeZero())
		gomega.Expect(m.Value("turnstile_rollout_progress_ratio", p, "version=v2")).To(gomega.Equal(1.0))
		gomega.Expect(m.Value("turnstile_queue_depth", p)).To(gomega.BeZero())
		gomega.Expect(m.Value("turnstile_rollout_paused", p)).To(gomega.BeZero())
		gomega.Expect(m.Value("turnstile_slots_held_unhealthy", p)).To(gomega.BeZero())
		gomega.Expect(m.Value("turnstile_slot_wait_seconds_count", p)).To(gomega.BeNumerically(">=", 1), "the requests behind chat waited")
		gomega.Expect(m.Value("turnstile_handoff_gap_seconds_count", p)).To(gomega.BeNumerically(">=", 1))
		gomega.Expect(m.Value("turnstile_unhealthy_hold_seconds_count", p)).To(gomega.BeNumerically(">=", 1), "chat held its slot while its upgrade failed")
		gomega.Expect(m.Value("turnstile_unhealthy_hold_seconds_sum", p)).To(gomega.BeNumerically(">", 5), "chat held its slot until it was healed")
	})

	ginkgo.It("keeps waiting requests' pods only as long as the mode needs", func() {
		acquire := h.PipelineStats("turnstile-acquire", v2Began)
		runs := 0
		for _, n := range acquire.Runs {
			runs = max(runs, n)
		}
		ginkgo.AddReportEntry("waiting pods", fmt.Sprintf("%s, --wait=%s: at most %d acquire pods alive at once, the longest for %s; a request's acquire ran up to %d time(s) (%v)",
			version.Describe(), h.StageWait(), acquire.Peak, acquire.Longest.Round(time.Second), runs, acquire.Runs), ginkgo.ReportEntryVisibilityAlways)
		if !version.WorkflowControl() {
			return
		}
		wait, err := time.ParseDuration(h.StageWait())
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(runs).To(gomega.BeNumerically(">", 1), "a waiting request handed back with retryAfter and Kratix ran its acquire again")
		gomega.Expect(acquire.Longest).To(gomega.BeNumerically("<", wait+patience.Scale(30*time.Second)),
			"no acquire pod stayed alive much beyond --wait: waiting requests hand back instead of holding a pod")
	})

	if version.Bindings() {
		ginkgo.It("rolls the first upgrade back, v2 to v1, through the turnstile: bindings moved, one at a time, canary first", func(ctx context.Context) {
			expectRollback(ctx, trackCtx, "v2", "v1", harness.Requests, true)
		}, ginkgo.NodeTimeout(patience.Scale(5*time.Minute)))
	}

	// survivors are the requests left after the holder's deletion.
	var survivors []string
	ginkgo.It("moves on when the request holding the slot is deleted mid-upgrade", func(ctx context.Context) {
		v3 := h.Track(trackCtx, "v3")
		gomega.Expect(h.ApplyPromise(ctx, "v3")).To(gomega.Succeed())
		// Delete the first request seen holding the slot, while it upgrades.
		var holder string
		gomega.Eventually(func() string {
			for _, u := range v3.Upgrades() {
				if u.Done.IsZero() {
					holder = u.Name
				}
			}
			return holder
		}).WithTimeout(patience.Scale(time.Minute)).WithPolling(100 * time.Millisecond).ShouldNot(gomega.BeEmpty())
		doneBefore := map[string]bool{}
		for _, u := range v3.Upgrades() {
			doneBefore[u.Name] = !u.Done.IsZero()
		}
		deleted := time.Now()
		gomega.Expect(h.Dynamic.Resource(harness.WebApps).Namespace("default").Delete(ctx, holder, metav1.DeleteOptions{})).To(gomega.Succeed())

		var rest []string
		for _, n := range harness.Requests {
			if n != holder {
				rest = append(rest, n)
			}
		}
		gomega.Expect(h.WaitForRequests(ctx, patience.Scale(3*time.Minute), harness.AtPhase("v3", "Upgraded"), rest...)).To(gomega.Succeed())
		gomega.Eventually(func() error {
			_, err := h.Dynamic.Resource(harness.WebApps).Namespace("default").Get(ctx, holder, metav1.GetOptions{})
			return err
		}).WithTimeout(patience.Scale(time.Minute)).Should(gomega.MatchError(gomega.ContainSubstring("not found")), "Kratix finished deleting it")
		gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(30*time.Second)).ShouldNot(gomega.HaveKey(holder), "its app is removed from the Destination")
		for _, u := range v3.Upgrades() {
			if u.Name != holder && !doneBefore[u.Name] {
				gomega.Expect(u.Began).To(gomega.BeTemporally(">", deleted), "%s upgraded after the deleted holder, not beside it", u.Name)
			}
		}
		survivors = rest
	}, ginkgo.NodeTimeout(patience.Scale(5*time.Minute)))

	if version.Bindings() {
		ginkgo.It("rolls a later upgrade back, v3 to the version before it, through the turnstile", func(ctx context.Context) {
			// v3 followed the rollback to v1, so v1 is the version before it. The canary was the
			// holder deleted above, so no canary is left to go first.
			expectRollback(ctx, trackCtx, "v3", "v1", survivors, false)
		}, ginkgo.NodeTimeout(patience.Scale(5*time.Minute)))

		ginkgo.It("ends right when the Promise changes while a request's await is running", func(ctx context.Context) {
			// Current Kratix lets a running workflow finish on a Promise update (kratix#818) and
			// re-runs the request afterwards: the v4 holder keeps its slot until its own verdict,
			// and nobody upgrades beside it.
			anyVersion, v5 := h.Track(trackCtx, ""), h.Track(trackCtx, "v5")
			v4Began := time.Now()
			gomega.Expect(h.ApplyPromise(ctx, "v4")).To(gomega.Succeed())
			// A request upgrading to v4 whose await pod is running.
			gomega.Eventually(func() string {
				for _, r := range h.Runner.Runs() {
					name := r.Labels["kratix.io/resource-name"]
					if r.Labels["kratix.io/pipeline-name"] == "turnstile-await" && r.Started.After(v4Began) && r.Ended.IsZero() &&
						harness.AtPhase("v4", "Upgrading")(get(ctx, name)) {
						return name
					}
				}
				return ""
			}).WithTimeout(patience.Scale(2 * time.Minute)).WithPolling(100 * time.Millisecond).ShouldNot(gomega.BeEmpty())
			gomega.Expect(h.ApplyPromise(ctx, "v5")).To(gomega.Succeed())
			gomega.Expect(h.WaitForRequests(ctx, patience.Scale(4*time.Minute), harness.AtPhase("v5", "Upgraded"), survivors...)).To(gomega.Succeed())
			want := map[string]string{}
			for _, r := range survivors {
				want[r] = "v5"
			}
			gomega.Eventually(h.AppVersions).WithTimeout(patience.Scale(30 * time.Second)).Should(gomega.Equal(want))
			time.Sleep(time.Second) // one more sample for the trackers
			gomega.Expect(anyVersion.MaxInFlight()).To(gomega.Equal(1), "never more than one request upgrading, of either version")
			gomega.Expect(names(v5.Upgrades())).To(gomega.ConsistOf(survivors))
		}, ginkgo.NodeTimeout(patience.Scale(6*time.Minute)))
	}

	operatorSpecs(trackCtx, func() []string { return survivors })
})
