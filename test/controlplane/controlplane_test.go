package controlplane

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/test/patience"
)

// processesOf lists the running processes whose executable lies in dir and whose command line
// mentions one of marks: other control planes run from the same binaries at the same time.
func processesOf(t *testing.T, dir string, marks []string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("reading /proc: %v", err)
	}
	var found []string
	for _, e := range entries {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		for _, m := range marks {
			if strings.Contains(string(cmdline), m) {
				found = append(found, e.Name()+" "+exe)
				break
			}
		}
	}
	return found
}

func TestStartWithControllerManagerAndStopLeavesNothing(t *testing.T) {
	assets, err := AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Start(WithControllerManager(), WithCRDs(KratixCRDs, TurnstileCRDs))
	if err != nil {
		t.Fatal(err)
	}
	scratch := cp.scratch
	api := cp.env.ControlPlane.GetAPIServer()
	marks := []string{"--secure-port=" + api.Port, cp.env.ControlPlane.Etcd.URL.Host, scratch}
	if running := processesOf(t, assets, marks); len(running) != 3 {
		t.Errorf("want etcd, kube-apiserver and kube-controller-manager running, found %v", running)
	}
	t.Cleanup(func() { _ = cp.Stop() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := cp.Client()
	for _, crd := range []string{"promises.platform.kratix.io", "healthrecords.platform.kratix.io", "healthdefinitions.platform.kratix.io"} {
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd).DoRaw(ctx); err != nil {
			t.Errorf("CRD %s not installed: %v", crd, err)
		}
	}
	if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("kube-controller-manager did not create the default ServiceAccount: %v", err)
	}

	if err := cp.Stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if left := processesOf(t, assets, marks); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir %s left after Stop (stat: %v)", scratch, err)
	}
}

func TestAssetsDirNamesTheProblem(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"unset", "", "KUBEBUILDER_ASSETS is not set"},
		{"empty dir", t.TempDir(), "finding etcd in KUBEBUILDER_ASSETS="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(AssetsEnv, tt.value)
			_, err := AssetsDir()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("AssetsDir() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// BenchmarkStart measures starting etcd and kube-apiserver until the apiserver is ready for
// requests, five times, and reports the median; stopping is not timed.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		var samples []time.Duration
		for range 5 {
			began := time.Now()
			cp, err := Start()
			if err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(began))
			if err := cp.Stop(); err != nil {
				b.Fatal(err)
			}
		}
		slices.Sort(samples)
		b.ReportMetric(samples[2].Seconds(), "start-p50-s")
		fmt.Printf("control plane start (etcd + kube-apiserver ready): median %s of %d\n", samples[2].Round(time.Millisecond), len(samples))
	}
}

// A restart keeps the address, the data, the serving certificate and the ServiceAccount
// signing key: a client made before it works after it.
func TestRestartAPIServerKeepsClientsWorking(t *testing.T) {
	cp, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := cp.Client()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "before-restart"}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cp.RestartAPIServer(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, "before-restart", metav1.GetOptions{}); err != nil {
		t.Fatalf("reading after the restart with a client made before it: %v", err)
	}
}

// orphanEnv makes the test binary, run again by TestNothingOutlivesItsTestBinary, start a
// control plane, print what marks its processes, and wait to be killed.
const orphanEnv = "TURNSTILE_CONTROLPLANE_ORPHAN"

func TestNothingOutlivesItsTestBinary(t *testing.T) {
	if os.Getenv(orphanEnv) != "" {
		cp, err := Start(WithControllerManager())
		if err != nil {
			t.Fatal(err)
		}
		api := cp.env.ControlPlane.GetAPIServer()
		fmt.Printf("marks %s %s %s\n", "--secure-port="+api.Port, cp.env.ControlPlane.Etcd.URL.Host, cp.scratch)
		select {} // until killed, as a panicking or timed-out test binary would be
	}
	assets, err := AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	if bin := filepath.Join(assets, "etcd"); killedWithUs(bin, t.TempDir()) == bin {
		t.Skip("setpriv --pdeathsig cannot run here: envtest's processes go unguarded")
	}
	child := exec.Command(os.Args[0], "-test.run=^TestNothingOutlivesItsTestBinary$", "-test.count=1", "-test.timeout=10m")
	// Its temporary files (its scratch dir, envtest's certificates) in one the test removes: it
	// never gets to remove them itself.
	child.Env = append(os.Environ(), orphanEnv+"=1", "TMPDIR="+t.TempDir())
	// Should this test binary be killed too, the child goes with it, and its control plane with it.
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	var marks []string
	var said []string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "marks "); ok {
			marks = strings.Fields(rest)
			break
		}
		said = append(said, lines.Text())
	}
	if len(marks) != 3 {
		t.Fatalf("the child started no control plane (%v); it said:\n%s", lines.Err(), strings.Join(said, "\n"))
	}
	if running := processesOf(t, assets, marks); len(running) != 3 {
		t.Fatalf("want etcd, kube-apiserver and kube-controller-manager running, found %v", running)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	deadline := time.Now().Add(patience.Scale(time.Minute))
	for left := processesOf(t, assets, marks); len(left) > 0; left = processesOf(t, assets, marks) {
		if time.Now().After(deadline) {
			for _, p := range left {
				pid, _ := strconv.Atoi(strings.Fields(p)[0])
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("still running after their test binary was killed: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
