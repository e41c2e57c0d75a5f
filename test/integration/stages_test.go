package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/test/patience"
	"github.com/kratix-turnstile/turnstile/test/testbin"
)

// stageBin is the turnstile binary, built once for the suite by TestMain.
var (
	stageBin string
	scratch  string
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		var err error
		if scratch, err = os.MkdirTemp("", "turnstile-integration-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(scratch)
		if stageBin, err = testbin.Build(scratch, "github.com/kratix-turnstile/turnstile/cmd/turnstile"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

var databases = schema.GroupVersionResource{Group: "test.turnstile.io", Version: "v1alpha1", Resource: "databases"}

const promiseName = "database"

func dyn() dynamic.Interface { return dynamic.NewForConfigOrDie(env.Config) }

var adminKubeconfig = sync.OnceValue(func() string {
	path := filepath.Join(scratch, "admin.kubeconfig")
	gomega.Expect(os.WriteFile(path, env.Kubeconfig, 0o600)).To(gomega.Succeed())
	return path
})

// createRequest creates a Database request. configured marks it as having completed a configure
// workflow before, so acquire treats its run as an upgrade (brand-new requests pass through).
func createRequest(ctx context.Context, ns, name string, configured bool, labels map[string]string) *unstructured.Unstructured {
	ginkgo.GinkgoHelper()
	obj := &unstructured.Unstructured{}
	obj.SetAPIVersion("test.turnstile.io/v1alpha1")
	obj.SetKind("Database")
	obj.SetNamespace(ns)
	obj.SetName(name)
	obj.SetLabels(labels)
	obj.Object["spec"] = map[string]any{"size": "small"}
	created, err := dyn().Resource(databases).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	if configured {
		created = patchStatus(ctx, created, map[string]any{"lastSuccessfulConfigureWorkflowTime": time.Now().UTC().Format(time.RFC3339)})
	}
	return created
}

// patchStatus merges fields into the request's status, playing Kratix's part.
func patchStatus(ctx context.Context, obj *unstructured.Unstructured, status map[string]any) *unstructured.Unstructured {
	ginkgo.GinkgoHelper()
	patch, err := yaml.YAMLToJSON(mustYAML(map[string]any{"status": status}))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	out, err := dyn().Resource(databases).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return out
}

// freshNow is the lastRun of a reading taken after the slot was taken: lastRun has whole seconds,
// and a record of the attempt's first second could predate it, so it is never trusted.
func freshNow() time.Time { return time.Now().Add(time.Second) }

// setHealth writes status.healthStatus the way Kratix's HealthRecord controller does.
func setHealth(ctx context.Context, obj *unstructured.Unstructured, state string, lastRun time.Time, version string) {
	ginkgo.GinkgoHelper()
	record := map[string]any{
		"state": state, "lastRun": lastRun.Unix(),
		"source": map[string]any{"name": obj.GetName() + "-health", "namespace": obj.GetNamespace()},
	}
	// Stamped as the agent stamps its records: for this Promise and this request.
	record["details"] = health.Stamp{Promise: promiseName, RequestUID: string(obj.GetUID()), Version: version}.Apply(nil)
	patchStatus(ctx, obj, map[string]any{"healthStatus": map[string]any{"state": state, "healthRecords": []any{record}}})
}

var promises = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "promises"}

// createPromise creates the test Promise, labelled with a version, for the spec's duration.
// Its API is the test CRD, databases.test.turnstile.io.
func createPromise(ctx context.Context, version string) {
	ginkgo.GinkgoHelper()
	createPromiseWith(ctx, version, nil)
}

// createPromiseWith is createPromise with pipelines in its resource configure workflow.
func createPromiseWith(ctx context.Context, version string, configure []any) {
	ginkgo.GinkgoHelper()
	api := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "databases.test.turnstile.io"},
		"spec": map[string]any{"group": databases.Group, "scope": "Namespaced",
			"names":    map[string]any{"kind": "Database", "plural": databases.Resource, "singular": "database"},
			"versions": []any{map[string]any{"name": databases.Version, "served": true, "storage": true}}},
	}
	promise := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise",
		"metadata": map[string]any{"name": promiseName, "labels": map[string]any{"kratix.io/promise-version": version}},
		"spec":     map[string]any{"api": api},
	}}
	if configure != nil {
		promise.Object["spec"].(map[string]any)["workflows"] = map[string]any{"resource": map[string]any{"configure": configure}}
	}
	_, err := dyn().Resource(promises).Create(ctx, promise, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(dyn().Resource(promises).Delete, promiseName, metav1.DeleteOptions{})
}

func mustYAML(v any) []byte {
	out, err := yaml.Marshal(v)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return out
}

// stage is one run of a stage binary for a request, in its own /kratix directories.
type stage struct {
	dir     string
	session *gexec.Session
}

type stageOpts struct {
	slotNamespace string
	kubeconfig    string // default: admin
	action        string // default: configure
	env           map[string]string
	args          []string
	// objectYAML replaces object.yaml's content; "-" leaves it out.
	objectYAML string
	// seedStatus is a status.yaml written by an earlier container of the same pipeline.
	seedStatus string
	// within bounds how long runStage waits for the stage to exit; default a minute (scaled).
	within time.Duration
}

