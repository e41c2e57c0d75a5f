package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

var _ = ginkgo.Describe("the example webapp Promise", ginkgo.Label("area:promise"), func() {
	ginkgo.It("renders into a Promise that Kratix's CRD accepts, with a valid checks document", func(ctx context.Context) {
		raw := shipped("promises", "webapp", "promise.yaml")
		rendered := strings.NewReplacer("__IMAGE_REPO__", "ghcr.io/kratix-turnstile", "__IMAGE_TAG__", "v0.1.0",
			"__WEBAPP_VERSION__", "v1", "__TURNSTILE_WAIT__", "0").Replace(string(raw))
		gomega.Expect(rendered).NotTo(gomega.ContainSubstring("__"), "every placeholder is filled")

		promise := &unstructured.Unstructured{}
		gomega.Expect(yaml.Unmarshal([]byte(rendered), &promise.Object)).To(gomega.Succeed())
		created, err := dyn().Resource(promises).Create(ctx, promise, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		ginkgo.DeferCleanup(dyn().Resource(promises).Delete, created.GetName(), metav1.DeleteOptions{})

		pipelines, _, _ := unstructured.NestedSlice(created.Object, "spec", "workflows", "resource", "configure")
		gomega.Expect(pipelines).To(gomega.HaveLen(3))
		var names []string
		for _, p := range pipelines {
			names = append(names, p.(map[string]any)["metadata"].(map[string]any)["name"].(string))
		}
		gomega.Expect(names).To(gomega.Equal([]string{"turnstile-acquire", "webapp-configure", "turnstile-await"}))

		configure := pipelines[1].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[1].(map[string]any)
		env := configure["env"].([]any)[1].(map[string]any)
		gomega.Expect(env["name"]).To(gomega.Equal("TURNSTILE_CHECKS"))
		doc := strings.NewReplacer("${name}", "shop", "${namespace}", "default").Replace(env["value"].(string))
		_, err = checks.Parse([]byte(doc))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
	})

	ginkgo.It("wraps another Promise with kubectl turnstile wrap into one Kratix's CRD accepts, and only once", func(ctx context.Context) {
		root, err := controlplane.ModuleDir("")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		input := filepath.Join(root, "pkg", "cli", "testdata", "redis-promise.yaml")
		code, out, stderr := kubectlTurnstile(ctx, "unused", "wrap", input, "--slots=2")
		gomega.Expect(code).To(gomega.Equal(0), stderr)

		promise := &unstructured.Unstructured{}
		gomega.Expect(yaml.Unmarshal([]byte(out), &promise.Object)).To(gomega.Succeed())
		promise.SetName("redis-wrapped")
		created, err := dyn().Resource(promises).Create(ctx, promise, metav1.CreateOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Kratix's CRD refused the wrapped Promise")
		ginkgo.DeferCleanup(dyn().Resource(promises).Delete, created.GetName(), metav1.DeleteOptions{})
		pipelines, _, _ := unstructured.NestedSlice(created.Object, "spec", "workflows", "resource", "configure")
		var names []string
		for _, p := range pipelines {
			names = append(names, p.(map[string]any)["metadata"].(map[string]any)["name"].(string))
		}
		gomega.Expect(names).To(gomega.Equal([]string{"turnstile-acquire", "instance-configure", "turnstile-await"}))
		gomega.Expect(out).To(gomega.ContainSubstring("value: \"2\""), "--slots reaches acquire")

		wrapped := filepath.Join(scratch, "wrapped.yaml")
		gomega.Expect(os.WriteFile(wrapped, []byte(out), 0o600)).To(gomega.Succeed())
		code, again, stderr := kubectlTurnstile(ctx, "unused", "wrap", wrapped)
		gomega.Expect(code).To(gomega.Equal(0))
		gomega.Expect(again).To(gomega.Equal(out), "wrapping twice changes nothing")
		gomega.Expect(stderr).To(gomega.ContainSubstring("is wrapped already"))

		code, _, stderr = kubectlTurnstile(ctx, "unused", "wrap", filepath.Join(scratch, "missing.yaml"))
		gomega.Expect(code).To(gomega.Equal(1))
		gomega.Expect(stderr).To(gomega.HavePrefix("error: reading the Promise: open "))
		gomega.Expect(strings.Count(stderr, "\n")).To(gomega.Equal(1))
	})
})
