package tooling

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// pins reads the versions hack/versions.sh pins.
func pins(t *testing.T) (k8s, etcd string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `source hack/versions.sh && echo "$K8S_VERSION $ETCD_VERSION"`)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading hack/versions.sh: %v", err)
	}
	if _, err := fmt.Sscan(string(out), &k8s, &etcd); err != nil {
		t.Fatalf("reading hack/versions.sh: %v (%q)", err, out)
	}
	return k8s, etcd
}

// fakeBinary is a program that answers --version as a real one would.
func fakeBinary(version string) []byte {
	return []byte("#!/bin/sh\necho '" + version + "'\n")
}

// mirror serves what the fast path downloads, as dl.k8s.io and controller-tools' envtest index
// do: kube-controller-manager with its sha256, and the envtest archive with its index.
type mirror struct {
	k8s, envtestK8s      string // the release served, and the envtest version the index lists
	apiserver, etcd, kcm []byte // kcm nil: the release has no kube-controller-manager
	kcmSum               string // the published checksum; kcm's own when empty
}

func (m mirror) serve(t *testing.T) *httptest.Server {
	t.Helper()
	arch := runtime.GOARCH
	archiveName := fmt.Sprintf("envtest-%s-linux-%s.tar.gz", m.envtestK8s, arch)
	var archive bytes.Buffer
	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	for name, body := range map[string][]byte{"kube-apiserver": m.apiserver, "etcd": m.etcd, "kubectl": fakeBinary("kubectl")} {
		if err := tw.WriteHeader(&tar.Header{Name: "controller-tools/envtest/" + name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	sum512 := sha512.Sum512(archive.Bytes())
	kcmSum := m.kcmSum
	if kcmSum == "" {
		sum := sha256.Sum256(m.kcm)
		kcmSum = hex.EncodeToString(sum[:])
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	release := fmt.Sprintf("/release/%s/bin/linux/%s/", m.k8s, arch)
	if m.kcm != nil {
		mux.HandleFunc(release+"kube-controller-manager", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(m.kcm) })
		mux.HandleFunc(release+"kube-controller-manager.sha256", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, kcmSum) })
	}
	mux.HandleFunc("/"+archiveName, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(archive.Bytes()) })
	mux.HandleFunc("/envtest-releases.yaml", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "releases:\n  %s:\n    %s:\n      hash: %s\n      selfLink: %s/%s\n",
			m.envtestK8s, archiveName, hex.EncodeToString(sum512[:]), srv.URL, archiveName)
	})
	return srv
}

