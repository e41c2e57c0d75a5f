package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/test/patience"
	"github.com/kratix-turnstile/turnstile/test/scrape"
)

// syncBuffer is an io.Writer the dashboard writes to while the spec reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// observerKubeconfig is a kubeconfig for a ServiceAccount that holds exactly the rules
// config/observer ships, plus the per-Promise role a Promise author adds for its requests.
func observerKubeconfig(ctx context.Context, slotNS string) string {
	ginkgo.GinkgoHelper()
	data := shipped("config", "observer", "rbac.yaml")
	var clusterRules, leaseRules []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var obj struct {
			Kind     string              `json:"kind"`
			Metadata metav1.ObjectMeta   `json:"metadata"`
			Rules    []rbacv1.PolicyRule `json:"rules"`
		}
		gomega.Expect(yaml.Unmarshal([]byte(doc), &obj)).To(gomega.Succeed())
		switch {
		case obj.Kind == "ClusterRole" && obj.Metadata.Labels["turnstile.kratix.io/aggregate-to-observer"] == "true":
			clusterRules = append(clusterRules, obj.Rules...)
		case obj.Kind == "Role":
			leaseRules = append(leaseRules, obj.Rules...)
		}
	}
	gomega.Expect(clusterRules).NotTo(gomega.BeEmpty())
	gomega.Expect(leaseRules).NotTo(gomega.BeEmpty())
	// What the aggregated ClusterRole holds, with the Promise's role as its author adds it.
	clusterRules = append(clusterRules, rbacv1.PolicyRule{APIGroups: []string{databases.Group}, Resources: []string{databases.Resource}, Verbs: []string{"get", "list", "watch"}})
	const sa = "turnstile-observer"
	_, err := env.Client.CoreV1().ServiceAccounts(slotNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: slotNS}}
	cr, err := env.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "turnstile-observer-"}, Rules: clusterRules}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(env.Client.RbacV1().ClusterRoles().Delete, cr.Name, metav1.DeleteOptions{})
	crb, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "turnstile-observer-"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}, Subjects: subjects}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(env.Client.RbacV1().ClusterRoleBindings().Delete, crb.Name, metav1.DeleteOptions{})
	_, err = env.Client.RbacV1().Roles(slotNS).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sa}, Rules: leaseRules}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	_, err = env.Client.RbacV1().RoleBindings(slotNS).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sa},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: sa}, Subjects: subjects}, metav1.CreateOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	path := filepath.Join(scratch, slotNS+"-observer.kubeconfig")
	gomega.Expect(os.WriteFile(path, env.ServiceAccountKubeconfig(ctx, slotNS, sa), 0o600)).To(gomega.Succeed())
	return path
}

// get fetches a path of the dashboard.
func get(url string) string {
	ginkgo.GinkgoHelper()
	resp, err := http.Get(url)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK), "GET %s: %s", url, body)
	return string(body)
}

// metrics scrapes the dashboard's metrics.
func metrics(url string) scrape.Families {
	ginkgo.GinkgoHelper()
	m, err := scrape.Get(url + "metrics")
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return m
}