// startStage runs `turnstile <name>` for the request as Kratix would: object.yaml from a fresh
// read of the request, the KRATIX_* environment, and a kubeconfig.
func startStage(ctx context.Context, name string, obj *unstructured.Unstructured, o stageOpts) *stage {
	ginkgo.GinkgoHelper()
	dir, err := os.MkdirTemp(scratch, name+"-")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	for _, d := range []string{"input", "output", "metadata"} {
		gomega.Expect(os.MkdirAll(filepath.Join(dir, d), 0o755)).To(gomega.Succeed())
	}
	switch o.objectYAML {
	case "":
		live, err := dyn().Resource(databases).Namespace(obj.GetNamespace()).Get(ctx, obj.GetName(), metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(os.WriteFile(filepath.Join(dir, "input", "object.yaml"), mustYAML(live.Object), 0o644)).To(gomega.Succeed())
	case "-":
	default:
		gomega.Expect(os.WriteFile(filepath.Join(dir, "input", "object.yaml"), []byte(o.objectYAML), 0o644)).To(gomega.Succeed())
	}
	if o.seedStatus != "" {
		gomega.Expect(os.WriteFile(filepath.Join(dir, "metadata", "status.yaml"), []byte(o.seedStatus), 0o644)).To(gomega.Succeed())
	}
	if o.kubeconfig == "" {
		o.kubeconfig = adminKubeconfig()
	}
	if o.action == "" {
		o.action = "configure"
	}
	vars := map[string]string{
		"KRATIX_WORKFLOW_ACTION": o.action, "KRATIX_WORKFLOW_TYPE": "resource",
		"KRATIX_PROMISE_NAME": promiseName, "KRATIX_PIPELINE_NAME": "turnstile-" + name,
		"KRATIX_OBJECT_GROUP": databases.Group, "KRATIX_OBJECT_VERSION": databases.Version,
		"KRATIX_OBJECT_KIND": "Database", "KRATIX_OBJECT_NAME": obj.GetName(),
		"KRATIX_OBJECT_NAMESPACE": obj.GetNamespace(), "KRATIX_CRD_PLURAL": databases.Resource,
		"KRATIX_CLUSTER_SCOPED": "false",
		"KUBECONFIG":            o.kubeconfig, "TURNSTILE_KRATIX_DIR": dir,
		"TURNSTILE_SLOT_NAMESPACE": o.slotNamespace, "TURNSTILE_TARGET_VERSION": "v2",
		"TURNSTILE_WAIT": "0", "HOME": dir, "PATH": os.Getenv("PATH"),
		// The specs share one kind, so the gates would judge every spec's requests together,
		// and a spec's requests would wait for other specs' earlier waves: the specs about
		// them turn them on.
		"TURNSTILE_GATES": "false", "TURNSTILE_WAVE_GRACE": "0",
	}
	for k, v := range o.env {
		vars[k] = v
	}
	cmd := exec.Command(stageBin, append([]string{name}, o.args...)...)
	for k, v := range vars {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	prefix := fmt.Sprintf("[%s %s] ", name, obj.GetName())
	session, err := gexec.Start(cmd, gexec.NewPrefixedWriter(prefix, ginkgo.GinkgoWriter), gexec.NewPrefixedWriter(prefix, ginkgo.GinkgoWriter))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(func() { session.Kill().Wait(5 * time.Second) })
	return &stage{dir: dir, session: session}
}

// runStage runs a stage to its end and returns it; it fails the spec if it does not exit with code.
func runStage(ctx context.Context, name string, obj *unstructured.Unstructured, code int, o stageOpts) *stage {
	ginkgo.GinkgoHelper()
	s := startStage(ctx, name, obj, o)
	if o.within == 0 {
		o.within = patience.Scale(time.Minute)
	}
	gomega.Eventually(s.session).WithTimeout(o.within).Should(gexec.Exit(code))
	return s
}

// metadata reads a file the stage wrote into /kratix/metadata, as a map; nil if absent.
func (s *stage) metadata(name string) map[string]any {
	ginkgo.GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(s.dir, "metadata", name))
	if os.IsNotExist(err) {
		return nil
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	out := map[string]any{}
	gomega.Expect(yaml.Unmarshal(data, &out)).To(gomega.Succeed())
	return out
}

// turnstileStatus is the turnstile block the stage wrote into status.yaml.
func (s *stage) turnstileStatus() map[string]any {
	ginkgo.GinkgoHelper()
	st := s.metadata("status.yaml")
	gomega.Expect(st).To(gomega.HaveKey("turnstile"))
	return st["turnstile"].(map[string]any)
}

// metadataFiles lists what the stage left in /kratix/metadata.
func (s *stage) metadataFiles() []string {
	entries, _ := os.ReadDir(filepath.Join(s.dir, "metadata"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func (s *stage) stderr() string { return strings.TrimSpace(string(s.session.Err.Contents())) }
func (s *stage) stdout() string { return string(s.session.Out.Contents()) }