// TestFetchControlPlane runs the fast path against a mirror on loopback: it keeps a binary only
// when it is the pinned version and its checksum holds, and without a mirror it brings nothing,
// so that provision-control-plane.sh builds the rest.
func TestFetchControlPlane(t *testing.T) {
	needSetupEnvtest(t)
	k8s, etcd := pins(t)
	all := []string{"etcd", "kube-apiserver", "kube-controller-manager"}
	good := mirror{k8s: k8s, envtestK8s: k8s, apiserver: fakeBinary("Kubernetes " + k8s),
		etcd: fakeBinary("etcd Version: " + strings.TrimPrefix(etcd, "v")), kcm: fakeBinary("Kubernetes " + k8s)}
	tests := []struct {
		name   string
		mirror func() mirror
		// unreachable: nothing listens where the release is.
		unreachable bool
		want        []string
		says        string
	}{
		{name: "every binary at its pin", mirror: func() mirror { return good }, want: all},
		{name: "envtest's etcd is not the pinned one: etcd is built", mirror: func() mirror {
			m := good
			m.etcd = fakeBinary("etcd Version: 3.6.4")
			return m
		}, want: []string{"kube-apiserver", "kube-controller-manager"}, says: "the downloaded etcd is not " + strings.TrimPrefix(etcd, "v")},
		{name: "kube-controller-manager fails its checksum: it is built", mirror: func() mirror {
			m := good
			m.kcmSum = strings.Repeat("0", 64)
			return m
		}, want: []string{"etcd", "kube-apiserver"}, says: "the release says " + strings.Repeat("0", 64)},
		{name: "no kube-controller-manager in the release: it is built, the rest downloaded", mirror: func() mirror {
			m := good
			m.kcm = nil
			return m
		}, want: []string{"etcd", "kube-apiserver"}, says: "no kube-controller-manager at "},
		{name: "no envtest archive for the pin: etcd and kube-apiserver are built", mirror: func() mirror {
			m := good
			m.envtestK8s = "v1.30.0"
			return m
		}, want: []string{"kube-controller-manager"}, says: "setup-envtest could not fetch " + k8s + " (unable to fetch hash for requested version: unable to find archive for"},
		{name: "no internet: everything is built", unreachable: true, says: "cannot be reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release, index := unreachable, unreachable
			if !tt.unreachable {
				srv := tt.mirror().serve(t)
				release, index = srv.URL+"/release", srv.URL+"/envtest-releases.yaml"
			}
			dir := filepath.Join(t.TempDir(), "fetched")
			cmd := exec.Command(filepath.Join(repoRoot(t), "hack/fetch-control-plane.sh"), dir)
			cmd.Env = scriptEnv("K8S_RELEASE_URL="+release, "ENVTEST_INDEX="+index)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("fetch-control-plane.sh: %v\n%s", err, stderr.String())
			}
			got := strings.Fields(stdout.String())
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("fetched %v, want %v\n%s", got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.says) {
				t.Errorf("it said:\n%s\nwant a line with %q", stderr.String(), tt.says)
			}
			for _, name := range tt.want {
				if out, err := exec.Command(filepath.Join(dir, name), "--version").Output(); err != nil || len(out) == 0 {
					t.Errorf("%s was not left runnable in %s: %v", name, dir, err)
				}
			}
		})
	}
}

// unreachable is an address on loopback where nothing listens: port 1 (tcpmux), which no test
// binds, unlike a freed ephemeral port another package's apiserver may take meanwhile.
const unreachable = "http://127.0.0.1:1"

// scriptEnv is the environment the hack scripts run in under test: this one, but talking to
// loopback directly whatever proxy it names, and with none of setup-envtest's own settings.
func scriptEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ENVTEST_") {
			env = append(env, kv)
		}
	}
	return append(append(env, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"), extra...)
}

// needSetupEnvtest builds the pinned setup-envtest first (from the Go module proxy, like the
// control plane), and skips the test where that cannot be done, saying so.
func needSetupEnvtest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs setup-envtest, built from the Go module proxy")
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "sigs.k8s.io/controller-runtime/tools/setup-envtest")
	cmd.Dir = filepath.Join(repoRoot(t), "hack", "envtest")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("setup-envtest cannot be built here (the Go module proxy?): %v\n%s", err, out)
	}
}

func TestProvisionRefusesAnUnknownSource(t *testing.T) {
	cmd := exec.Command(filepath.Join(repoRoot(t), "hack/provision-control-plane.sh"))
	cmd.Env = append(os.Environ(), "TURNSTILE_CONTROL_PLANE=download-everything", "TURNSTILE_CACHE="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2", err)
	}
	want := "provision-control-plane: TURNSTILE_CONTROL_PLANE=download-everything: want auto or build\n"
	if stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("it said %q on stderr and %q on stdout, want only %q", stderr.String(), stdout.String(), want)
	}
}

