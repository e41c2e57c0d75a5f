package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/image"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

// BenchmarkStageColdStart: from exec of `turnstile acquire`, built as the stage image builds it,
// to its first API request, which a local listener records and refuses. Target: <= 50ms.
func BenchmarkStageColdStart(b *testing.B) {
	root, err := controlplane.ModuleDir("")
	if err != nil {
		b.Fatal(err)
	}
	specs, err := image.LoadSpecs(filepath.Join(root, "images"))
	if err != nil {
		b.Fatal(err)
	}
	gcflags := ""
	for _, s := range specs {
		if s.Name == "stage" {
			gcflags = s.GCFlags
		}
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "turnstile")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-gcflags="+gcflags, "-o", bin, "./cmd/turnstile")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the stage binary: %v\n%s", err, out)
	}
	// armed is set for each run, so retries from a run that already ended are not counted.
	var armed atomic.Bool
	first := make(chan time.Time, 1)
	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if armed.CompareAndSwap(true, false) {
			first <- time.Now()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403}`)
	}))
	defer apiserver.Close()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: %q}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n", apiserver.URL)
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{"input", "output", "metadata"} {
		if err := os.MkdirAll(filepath.Join(dir, "kratix", d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	object := "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: db, namespace: default, uid: u1}\nstatus: {lastSuccessfulConfigureWorkflowTime: x}\n"
	if err := os.WriteFile(filepath.Join(dir, "kratix", "input", "object.yaml"), []byte(object), 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"KUBECONFIG=" + kubeconfig, "TURNSTILE_KRATIX_DIR=" + filepath.Join(dir, "kratix"), "TURNSTILE_TARGET_VERSION=v2",
		"KRATIX_WORKFLOW_ACTION=configure", "KRATIX_WORKFLOW_TYPE=resource", "KRATIX_PROMISE_NAME=database",
		"KRATIX_OBJECT_GROUP=example.com", "KRATIX_OBJECT_VERSION=v1", "KRATIX_OBJECT_KIND=Database",
		"KRATIX_OBJECT_NAME=db", "KRATIX_OBJECT_NAMESPACE=default", "KRATIX_CRD_PLURAL=databases", "HOME=" + dir}

	for b.Loop() {
		var samples []time.Duration
		for range 20 {
			cmd := exec.Command(bin, "acquire")
			cmd.Env = env
			armed.Store(true)
			started := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, (<-first).Sub(started))
			_ = cmd.Wait() // it fails on the refusal, as it should
		}
		p50 := quantile(samples, 0.5)
		b.ReportMetric(ms(p50), "cold-start-p50-ms")
		fmt.Printf("stage cold start (exec -> first API request): p50 %.1fms, max %.1fms over %d runs\n",
			ms(p50), ms(quantile(samples, 1)), len(samples))
	}
}
