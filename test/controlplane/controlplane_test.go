package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
