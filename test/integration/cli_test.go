package integration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// t0 dates the golden rollout; the plugin's clock reads t0+5m.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// kubectlTurnstile runs the plugin in-process and returns its exit code and output.
func kubectlTurnstile(ctx context.Context, slotNS string, args ...string) (int, string, string) {
	return kubectlTurnstileAs(ctx, adminKubeconfig(), slotNS, args...)
}

// kubectlTurnstileAs is kubectlTurnstile with the user of a kubeconfig.
func kubectlTurnstileAs(ctx context.Context, kubeconfig, slotNS string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	all := append([]string{"--kubeconfig=" + kubeconfig, "--slot-namespace=" + slotNS}, args...)
	code := cli.Run(ctx, all, &stdout, &stderr, clocktesting.NewFakePassiveClock(t0.Add(5*time.Minute)))
	return code, stdout.String(), stderr.String()
}

// golden compares output with testdata/golden/name; UPDATE_GOLDEN=1 rewrites it.
func golden(name, got string) {
	ginkgo.GinkgoHelper()
	path := filepath.Join("testdata", "golden", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		gomega.Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(gomega.Succeed())
		gomega.Expect(os.WriteFile(path, []byte(got), 0o644)).To(gomega.Succeed())
	}
	want, err := os.ReadFile(path)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "run with UPDATE_GOLDEN=1 to create %s", path)
	gomega.Expect(got).To(gomega.Equal(string(want)))
}

func putLease(ctx context.Context, slotNS, name, role string, holder string, acquired time.Time, annotations map[string]string) {
	ginkgo.GinkgoHelper()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations,
		Labels: map[string]string{turnstile.LabelPromise: promiseName, turnstile.LabelRole: role}}}
	if holder != "" {
		l.Spec = coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To[int32](600),
			AcquireTime: &metav1.MicroTime{Time: acquired}, RenewTime: &metav1.MicroTime{Time: time.Now()}}
	}
	_, err := env.Client.CoordinationV1().Leases(slotNS).Create(ctx, l, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
}

func withStatus(ctx context.Context, obj *unstructured.Unstructured, st rollout.Status, healthState string, lastRun time.Time, version string) {
	ginkgo.GinkgoHelper()
	status := map[string]any{}
	if st.Phase != "" {
		status[rollout.StatusKey] = st.Map()
	}
	if healthState != "" {
		rec := map[string]any{"state": healthState, "lastRun": lastRun.Unix(), "source": map[string]any{"name": "h", "namespace": obj.GetNamespace()}}
		rec["details"] = health.Stamp{Promise: promiseName, RequestUID: string(obj.GetUID()), Version: version}.Apply(nil)
		status["healthStatus"] = map[string]any{"state": healthState, "healthRecords": []any{rec}}
	}
	patchStatus(ctx, obj, status)
}

// goldenRollout puts a Promise's rollout from v1 to v2 five minutes in, in ns and slotNS:
// db-a (a canary) upgraded, db-b upgrading with a health record from before its upgrade, db-c
// and db-d in line, db-e not reached yet.
func goldenRollout(ctx context.Context, ns, slotNS string) map[string]*unstructured.Unstructured {
	ginkgo.GinkgoHelper()
	reqs := map[string]*unstructured.Unstructured{}
	for _, name := range []string{"db-a", "db-b", "db-c", "db-d", "db-e"} {
		var labels map[string]string
		if name == "db-a" {
			labels = map[string]string{turnstile.WaveKey: "0"}
		}
		reqs[name] = createRequest(ctx, ns, name, true, labels)
	}
	putLease(ctx, slotNS, turnstile.RolloutName(promiseName), turnstile.RoleRollout, "", time.Time{},
		map[string]string{turnstile.AnnotationTarget: "v2", turnstile.AnnotationPrevious: "v1", turnstile.AnnotationApprovalWaves: "2,3"})
	putLease(ctx, slotNS, turnstile.SlotName(promiseName, 0), turnstile.RoleSlot, "test.turnstile.io/Database/"+ns+"/db-b", t0.Add(3*time.Minute),
		map[string]string{turnstile.AnnotationUID: string(reqs["db-b"].GetUID()), turnstile.AnnotationRequest: ns + "/db-b",
			turnstile.AnnotationVersion: "v2", turnstile.AnnotationPhase: turnstile.PhaseUpgrading, turnstile.AnnotationWave: "1"})
	for i, name := range []string{"db-c", "db-d"} {
		r := turnstile.Request{Kind: "Database", Namespace: ns, Name: name, UID: reqs[name].GetUID()}
		r.Group = "test.turnstile.io"
		putLease(ctx, slotNS, turnstile.TicketName(promiseName, r), turnstile.RoleTicket, r.Identity(), t0.Add(time.Duration(i+1)*time.Minute),
			map[string]string{turnstile.AnnotationUID: string(r.UID), turnstile.AnnotationRequest: ns + "/" + name, turnstile.AnnotationWave: "1"})
		withStatus(ctx, reqs[name], rollout.Status{Phase: rollout.PhaseWaiting, Version: "v2", Position: i + 1, Since: t0.Add(time.Duration(i+1) * time.Minute),
			Message: "waiting for a rollout slot: " + turnstile.Ordinal(i+1) + " in queue; slot held by " + ns + "/db-b"}, "", time.Time{}, "")
	}
	withStatus(ctx, reqs["db-a"], rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: t0.Add(2 * time.Minute),
		Message: "upgraded to v2: healthy for 30s"}, "healthy", t0.Add(150*time.Second), "v2")
	withStatus(ctx, reqs["db-b"], rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Slot: turnstile.SlotName(promiseName, 0),
		Since: t0.Add(3 * time.Minute), Message: "upgrading to v2"}, "healthy", t0, "")
	return reqs
}

