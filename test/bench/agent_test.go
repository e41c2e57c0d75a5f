package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
	"github.com/kratix-turnstile/turnstile/test/testbin"
)

// procStat is a process's CPU time so far and its resident memory, from /proc.
func procStat(pid int) (cpu time.Duration, rss int64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(stat)[strings.LastIndexByte(string(stat), ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	cpu = time.Duration(utime+stime) * time.Second / 100 // clock ticks: 100 Hz on Linux
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(status)))
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(kb)[0], 10, 64)
			rss = n * 1024
		}
	}
	return cpu, rss, nil
}

// metric sums the samples of a Prometheus metric whose line starts with prefix.
func metric(text, prefix string) float64 {
	var total float64
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

func scrape(b *testing.B, addr string) string {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics") //nolint:noctx // a local scrape
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// BenchmarkAgent: 1,000 HealthDefinitions, each an HTTP check every 10 s against one of 20 local
// servers, for a 60 s window once every record exists. Targets: <= 0.2 core, <= 100 MB RSS,
// and records written only on a change or a heartbeat.
func BenchmarkAgent(b *testing.B) {
	const definitions, servers, window = 1000, 20, 60 * time.Second
	platform, err := controlplane.Start(controlplane.WithCRDs(controlplane.KratixCRDs))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = platform.Stop() }()
	destination, err := controlplane.Start(controlplane.WithCRDs(controlplane.TurnstileCRDs))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = destination.Stop() }()
	dir := b.TempDir()
	bin, err := testbin.Build(dir, "github.com/kratix-turnstile/turnstile/cmd/turnstile-agent")
	if err != nil {
		b.Fatal(err)
	}
	var urls []string
	for range servers {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
		defer s.Close()
		urls = append(urls, s.URL)
	}
	ctx := context.Background()
	ns := namespace(b, kubernetes.NewForConfigOrDie(destination.Config), "apps")
	reqNS := namespace(b, kubernetes.NewForConfigOrDie(platform.Config), "requests")
	defs := dynamic.NewForConfigOrDie(destination.Config).Resource(health.HealthDefinitions).Namespace(ns)
	for i := range definitions {
		input := fmt.Sprintf("apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n  - {name: web, http: {url: %q}}\n", urls[i%servers])
		def, err := health.NewDefinition(ns, "webapp", health.ResourceRef{Name: fmt.Sprintf("web-%04d", i), Namespace: reqNS}, "@every 10s", input, "v2")
		if err != nil {
			b.Fatal(err)
		}
		u, _ := health.ToUnstructured(def)
		if _, err := defs.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	destKC, _ := destination.KubeconfigFile(dir)
	platformKC := filepath.Join(dir, "platform.kubeconfig")
	if err := os.WriteFile(platformKC, platform.Kubeconfig, 0o600); err != nil {
		b.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	for b.Loop() {
		cmd := exec.Command(bin, "--kubeconfig="+destKC, "--platform-kubeconfig="+platformKC, "--listen="+addr, "--heartbeat=1m")
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if time.Now().After(deadline) {
				b.Fatal("the agent did not write every record within 3 minutes")
			}
			time.Sleep(time.Second)
			resp, err := http.Get("http://" + addr + "/metrics") //nolint:noctx // a local scrape
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if metric(string(body), "turnstile_agent_records_written_total") >= definitions {
				break
			}
		}
		cpu0, _, _ := procStat(cmd.Process.Pid)
		before := scrape(b, addr)
		time.Sleep(window)
		cpu1, rss, _ := procStat(cmd.Process.Pid)
		after := scrape(b, addr)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()

		cores := cpu1.Seconds() - cpu0.Seconds()
		cores /= window.Seconds()
		checks := metric(after, "turnstile_agent_checks_total") - metric(before, "turnstile_agent_checks_total")
		latency := (metric(after, "turnstile_agent_check_duration_seconds_sum") - metric(before, "turnstile_agent_check_duration_seconds_sum")) /
			math.Max(1, metric(after, "turnstile_agent_check_duration_seconds_count")-metric(before, "turnstile_agent_check_duration_seconds_count"))
		changes := metric(after, `turnstile_agent_records_written_total{reason="change"}`) - metric(before, `turnstile_agent_records_written_total{reason="change"}`)
		beats := metric(after, `turnstile_agent_records_written_total{reason="heartbeat"}`) - metric(before, `turnstile_agent_records_written_total{reason="heartbeat"}`)
		perMin := (changes + beats) / window.Minutes()
		b.ReportMetric(cores, "cores")
		b.ReportMetric(float64(rss)/1e6, "rss-MB")
		b.ReportMetric(latency*1000, "check-mean-ms")
		b.ReportMetric(perMin, "records/min")
		fmt.Printf("agent, %d definitions every 10s over %s: %.3f cores, %.0f MB RSS, %.0f checks/s, mean check %.2f ms, %.0f records/min (%.0f on change, %.0f heartbeats at 1m)\n",
			definitions, window, cores, float64(rss)/1e6, checks/window.Seconds(), latency*1000, perMin, changes, beats)
	}
}
