package integration

import (
	"context"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// These specs hold the stages to the Kratix pipeline contract: what they read, what they write
// into /kratix/metadata, and how they fail.
var _ = ginkgo.Describe("the stages and the Kratix contract", ginkgo.Label("area:turnstile", "area:contract"), func() {
	var slotNS, ns string
	ginkgo.BeforeEach(func() {
		slotNS = env.Namespace("slots")
		ns = env.Namespace("requests")
	})

	ginkgo.It("writes retryAfter and a Waiting status when the wait budget runs out", func(ctx context.Context) {
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS})
		waiter := createRequest(ctx, ns, "waiter", true, nil)
		s := runStage(ctx, "acquire", waiter, 0, stageOpts{slotNamespace: slotNS, args: []string{"--wait=1s", "--retry-after=45s"}})

		control := s.metadata("workflow-control.yaml")
		gomega.Expect(control).To(gomega.HaveKeyWithValue("retryAfter", "45s"))
		gomega.Expect(control["message"]).To(gomega.Equal("waiting for a rollout slot: 1st in queue; slot held by " + ns + "/holder"))
		gomega.Expect(s.turnstileStatus()).To(gomega.And(
			gomega.HaveKeyWithValue("phase", "Waiting"), gomega.HaveKeyWithValue("position", 1.0), gomega.HaveKeyWithValue("version", "v2")))
		gomega.Expect(s.metadata("status.yaml")).NotTo(gomega.HaveKey("kratix"))
		gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleTicket)).To(gomega.HaveLen(1), "the ticket keeps its place for the retry")
	})

	ginkgo.It("keeps what an earlier container wrote to status.yaml, and leaves no staging files", func(ctx context.Context) {
		holder := createRequest(ctx, ns, "holder", true, nil)
		s := runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS, seedStatus: "endpoint: db.example.com\n"})
		gomega.Expect(s.metadata("status.yaml")).To(gomega.And(
			gomega.HaveKeyWithValue("endpoint", "db.example.com"), gomega.HaveKey("turnstile")))
		gomega.Expect(s.metadataFiles()).To(gomega.ConsistOf("status.yaml"))
	})

	ginkgo.It("gives up the slot and the queue in a delete workflow", func(ctx context.Context) {
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS})
		s := runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS, action: "delete"})
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("released its slot"))
		gomega.Expect(holderOf(ctx, slotNS, 0)).To(gomega.BeEmpty())
	})

	ginkgo.It("writes no lease in a dry run", func(ctx context.Context) {
		holder := createRequest(ctx, ns, "holder", true, nil)
		runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{"KRATIX_DRY_RUN": "true"}})
		list, err := env.Client.CoordinationV1().Leases(slotNS).List(ctx, metav1.ListOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(list.Items).To(gomega.BeEmpty())
	})

	ginkgo.It("lets a brand-new request's first install through without a slot", func(ctx context.Context) {
		fresh := createRequest(ctx, ns, "fresh", false, nil)
		s := runStage(ctx, "acquire", fresh, 0, stageOpts{slotNamespace: slotNS})
		gomega.Expect(s.turnstileStatus()["message"]).To(gomega.ContainSubstring("first install is not gated"))
		gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleSlot)).To(gomega.BeEmpty())
	})

	ginkgo.It("names the rollout after the Promise's version label when no target version is set", func(ctx context.Context) {
		createPromise(ctx, "v7")
		holder := createRequest(ctx, ns, "holder", true, nil)
		s := runStage(ctx, "acquire", holder, 0, stageOpts{slotNamespace: slotNS, env: map[string]string{"TURNSTILE_TARGET_VERSION": ""}})
		gomega.Expect(s.turnstileStatus()).To(gomega.HaveKeyWithValue("version", "v7"))
		rollout, err := env.Client.CoordinationV1().Leases(slotNS).Get(ctx, turnstile.RolloutName(promiseName), metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(rollout.Annotations).To(gomega.HaveKeyWithValue(turnstile.AnnotationTarget, "v7"))
	})

	ginkgo.It("refuses a status.yaml it could not merge into before it takes a slot", func(ctx context.Context) {
		req := createRequest(ctx, ns, "req", true, nil)
		s := runStage(ctx, "acquire", req, 1, stageOpts{slotNamespace: slotNS, seedStatus: "endpoint: [unclosed\n"})
		gomega.Expect(strings.Split(s.stderr(), "\n")).To(gomega.HaveLen(1), "one line: %q", s.stderr())
		gomega.Expect(s.stderr()).To(gomega.ContainSubstring("reading the status.yaml an earlier container left"))
		gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleSlot)).To(gomega.BeEmpty(), "no slot taken, none left held")
	})

	ginkgo.DescribeTable("fails bad input with one line naming the problem, and writes nothing",
		func(ctx context.Context, stageName string, o stageOpts, labels map[string]string, want string) {
			req := createRequest(ctx, ns, "req", true, labels)
			if o.slotNamespace == "" {
				o.slotNamespace = slotNS
			}
			s := runStage(ctx, stageName, req, 1, o)
			gomega.Expect(strings.Split(s.stderr(), "\n")).To(gomega.HaveLen(1), "one line: %q", s.stderr())
			gomega.Expect(s.stderr()).To(gomega.HavePrefix("turnstile " + stageName + ": "))
			gomega.Expect(s.stderr()).To(gomega.ContainSubstring(want))
			gomega.Expect(s.metadataFiles()).To(gomega.BeEmpty())
			gomega.Expect(leasesIn(ctx, slotNS, turnstile.RoleSlot)).To(gomega.BeEmpty())
		},
		ginkgo.Entry("no object.yaml", "acquire", stageOpts{objectYAML: "-"}, nil, "object.yaml: no such file or directory"),
		ginkgo.Entry("malformed object.yaml", "acquire", stageOpts{objectYAML: "kind: [unclosed"}, nil, "reading "),
		ginkgo.Entry("object.yaml of another request", "await", stageOpts{objectYAML: "metadata: {name: other, namespace: x, uid: u}"}, nil,
			"it holds x/other but KRATIX_OBJECT_NAMESPACE/KRATIX_OBJECT_NAME say"),
		ginkgo.Entry("missing KRATIX_* variables", "acquire", stageOpts{env: map[string]string{"KRATIX_PROMISE_NAME": "", "KRATIX_CRD_PLURAL": ""}}, nil,
			"missing environment variable KRATIX_PROMISE_NAME, KRATIX_CRD_PLURAL"),
		ginkgo.Entry("an invalid duration flag", "acquire", stageOpts{args: []string{"--wait=soon"}}, nil, `invalid argument "soon" for "--wait"`),
		ginkgo.Entry("an invalid duration variable", "await", stageOpts{env: map[string]string{"TURNSTILE_MIN_HEALTHY": "1 minute"}}, nil,
			`invalid TURNSTILE_MIN_HEALTHY="1 minute"`),
		ginkgo.Entry("a soak no run can complete", "await", stageOpts{env: map[string]string{"TURNSTILE_WAIT": "60s", "TURNSTILE_MIN_HEALTHY": "2m"}}, nil,
			"--min-healthy (2m0s) must be shorter than --wait (1m0s)"),
		ginkgo.Entry("N < 1", "acquire", stageOpts{args: []string{"--slots=0"}}, nil, `invalid argument "0" for "--slots" flag: want a number of requests from 1 to 1000`),
		ginkgo.Entry("a share over the whole fleet", "acquire", stageOpts{env: map[string]string{"TURNSTILE_SLOTS": "150%"}}, nil, `invalid TURNSTILE_SLOTS="150%"`),
		ginkgo.Entry("an unknown preflight", "acquire", stageOpts{args: []string{"--preflight=maybe"}}, nil, `--preflight "maybe": want upgrade or wait`),
		ginkgo.Entry("a wave cap that is not a pair", "acquire", stageOpts{args: []string{"--wave-slots=1"}}, nil, `--wave-slots: "1" is not WAVE=SLOTS`),
		ginkgo.Entry("an unknown flag", "await", stageOpts{args: []string{"--frobnicate"}}, nil, "unknown flag: --frobnicate"),
		ginkgo.Entry("a bad wave label", "acquire", stageOpts{}, map[string]string{turnstile.WaveKey: "first"}, `turnstile.kratix.io/wave="first"`),
		ginkgo.Entry("a missing slot namespace", "acquire", stageOpts{slotNamespace: "no-such-namespace"}, nil,
			`slot namespace "no-such-namespace" does not exist`),
	)
})
