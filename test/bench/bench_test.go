// Package bench holds Turnstile's benchmarks: harnesses that measure against a real control
// plane and print medians and ratios. They assert nothing about time; run them with `make bench`.
package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

var (
	cpOnce sync.Once
	cp     *controlplane.ControlPlane
	cpErr  error
)

func TestMain(m *testing.M) {
	// Thousands of waiters end their watches at once when a rollout ends: client-go logs each
	// as an error. The figures are what the benchmarks print.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
	code := m.Run()
	if cp != nil {
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

// controlPlane starts one control plane for the benchmarks that need it, on first use.
func controlPlane(b *testing.B) *controlplane.ControlPlane {
	b.Helper()
	// The fleet's requests are of the integration specs' kind.
	cpOnce.Do(func() {
		cp, cpErr = controlplane.Start(controlplane.WithCRDs(controlplane.CRDDir("test", "../integration/testdata/crds")))
	})
	if cpErr != nil {
		b.Fatal(cpErr)
	}
	return cp
}

func namespace(b *testing.B, client kubernetes.Interface, prefix string) string {
	b.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return ns.Name
}

// quantile is the q-quantile (0..1) of samples, by nearest rank.
func quantile(samples []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s)) + 0.5)
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// counter counts the API requests a client makes, by kind of request.
type counter struct {
	writes, reads, watches atomic.Int64
}

func (c *counter) wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			switch {
			case req.Method != http.MethodGet:
				c.writes.Add(1)
			case req.URL.Query().Get("watch") == "true":
				c.watches.Add(1)
			default:
				c.reads.Add(1)
			}
			return rt.RoundTrip(req)
		})
	}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