var _ = ginkgo.Describe("kubectl turnstile", ginkgo.Ordered, ginkgo.Label("area:cli"), func() {
	const ns, slotNS = "golden-requests", "golden-slots"
	var reqs map[string]*unstructured.Unstructured

	ginkgo.BeforeAll(func(ctx context.Context) {
		createNamespaces(ctx, ns, slotNS)
		createPromise(ctx, "v2")
		reqs = goldenRollout(ctx, ns, slotNS)
	})

	ginkgo.It("shows the rollout as a table", func(ctx context.Context) {
		code, out, _ := kubectlTurnstile(ctx, slotNS, "status", promiseName, "-n", ns)
		gomega.Expect(code).To(gomega.Equal(0), "progressing, without -w")
		golden("status.txt", out)
	})

	ginkgo.It("shows the rollout as JSON", func(ctx context.Context) {
		code, out, _ := kubectlTurnstile(ctx, slotNS, "status", promiseName, "-n", ns, "-o", "json")
		gomega.Expect(code).To(gomega.Equal(0))
		golden("status.json", out)
	})

	ginkgo.It("finds the Promise itself when only one has a rollout, and limits to -n", func(ctx context.Context) {
		code, out, _ := kubectlTurnstile(ctx, slotNS, "status", "-n", ns)
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("Promise:  " + promiseName))
	})

	ginkgo.It("times out a watch of a rollout still in progress with exit code 2", func(ctx context.Context) {
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "status", promiseName, "-n", ns, "-w", "--timeout=1s")
		gomega.Expect(code).To(gomega.Equal(2))
		gomega.Expect(stderr).To(gomega.ContainSubstring("timed out after 1s"))
	})

	ginkgo.It("pauses and resumes, exiting 1 while paused, and refuses to resume twice", func(ctx context.Context) {
		code, out, _ := kubectlTurnstile(ctx, slotNS, "pause", promiseName, "--reason", "investigating db-b")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("paused the rollout of " + promiseName))
		code, out, _ = kubectlTurnstile(ctx, slotNS, "status", promiseName, "-n", ns)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(out).To(gomega.ContainSubstring("Status:   Paused: investigating db-b"))
		code, _, _ = kubectlTurnstile(ctx, slotNS, "resume", promiseName)
		gomega.Expect(code).To(gomega.Equal(0))
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "resume", promiseName)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.Equal("error: the rollout of " + promiseName + " is not paused\n"))
	})

	ginkgo.It("approves only the next wave that waits for approval", func(ctx context.Context) {
		for args, want := range map[string]string{
			"1": "wave 1 of " + promiseName + " needs no approval (waves waiting for one: 2,3)",
			"3": "wave 3 is not next: approve wave 2 first",
			"x": `wave "x": want a whole number`,
		} {
			code, _, stderr := kubectlTurnstile(ctx, slotNS, "approve", promiseName, args)
			gomega.Expect(code).To(gomega.Equal(1))
			gomega.Expect(stderr).To(gomega.ContainSubstring(want))
		}
		code, out, _ := kubectlTurnstile(ctx, slotNS, "approve", promiseName, "2")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.Equal("approved wave 2 of " + promiseName + "\n"))
	})

	ginkgo.It("skips only a request in the rollout, and only a failed one without --force", func(ctx context.Context) {
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "skip", promiseName, ns+"/db-e")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.ContainSubstring(ns + "/db-e is not in the rollout of " + promiseName + ": it holds no slot"))
		code, _, stderr = kubectlTurnstile(ctx, slotNS, "skip", promiseName, "db-b", "-n", ns)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.ContainSubstring("is Upgrading, not Failed"))

		code, out, _ := kubectlTurnstile(ctx, slotNS, "skip", promiseName, "db-b", "-n", ns, "--force")
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.ContainSubstring("skipped " + ns + "/db-b's upgrade to v2: released " + turnstile.SlotName(promiseName, 0)))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.BeEmpty())
		gomega.Expect(liveTurnstileStatus(ctx, reqs["db-b"])).To(gomega.HaveKeyWithValue("phase", "Skipped"))
		gomega.Expect(eventReasons(ctx, reqs["db-b"])).To(gomega.ContainElement("Warning/UpgradeSkipped"))
	})

	ginkgo.It("explains how to roll back where Kratix has no ResourceBindings", func(ctx context.Context) {
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "rollback", promiseName)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.ContainSubstring("This Kratix has no ResourceBindings"))
		gomega.Expect(stderr).To(gomega.ContainSubstring("apply v1 of the Promise again"))
	})

	ginkgo.It("aborts once, and then exits 1", func(ctx context.Context) {
		code, out, _ := kubectlTurnstile(ctx, slotNS, "abort", promiseName)
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.Equal("aborted the rollout of " + promiseName + " to v2\n"))
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "abort", promiseName)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.ContainSubstring("already aborted"))
		code, out, _ = kubectlTurnstile(ctx, slotNS, "status", promiseName, "-n", ns)
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(out).To(gomega.ContainSubstring("Status:   Aborted"))
	})

	ginkgo.It("names an unknown Promise", func(ctx context.Context) {
		code, _, stderr := kubectlTurnstile(ctx, slotNS, "status", "nope")
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.Equal("error: unknown Promise \"nope\" (kubectl get promises lists them)\n"))
	})
})