var _ = ginkgo.Describe("the observer", ginkgo.Ordered, ginkgo.Label("area:observer"), func() {
	const ns, slotNS = "observed-requests", "observed-slots"
	var (
		reqs   map[string]*unstructured.Unstructured
		url    string
		stderr syncBuffer
	)

	ginkgo.BeforeAll(func(ctx context.Context) {
		createNamespaces(ctx, ns, slotNS)
		createPromise(ctx, "v2")
		reqs = goldenRollout(ctx, ns, slotNS)
		kubeconfig := observerKubeconfig(ctx, slotNS)

		// kubectl turnstile dashboard, in-process, with only the observer's rights.
		runCtx, stop := context.WithCancel(context.Background())
		var stdout syncBuffer
		done := make(chan int)
		go func() {
			defer ginkgo.GinkgoRecover()
			done <- cli.Run(runCtx, []string{"dashboard", "--port=0", "--kubeconfig=" + kubeconfig, "--slot-namespace=" + slotNS, "-n", ns},
				&stdout, &stderr, clock.RealClock{})
		}()
		ginkgo.DeferCleanup(func() {
			stop()
			gomega.Eventually(done).Should(gomega.Receive(gomega.Equal(0)))
		})
		addr := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
		gomega.Eventually(func() string { return addr.FindString(stdout.String()) }).ShouldNot(gomega.BeEmpty(), "the dashboard said: %s %s", &stdout, &stderr)
		url = addr.FindString(stdout.String())
	})

	ginkgo.AfterAll(func() {
		gomega.Expect(stderr.String()).NotTo(gomega.ContainSubstring("forbidden"), "the shipped RBAC must let the observer read all it reads")
	})

	ginkgo.It("serves the rollout as JSON and as metrics, reading with only the rights it ships with", func() {
		var snap struct {
			Rollouts []struct {
				Promise string `json:"promise"`
				Queue   []struct {
					Name string `json:"name"`
				} `json:"queue"`
				Requests []struct {
					Name  string `json:"name"`
					Phase string `json:"phase"`
				} `json:"requests"`
			} `json:"rollouts"`
		}
		gomega.Eventually(func(g gomega.Gomega) {
			g.Expect(json.Unmarshal([]byte(get(url+"api/rollouts")), &snap)).To(gomega.Succeed())
			g.Expect(snap.Rollouts).To(gomega.HaveLen(1))
		}).Should(gomega.Succeed())
		r := snap.Rollouts[0]
		gomega.Expect(r.Promise).To(gomega.Equal(promiseName))
		var phases []string
		for _, row := range r.Requests {
			phases = append(phases, row.Name+"="+row.Phase)
		}
		gomega.Expect(phases).To(gomega.Equal([]string{"db-a=Upgraded", "db-b=Upgrading", "db-c=Waiting", "db-d=Waiting", "db-e=Pending"}))
		gomega.Expect(r.Queue).To(gomega.HaveLen(2))
		gomega.Expect(r.Queue[0].Name).To(gomega.Equal("db-c"))

		m, p := metrics(url), "promise="+promiseName
		gomega.Expect(m.Value("turnstile_requests", p, "phase=Waiting", "version=v2")).To(gomega.Equal(2.0))
		gomega.Expect(m.Value("turnstile_requests", p, "phase=Upgraded")).To(gomega.Equal(1.0))
		gomega.Expect(m.Value("turnstile_requests", p, "phase=Failed")).To(gomega.Equal(0.0))
		gomega.Expect(m.Value("turnstile_queue_depth", p)).To(gomega.Equal(2.0))
		gomega.Expect(m.Value("turnstile_slots_held", p)).To(gomega.Equal(1.0))
		gomega.Expect(m.Value("turnstile_rollout_paused", p)).To(gomega.Equal(0.0))
		gomega.Expect(m.Value("turnstile_rollout_progress_ratio", p)).To(gomega.Equal(0.2))
		gomega.Expect(m.Value("turnstile_rollout_info", p, "target=v2", "previous=v1")).To(gomega.Equal(1.0))
	})

	ginkgo.It("shows the rollout in a browser and updates it live, without a reload", func(ctx context.Context) {
		browser := startBrowser()
		loading, cancel := context.WithTimeout(browser, patience.Scale(30*time.Second))
		defer cancel()
		gomega.Expect(chromedp.Do(loading, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#live.on`)))).To(gomega.Succeed(), "the page never went live")
		_, err := chromedp.Run(browser, chromedp.Evaluate[string](`window.loadedOnce = "yes"`))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		order, err := chromedp.Run(browser, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll('section[data-promise] tr[data-request]')).map(r => r.dataset.request)`))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(order).To(gomega.Equal([]string{ns + "/db-a", ns + "/db-b", ns + "/db-c", ns + "/db-d", ns + "/db-e"}))
		gomega.Expect(text(browser, `tr[data-request="`+ns+`/db-c"] td.phase`)).To(gomega.Equal("Waiting (#1)"))
		gomega.Expect(text(browser, `ol.queue li`)).To(gomega.HavePrefix("#1 " + ns + "/db-c"))

		ginkgo.By("db-b's upgrade moves on to verifying: the row changes in place")
		withStatus(ctx, reqs["db-b"], rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Slot: turnstile.SlotName(promiseName, 0),
			Since: t0.Add(4 * time.Minute), Message: "verifying v2: healthy for 10s of 30s"}, "healthy", freshNow(), "v2")
		gomega.Eventually(func() string { return text(browser, `tr[data-request="`+ns+`/db-b"] td.phase`) }).Should(gomega.Equal("Verifying"))

		ginkgo.By("an operator pauses the rollout: the reason shows")
		ts, err := turnstile.New(turnstile.Config{Leases: env.Client.CoordinationV1(), Namespace: slotNS, Promise: promiseName, Slots: 1})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(ts.Pause(ctx, "DR exercise until 14:00", "alice")).To(gomega.Succeed())
		gomega.Eventually(func() string { return text(browser, `.pause-reason`) }).Should(gomega.ContainSubstring("Paused: DR exercise until 14:00"))
		gomega.Expect(text(browser, `h2 .state`)).To(gomega.HavePrefix("Paused"))

		loaded, err := chromedp.Run(browser, chromedp.Evaluate[string](`window.loadedOnce || "reloaded"`))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(loaded).To(gomega.Equal("yes"), "the page must update in place, not reload")

		m, p := metrics(url), "promise="+promiseName
		gomega.Expect(m.Value("turnstile_rollout_paused", p)).To(gomega.Equal(1.0))
		gomega.Expect(m.Value("turnstile_requests", p, "phase=Verifying")).To(gomega.Equal(1.0))
	}, ginkgo.NodeTimeout(patience.Scale(3*time.Minute)))

	ginkgo.It("is readable without JavaScript", func() {
		page := get(url)
		gomega.Expect(page).To(gomega.ContainSubstring(`data-request="` + ns + `/db-c"`))
		gomega.Expect(page).To(gomega.ContainSubstring("Paused: DR exercise until 14:00"))
	})
})

// startBrowser runs headless Chromium for the spec, and on failure saves a screenshot of what it
// showed. Chromium and its profile go with the spec.
func startBrowser() context.Context {
	ginkgo.GinkgoHelper()
	path, err := chromiumPath()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.UserDataDir(ginkgo.GinkgoT().TempDir()),
		// CI runs as root, where Chromium's sandbox cannot start.
		chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	ginkgo.DeferCleanup(func() {
		if ginkgo.CurrentSpecReport().Failed() {
			shotCtx, cancel := context.WithTimeout(browser, 10*time.Second)
			defer cancel()
			if shot, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(90)); err == nil {
				dir := os.Getenv("ARTIFACTS")
				if dir == "" {
					dir = os.TempDir()
				}
				file := filepath.Join(dir, "observer-"+strings.ReplaceAll(ginkgo.CurrentSpecReport().LeafNodeText, " ", "-")+".png")
				if os.WriteFile(file, shot, 0o644) == nil {
					ginkgo.AddReportEntry("screenshot", file)
				}
			}
		}
		cancelBrowser()
		cancelAlloc()
	})
	gomega.Expect(chromedp.Do(browser)).To(gomega.Succeed(), "starting %s", path)
	return browser
}

// chromiumPath is Debian's chromium (installed by .ci/run), or another Chrome on PATH.
func chromiumPath() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium on PATH: the browser specs need it (apt-get install chromium)")
}

// text is the text of the first element the selector finds, "" if there is none yet.
func text(browser context.Context, selector string) string {
	ctx, cancel := context.WithTimeout(browser, patience.Scale(5*time.Second))
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, selector)))
	if err != nil {
		return ""
	}
	return out
}
