package integration

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/plan"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// stagePipeline is a Pipeline running one Turnstile stage, configured by env.
func stagePipeline(stage string, env map[string]string, args ...string) any {
	var vars []any
	for k, v := range env {
		vars = append(vars, map[string]any{"name": k, "value": v})
	}
	all := []any{stage}
	for _, a := range args {
		all = append(all, a)
	}
	return map[string]any{"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Pipeline",
		"metadata": map[string]any{"name": "turnstile-" + stage},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": stage, "image": "turnstile:dev", "args": all, "env": vars}}}}
}

var _ = ginkgo.Describe("kubectl turnstile plan", ginkgo.Label("area:cli"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	ginkgo.It("previews the rollout from the Promise's own stages, in the order they will go, and writes nothing", func(ctx context.Context) {
		createPromiseWith(ctx, "v2", []any{
			stagePipeline("acquire", map[string]string{"TURNSTILE_SLOTS": "50%", "TURNSTILE_WAVE_SOAK": "10m"}, "--wave-slots=0=1", "--require-approval-waves=2"),
			stagePipeline("await", map[string]string{"TURNSTILE_MIN_HEALTHY": "30s"}),
		})
		createRequest(ctx, ns, "zed", true, nil)
		createRequest(ctx, ns, "shop", true, map[string]string{turnstile.WaveKey: "0"})
		createRequest(ctx, ns, "chat", true, map[string]string{turnstile.WaveKey: "2"})
		createRequest(ctx, ns, "blog", true, nil)
		createRequest(ctx, ns, "fresh", false, nil)
		done := createRequest(ctx, ns, "done", true, nil)
		patchStatus(ctx, done, map[string]any{"turnstile": map[string]any{"phase": "Upgraded", "version": "v2"}})

		code, out, stderr := kubectlTurnstile(ctx, slotNS, "plan", promiseName, "-o", "json")
		gomega.Expect(code).To(gomega.Equal(0), stderr)
		var p plan.Plan
		gomega.Expect(json.Unmarshal([]byte(out), &p)).To(gomega.Succeed())
		gomega.Expect(p.Target).To(gomega.Equal("v2"), "the Promise's version")
		var order []string
		for _, w := range p.Waves {
			for _, r := range w.Requests {
				if strings.HasPrefix(r.Request, ns+"/") { // the specs share one kind
					order = append(order, strings.TrimPrefix(r.Request, ns+"/"))
				}
			}
		}
		gomega.Expect(order).To(gomega.Equal([]string{"shop", "blog", "zed", "chat"}), "canary first, then by wave; within a wave by name until they queue")
		gomega.Expect(p.Waves[0].Slots).To(gomega.Equal(1), "--wave-slots=0=1")
		gomega.Expect(p.SlotsFrom).To(gomega.HavePrefix("50% of "))
		gomega.Expect(p.FirstInstalls).To(gomega.ContainElement(plan.Row{Request: ns + "/fresh", Wave: 1, Note: "first install: not gated"}))
		gomega.Expect(p.OnTarget).To(gomega.ContainElement(gomega.HaveField("Request", ns+"/done")))
		gomega.Expect(p.Gates).To(gomega.ContainElements("wave 2 waits for approval: kubectl turnstile approve "+promiseName+" 2",
			"each wave starts 10m after the waves before it are done (--wave-soak)"))

		code, out, _ = kubectlTurnstile(ctx, slotNS, "plan", promiseName)
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(out).To(gomega.HavePrefix("Plan for " + promiseName + ": roll out v2. Nothing was written.\n"))
		gomega.Expect(out).To(gomega.MatchRegexp(`\n1 +0 +` + ns + `/shop +- `))
		leases, err := env.Client.CoordinationV1().Leases(slotNS).List(ctx, metav1.ListOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(leases.Items).To(gomega.BeEmpty(), "a plan writes nothing")
	})

	ginkgo.It("refuses what it cannot plan with one line", func(ctx context.Context) {
		createPromiseWith(ctx, "v2", []any{stagePipeline("acquire", nil, "--slots=0")})
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"plan", "no-such-promise"}, `error: unknown Promise "no-such-promise" (kubectl get promises lists them)`},
			{[]string{"plan", promiseName}, `error: the acquire stage of Promise ` + promiseName + ` (container "acquire"): invalid argument "0" for "--slots" flag`},
			{[]string{"plan", promiseName, "-o", "yaml"}, `error: --output "yaml": want text or json`},
			{[]string{"plan", promiseName, "--pipeline-time", "-1s"}, "error: --pipeline-time must be from 0 to 24h, got -1s"},
		} {
			code, out, stderr := kubectlTurnstile(ctx, slotNS, tt.args...)
			gomega.Expect(code).To(gomega.Equal(1), "%v", tt.args)
			gomega.Expect(out).To(gomega.BeEmpty())
			gomega.Expect(stderr).To(gomega.HavePrefix(tt.want), "%v", tt.args)
			gomega.Expect(strings.Count(stderr, "\n")).To(gomega.Equal(1), "%v", tt.args)
		}
	})
})
