package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/health"
)

func readOutput(s *stage, rel string) map[string]any {
	ginkgo.GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(s.dir, "output", rel))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	out := map[string]any{}
	gomega.Expect(yaml.Unmarshal(data, &out)).To(gomega.Succeed())
	return out
}

func outputFiles(s *stage) []string {
	var names []string
	_ = filepath.WalkDir(filepath.Join(s.dir, "output"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(s.dir, "output"), path)
			names = append(names, rel)
		}
		return nil
	})
	return names
}

const checksDoc = `apiVersion: turnstile.kratix.io/v1alpha1
kind: Checks
checks:
  - name: web
    http: {url: "http://${name}.${namespace}.svc/healthz", expectStatus: [200]}
    failureThreshold: 2
`

var _ = ginkgo.Describe("the health-definition stage", ginkgo.Label("area:health"), func() {
	var ns string
	ginkgo.BeforeEach(func() { ns = env.Namespace("requests") })

	ginkgo.It("renders the request's HealthDefinition with the target version stamped in", func(ctx context.Context) {
		req := createRequest(ctx, ns, "web-1", true, nil)
		s := runStage(ctx, "health-definition", req, 0, stageOpts{env: map[string]string{"TURNSTILE_CHECKS": checksDoc}})
		gomega.Expect(outputFiles(s)).To(gomega.ConsistOf("health-definition.yaml"))
		def := readOutput(s, "health-definition.yaml")
		gomega.Expect(def).To(gomega.HaveKeyWithValue("apiVersion", "platform.kratix.io/v1alpha1"))
		gomega.Expect(def).To(gomega.HaveKeyWithValue("kind", "HealthDefinition"))
		meta := def["metadata"].(map[string]any)
		gomega.Expect(meta).To(gomega.HaveKeyWithValue("name", "database-"+ns+"-web-1"))
		gomega.Expect(meta["annotations"]).To(gomega.HaveKeyWithValue(health.VersionAnnotation, "v2"))
		spec := def["spec"].(map[string]any)
		gomega.Expect(spec["promiseRef"]).To(gomega.HaveKeyWithValue("name", promiseName))
		gomega.Expect(spec["resourceRef"]).To(gomega.And(gomega.HaveKeyWithValue("name", "web-1"),
			gomega.HaveKeyWithValue("namespace", ns), gomega.HaveKeyWithValue("generation", 1.0)))
		gomega.Expect(spec).To(gomega.HaveKeyWithValue("schedule", "@every 30s"))
		gomega.Expect(spec["input"]).To(gomega.And(gomega.ContainSubstring("version: v2"),
			gomega.ContainSubstring("http://web-1."+ns+".svc/healthz")))
	})

	ginkgo.It("writes into a sub-directory scheduled by its own destination selector", func(ctx context.Context) {
		req := createRequest(ctx, ns, "web-1", true, nil)
		s := runStage(ctx, "health-definition", req, 0, stageOpts{
			seedStatus: "", args: []string{"--http-url=https://web.example.com/healthz", "--directory=health", "--destination-selector=role=apps"}})
		gomega.Expect(outputFiles(s)).To(gomega.ConsistOf("health/health-definition.yaml"))
		data, err := os.ReadFile(filepath.Join(s.dir, "metadata", "destination-selectors.yaml"))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(string(data)).To(gomega.And(gomega.ContainSubstring("directory: health"), gomega.ContainSubstring("role: apps")))
	})

	ginkgo.DescribeTable("fails bad input with one line and writes nothing",
		func(ctx context.Context, o stageOpts, want string) {
			req := createRequest(ctx, ns, "web-1", true, nil)
			s := runStage(ctx, "health-definition", req, 1, o)
			gomega.Expect(strings.Split(s.stderr(), "\n")).To(gomega.HaveLen(1))
			gomega.Expect(s.stderr()).To(gomega.ContainSubstring(want))
			gomega.Expect(outputFiles(s)).To(gomega.BeEmpty())
			gomega.Expect(s.metadataFiles()).To(gomega.BeEmpty())
		},
		ginkgo.Entry("a bad cron", stageOpts{args: []string{"--http-url=http://x/", "--schedule=*/5 * *"}}, `--schedule: schedule "*/5 * *"`),
		ginkgo.Entry("an unknown check type", stageOpts{env: map[string]string{"TURNSTILE_CHECKS": strings.Replace(checksDoc, "http:", "grpc:", 1)}},
			`unknown field "grpc"`),
		ginkgo.Entry("a bad URL", stageOpts{args: []string{"--http-url=web:8080/healthz"}}, `--http-url "web:8080/healthz": want an absolute http or https URL`),
		ginkgo.Entry("a bad expression", stageOpts{env: map[string]string{"TURNSTILE_CHECKS": "apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n  - name: p\n    prometheus: {url: \"http://p\", query: up, expect: \"result ~ 1\"}\n"}},
			`check "p": prometheus.expect "result ~ 1"`),
		ginkgo.Entry("an unknown variable", stageOpts{args: []string{"--http-url=http://${host}/"}}, "the checks document uses ${host}"),
		ginkgo.Entry("no checks at all", stageOpts{}, "no checks: give --checks-file"),
		ginkgo.Entry("a nested directory", stageOpts{args: []string{"--http-url=http://x/", "--directory=a/b", "--destination-selector=x=y"}},
			`--directory "a/b": Kratix takes a top-level directory name only`),
	)
})

var _ = ginkgo.Describe("the check stage (no agent)", ginkgo.Label("area:health"), func() {
	ginkgo.It("writes the request's HealthRecord, with thresholds that span runs", func(ctx context.Context) {
		ns := env.Namespace("requests")
		var status atomic.Int32
		status.Store(http.StatusOK)
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
		defer app.Close()
		req := createRequest(ctx, ns, "web-1", true, nil)
		// One round a run: the next round would be due after the run's budget.
		opts := stageOpts{args: []string{"--http-url=" + app.URL, "--failure-threshold=2", "--wait=1500ms", "--interval=2s", "--min-healthy=1s"}}
		records := dyn().Resource(health.HealthRecords).Namespace(ns)
		name := "database-" + ns + "-web-1"
		record := func() *health.HealthRecord {
			u, err := records.Get(ctx, name, metav1.GetOptions{})
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			rec, err := health.FromUnstructured[health.HealthRecord](u)
			gomega.Expect(err).NotTo(gomega.HaveOccurred())
			return rec
		}

		runStage(ctx, "check", req, 0, opts)
		rec := record()
		gomega.Expect(rec.Data.State).To(gomega.Equal("healthy"))
		gomega.Expect(rec.Data.LastRun).To(gomega.BeNumerically(">", 0))
		gomega.Expect(rec.Data.Details).To(gomega.HaveKeyWithValue("version", "v2"))
		gomega.Expect(rec.Data.ResourceRef.Name).To(gomega.Equal("web-1"))
		gomega.Expect(rec.Data.PromiseRef.Name).To(gomega.Equal(promiseName))

		status.Store(http.StatusInternalServerError)
		s := runStage(ctx, "check", req, 0, opts)
		gomega.Expect(record().Data.State).To(gomega.Equal("healthy"), "one failure is below the threshold of 2")
		gomega.Expect(s.stdout()).To(gomega.ContainSubstring("answered 500"))
		runStage(ctx, "check", req, 0, opts)
		gomega.Expect(record().Data.State).To(gomega.Equal("unhealthy"), "the second failure in a row, in another run, crosses it")

		status.Store(http.StatusOK)
		runStage(ctx, "check", req, 0, opts)
		gomega.Expect(record().Data.State).To(gomega.Equal("healthy"))
	})
})
