// Package tooling checks what CI cannot run: the kind targets need Docker, so their recipes are
// checked with `make -n`, and every shell script in the repository gets shellcheck's verdict.
package tooling

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func makeDryRun(t *testing.T, target string, vars ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"-n", target}, vars...)...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %s: %v\n%s", target, err, out)
	}
	return string(out)
}

func TestKindTargets(t *testing.T) {
	tests := []struct {
		target string
		vars   []string
		want   []string
	}{
		{"kind-up", nil, []string{"hack/kind/up.sh"}},
		{"kind-load", []string{"VERSION=v1.2.3", "KIND_PLATFORM=linux/arm64"}, []string{
			"go run ./cmd/turnstile-image --version v1.2.3",
			"--archive-platform linux/arm64",
			"hack/kind/load.sh out/images/turnstile-v1.2.3-arm64.tar",
		}},
		{"images-push", []string{"VERSION=v1.2.3", "REGISTRY=localhost:5001/turnstile"}, []string{"--push localhost:5001/turnstile"}},
		{"kind-demo", []string{"VERSION=v1.2.3"}, []string{
			"go run ./cmd/turnstile-image --version v1.2.3",
			"hack/kind/load.sh out/images/turnstile-v1.2.3-",
			"go build -trimpath -o bin/ ./cmd/turnstile ./cmd/turnstile-agent ./cmd/kubectl-turnstile ./cmd/turnstile-image",
			"VERSION=v1.2.3 PLUGIN=",
			"hack/kind/demo.sh",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			out := makeDryRun(t, tt.target, tt.vars...)
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("make -n %s does not run %q:\n%s", tt.target, want, out)
				}
			}
			if strings.Contains(out, ":latest") {
				t.Errorf("make -n %s uses a latest tag:\n%s", tt.target, out)
			}
		})
	}
}

func TestVersionIsNeverLatest(t *testing.T) {
	out, err := exec.Command(filepath.Join(repoRoot(t), "hack", "version.sh")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "v") || v == "latest" {
		t.Errorf("hack/version.sh = %q, want a v-prefixed version", v)
	}
}

func TestShellScriptsPassShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed; .ci/run installs it")
		}
		t.Skip("shellcheck is not installed (apt-get install shellcheck)")
	}
	root := repoRoot(t)
	scripts := []string{filepath.Join(root, ".ci", "run")}
	err := filepath.WalkDir(filepath.Join(root, "hack"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".sh") {
			scripts = append(scripts, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("shellcheck", append([]string{"--external-sources", "--severity=style"}, scripts...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// TestInstallManifestsRender: kubectl apply -k must accept what config/ ships.
func TestInstallManifestsRender(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("kubectl is not installed")
	}
	for _, dir := range []string{"config/agent", "config/agent-platform", "config/crd", "config/observer"} {
		t.Run(dir, func(t *testing.T) {
			cmd := exec.Command("kubectl", "kustomize", dir)
			cmd.Dir = repoRoot(t)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
			}
			if dir == "config/agent" && !strings.Contains(string(out), "image: ghcr.io/kratix-turnstile/agent:v") {
				t.Errorf("the agent Deployment does not use a versioned agent image:\n%s", out)
			}
			if dir == "config/observer" && !strings.Contains(string(out), "image: ghcr.io/kratix-turnstile/observer:v") {
				t.Errorf("the observer Deployment does not use a versioned observer image:\n%s", out)
			}
		})
	}
}

// TestBinariesStayLight: the health agent runs in every Destination and the plugin on
// operators' machines; kratix-go would bring the Kratix module and controller-runtime with it,
// which neither has any use for.
func TestBinariesStayLight(t *testing.T) {
	for _, bin := range []string{"./cmd/turnstile-agent", "./cmd/kubectl-turnstile"} {
		t.Run(bin, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", bin)
			cmd.Dir = repoRoot(t)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, "github.com/syntasso/") || strings.HasPrefix(dep, "sigs.k8s.io/controller-runtime") {
					t.Errorf("%s links %s", bin, dep)
				}
			}
		})
	}
}