// fakeGo is a go command whose builds write a stand-in binary at once, and that hands anything
// else (go env, go tool setup-envtest) to the real one: the provisioning script's own logic runs
// in seconds, whatever the Go build cache holds.
func fakeGo(t *testing.T) string {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := `#!/bin/sh
if [ "$1" != build ]; then exec '` + strings.ReplaceAll(real, "'", `'\''`) + `' "$@"; fi
while [ $# -gt 0 ]; do
  if [ "$1" = -o ]; then out=$2; fi
  shift
done
printf '#!/bin/sh\necho built by go build\n' >"$out" && chmod +x "$out"
`
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestProvisionBuildsOnceAndLeavesNothingBehind runs the control-plane provisioning as a fresh
// machine would, into an empty cache, with builds that take no time: it must end well, take
// the downloads that match the pins and build the rest, leave no scratch behind, and do nothing
// the second time.
func TestProvisionBuildsOnceAndLeavesNothingBehind(t *testing.T) {
	needSetupEnvtest(t)
	cmd := exec.Command("bash", "-c", `source hack/versions.sh && echo "$KRATIX_CURRENT_TARBALL"`)
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading hack/versions.sh: %v", err)
	}
	tarball := strings.TrimSpace(string(out))
	src, err := os.ReadFile(tarball)
	if err != nil {
		t.Skipf("no Kratix source to build from (%v): make control-plane keeps it there", err)
	}
	k8s, etcd := pins(t)
	goDir := fakeGo(t)
	downloaded := mirror{k8s: k8s, envtestK8s: k8s, apiserver: fakeBinary("Kubernetes " + k8s),
		etcd: fakeBinary("etcd Version: " + strings.TrimPrefix(etcd, "v")), kcm: fakeBinary("Kubernetes " + k8s)}
	tests := []struct {
		name, source string
		mirror       bool // a mirror on loopback serves the prebuilt binaries; else none is reachable
		fetched      []string
	}{
		{name: "built, as CI does", source: "build", mirror: true},
		{name: "downloaded where there is internet, the rest built", source: "auto", mirror: true,
			fetched: []string{"etcd", "kube-apiserver", "kube-controller-manager"}},
		{name: "built when nothing can be reached", source: "auto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			mine := filepath.Join(cache, "src", filepath.Base(tarball))
			if err := os.MkdirAll(filepath.Dir(mine), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(mine, src, 0o644); err != nil {
				t.Fatal(err)
			}
			release, index := unreachable, unreachable
			if tt.mirror {
				srv := downloaded.serve(t)
				release, index = srv.URL+"/release", srv.URL+"/envtest-releases.yaml"
			}
			provision := func() string {
				t.Helper()
				cmd := exec.Command(filepath.Join(repoRoot(t), "hack/provision-control-plane.sh"))
				cmd.Env = scriptEnv("PATH="+goDir+string(os.PathListSeparator)+os.Getenv("PATH"),
					"TURNSTILE_CACHE="+cache, "TURNSTILE_CONTROL_PLANE="+tt.source, "K8S_RELEASE_URL="+release, "ENVTEST_INDEX="+index)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("provision-control-plane.sh: %v\n%s", err, out)
				}
				return string(out)
			}
			first := provision()
			if !strings.Contains(first, "control plane: ready in ") {
				t.Errorf("the first run did not say it was ready:\n%s", first)
			}
			dirs, _ := filepath.Glob(filepath.Join(cache, "k8s-*"))
			if len(dirs) != 1 {
				t.Fatalf("want one control-plane dir in %s, found %v", cache, dirs)
			}
			for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kratix-manager", "pipeline-adapter"} {
				got, err := exec.Command(filepath.Join(dirs[0], bin), "--version").Output()
				want := "built by go build"
				if slices.Contains(tt.fetched, bin) {
					want = "Kubernetes " + k8s
					if bin == "etcd" {
						want = "etcd Version: " + strings.TrimPrefix(etcd, "v")
					}
				}
				if err != nil || strings.TrimSpace(string(got)) != want {
					t.Errorf("%s says %q (%v), want %q", bin, got, err, want)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(dirs[0], ".build.*")); len(left) > 0 {
				t.Errorf("scratch left behind: %v", left)
			}
			if again := provision(); !strings.HasPrefix(again, "control plane: cached in ") {
				t.Errorf("the second run did more than find it cached:\n%s", again)
			}
		})
	}
}
