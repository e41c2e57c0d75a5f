package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

var (
	fleetSizes = flag.String("fleet.n", "100,300,1000", "BenchmarkFleet: the numbers of requests")
	fleetSlots = flag.String("fleet.slots", "1,10", "BenchmarkFleet: the numbers of slots")
	fleetModes = flag.String("fleet.modes", "blocking,retryAfter", "BenchmarkFleet: the waiting modes")
)

// databases is the kind of the fleet's requests (test/integration/testdata/crds).
var databases = schema.GroupVersionResource{Group: "test.turnstile.io", Version: "v1alpha1", Resource: "databases"}

// fleetMode is how a waiting request waits: blocking holds its pod until it gets a slot;
// retryAfter waits wait, then hands back and Kratix runs it again after retryAfter.
type fleetMode struct {
	name             string
	wait, retryAfter time.Duration
}

var fleetModeList = []fleetMode{{name: "blocking"}, {name: "retryAfter", wait: 20 * time.Second, retryAfter: 10 * time.Second}}

// BenchmarkFleet sends N requests of one Promise through the turnstile at once, as a Promise
// upgrade does, each waiting as acquire waits (its own Lease watch, the holders followed, its
// status published when worth it) and, once it holds a slot, turning healthy at once and
// released as await would (zero soak). It reads the apiserver's own metrics before and after.
func BenchmarkFleet(b *testing.B) {
	cp := controlPlane(b)
	for _, n := range ints(b, *fleetSizes) {
		for _, slots := range ints(b, *fleetSlots) {
			for _, mode := range fleetModeList {
				if !slices.Contains(strings.Split(*fleetModes, ","), mode.name) {
					continue
				}
				b.Run(fmt.Sprintf("n=%d/slots=%d/%s", n, slots, mode.name), func(b *testing.B) {
					for b.Loop() {
						f := &fleet{cfg: cp.Config, n: n, slots: slots, mode: mode}
						f.run(b)
					}
				})
			}
		}
	}
}

func ints(b *testing.B, list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 1 {
			b.Fatalf("bad list %q: %v", list, err)
		}
		out = append(out, v)
	}
	return out
}

type fleet struct {
	cfg   *rest.Config
	n     int
	slots int
	mode  fleetMode

	ns       string
	dyn      dynamic.Interface
	leases   kubernetes.Interface
	mu       sync.Mutex
	grants   []time.Time
	releases []time.Time
	alive    atomic.Int64 // waiting "pods" alive now
	peak     atomic.Int64
	runs     atomic.Int64
	// stage runs the last request's acquire as the real stage process.
	stage    *stageWaiter
	stageReq string
	// queued counts the requests that have taken their place (a first report, or a slot);
	// allQueued closes when every one has: the arrival burst is over.
	queued    atomic.Int64
	allQueued chan struct{}
}

// queue notes that a request has taken its place.
func (f *fleet) queue() {
	if f.queued.Add(1) == int64(f.n) {
		close(f.allQueued)
	}
}

// phase is one part of the rollout, from one reading of the apiserver's metrics to the next.
type phase struct {
	at     time.Time
	grants int
	m      metrics
}

func (f *fleet) run(b *testing.B) {
	ctx := context.Background()
	// Many waiters share this process's clients, as many pods would each have their own: no
	// client-side rate limit stands in for the apiserver's.
	cfg := rest.CopyConfig(f.cfg)
	cfg.QPS, cfg.Burst = -1, 0
	f.dyn, f.leases = dynamic.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg)
	f.ns = namespace(b, f.leases, "fleet")
	reqs := make([]turnstile.Request, f.n)
	for i := range reqs {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": databases.GroupVersion().String(), "kind": "Database",
			"metadata": map[string]any{"name": fmt.Sprintf("db-%04d", i), "namespace": f.ns}}}
		u, err := f.dyn.Resource(databases).Namespace(f.ns).Create(ctx, u, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = turnstile.Request{GroupVersionResource: databases, Kind: "Database", Namespace: f.ns, Name: u.GetName(), UID: u.GetUID(), Wave: 1}
	}
	// The stage lets a request that was never configured through without a slot (a first
	// install): its request has been.
	f.stageReq = reqs[f.n-1].Name
	if _, err := f.dyn.Resource(databases).Namespace(f.ns).Patch(ctx, f.stageReq, types.MergePatchType,
		fmt.Appendf(nil, `{"status":{"lastSuccessfulConfigureWorkflowTime":%q}}`, time.Now().UTC().Format(time.RFC3339)), metav1.PatchOptions{}, "status"); err != nil {
		b.Fatal(err)
	}
	stage, err := newStageWaiter()
	if err != nil {
		b.Fatal(err)
	}
	defer stage.close()
	f.stage = stage
	f.allQueued = make(chan struct{})
	before := f.phase(ctx, b)
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Go(func() {
			if err := f.request(ctx, req); err != nil {
				b.Error(err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var queued *phase
	select {
	case <-f.allQueued:
		p := f.phase(ctx, b)
		queued = &p
	case <-done:
	}
	<-done
	f.report(b, before, queued, f.phase(ctx, b))
}

// phase reads the metrics and the upgrades begun so far.
func (f *fleet) phase(ctx context.Context, b *testing.B) phase {
	at := time.Now()
	f.mu.Lock()
	grants := len(f.grants)
	f.mu.Unlock()
	m, err := scrapeAPIServer(ctx, f.leases)
	if err != nil {
		b.Fatal(err)
	}
	return phase{at: at, grants: grants, m: m}
}

// request is one request's passage: acquire's wait, then await's verdict and release.
func (f *fleet) request(ctx context.Context, req turnstile.Request) error {
	ts, err := turnstile.New(turnstile.Config{Leases: f.leases.CoordinationV1(), Holders: turnstile.DynamicHolders{Client: f.dyn},
		Namespace: f.ns, Promise: "fleet", Slots: f.slots})
	if err != nil {
		return err
	}
	var once sync.Once
	queue := func() { once.Do(f.queue) }
	for {
		if req.Name == f.stageReq {
			queue() // its own process: its place is taken as it starts
			handedBack, err := f.stageAcquire(ctx, req)
			if err != nil {
				return err
			}
			if handedBack {
				time.Sleep(f.mode.retryAfter)
				continue
			}
			f.record(&f.grants)
			break
		}
		grant, err := f.acquire(ctx, ts, req, queue)
		var waiting *turnstile.WaitingError
		if errors.As(err, &waiting) {
			// Handed back: Kratix's status writer writes status.yaml, and runs it again later.
			if err := f.publish(ctx, req, rollout.Status{Phase: rollout.PhaseWaiting, Version: "v2", Position: waiting.Wait.Position + 1,
				Since: time.Now(), Message: waiting.Wait.Message()}); err != nil {
				return err
			}
			time.Sleep(f.mode.retryAfter)
			continue
		}
		if err != nil {
			return err
		}
		queue()
		f.record(&f.grants)
		// acquire's status.yaml, as Kratix's status writer merges it.
		if err := f.publish(ctx, req, rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Slot: grant.Slot.Name, Since: time.Now()}); err != nil {
			return err
		}
		break
	}
	// await: healthy at once; it publishes Upgraded, then releases.
	if err := f.publish(ctx, req, rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: time.Now()}); err != nil {
		return err
	}
	f.record(&f.releases) // the release begins
	_, err = ts.Release(ctx, req, turnstile.Attempt{})
	return err
}

// record notes the time now in one of the fleet's lists.
func (f *fleet) record(list *[]time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*list = append(*list, time.Now())
}

// stageAcquire is one run of the real acquire stage, counted as a waiting pod.
func (f *fleet) stageAcquire(ctx context.Context, req turnstile.Request) (handedBack bool, err error) {
	defer f.podRunning()()
	return f.stage.acquire(ctx, f, req)
}

// acquire is one run of the acquire stage's wait: a pod alive while it waits.
func (f *fleet) acquire(ctx context.Context, ts *turnstile.Turnstile, req turnstile.Request, queued func()) (*turnstile.Grant, error) {
	defer f.podRunning()()
	if f.mode.wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.mode.wait)
		defer cancel()
	}
	var published *turnstile.Wait
	var publishErr error
	grant, err := ts.Acquire(ctx, req, turnstile.AcquireOptions{Target: "v2", OnWait: func(w turnstile.Wait) {
		queued()
		if published != nil && !w.Worth(*published) {
			return
		}
		published = &w
		if err := f.publish(context.WithoutCancel(ctx), req, rollout.Status{Phase: rollout.PhaseWaiting, Version: "v2",
			Position: w.Position + 1, Since: w.Arrival, Message: w.Message()}); err != nil {
			publishErr = err
		}
	}})
	if publishErr != nil {
		return nil, publishErr
	}
	return grant, err
}

// podRunning counts a waiting pod's run, alive until the func it returns is called.
func (f *fleet) podRunning() (ended func()) {
	f.runs.Add(1)
	alive := f.alive.Add(1)
	for peak := f.peak.Load(); alive > peak && !f.peak.CompareAndSwap(peak, alive); peak = f.peak.Load() {
	}
	return func() { f.alive.Add(-1) }
}

// publish writes the request's status.turnstile, as the stages' live publish does.
func (f *fleet) publish(ctx context.Context, req turnstile.Request, st rollout.Status) error {
	patch := fmt.Appendf(nil, `{"status":{%q:%s}}`, rollout.StatusKey, mustJSON(st.MergePatch()))
	_, err := f.dyn.Resource(databases).Namespace(req.Namespace).Patch(ctx, req.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

func (f *fleet) report(b *testing.B, before phase, queued *phase, after phase) {
	f.mu.Lock()
	grants, releases := slices.Clone(f.grants), slices.Clone(f.releases)
	f.mu.Unlock()
	slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	slices.SortFunc(releases, func(a, b time.Time) int { return a.Compare(b) })
	// The k-th release frees the slot that the (k+slots)-th grant takes.
	var handoffs, settled []time.Duration
	for k := 0; k+f.slots < len(grants) && k < len(releases); k++ {
		h := max(0, grants[k+f.slots].Sub(releases[k]))
		handoffs = append(handoffs, h)
		if queued != nil && !releases[k].Before(queued.at) {
			settled = append(settled, h)
		}
	}
	m, took, n := after.m.minus(before.m), after.at.Sub(before.at), float64(f.n)
	leaseWrites := m.requests("POST", "leases", "") + m.requests("PUT", "leases", "") + m.requests("DELETE", "leases", "")
	statusWrites := m.requests("PATCH", "databases", "status")
	perSec := n / took.Seconds()
	p50, p99 := quantiles(handoffs)
	b.ReportMetric(perSec, "requests/s")
	b.ReportMetric(leaseWrites/n, "lease-writes/upgrade")
	b.ReportMetric(statusWrites/n, "status-writes/request")
	if len(handoffs) > 0 {
		b.ReportMetric(ms(p50), "handoff-p50-ms")
		b.ReportMetric(ms(p99), "handoff-p99-ms")
	}
	fmt.Printf("fleet n=%d slots=%d %s: %s, %.1f requests/s; handoff p50 %.1f ms, p99 %.1f ms; per upgrade %.1f Lease writes, %.1f status writes, "+
		"%.0f watch events (%.0f of Leases, %.0f of requests); waiting pods alive at most %d, %d acquire runs\n",
		f.n, f.slots, f.mode.name, took.Round(100*time.Millisecond), perSec, ms(p50), ms(p99), leaseWrites/n, statusWrites/n,
		m.watchEvents("")/n, m.watchEvents("leases")/n, m.watchEvents("databases")/n, f.peak.Load(), f.runs.Load())
	if queued != nil && after.grants > queued.grants {
		// Once every request has its place, what an upgrade costs is the queue's steady state:
		// the arrival burst (each ticket created while the others watch) is behind.
		rest := after.m.minus(queued.m)
		upgrades := float64(after.grants - queued.grants)
		s50, s99 := quantiles(settled)
		fmt.Printf("  after the arrival burst (all queued at %s, %d upgrades begun): %.1f requests/s; handoff p50 %.1f ms, p99 %.1f ms; "+
			"per upgrade %.0f watch events of Leases, %.0f of requests\n",
			queued.at.Sub(before.at).Round(100*time.Millisecond), queued.grants, upgrades/after.at.Sub(queued.at).Seconds(),
			ms(s50), ms(s99), rest.watchEvents("leases")/upgrades, rest.watchEvents("databases")/upgrades)
	}
	fmt.Printf("  one waiting stage process (the real acquire, last to arrive): peak RSS %.1f MB, CPU %s\n",
		float64(f.stage.peakRSS.Load())/1024, f.stage.cpu.Round(time.Millisecond))
	fmt.Printf("  apiserver requests: %s\n", m.summary())
}

// quantiles are the median and 99th percentile of samples, zero if there are none.
func quantiles(samples []time.Duration) (p50, p99 time.Duration) {
	if len(samples) == 0 {
		return 0, 0
	}
	return quantile(samples, 0.5), quantile(samples, 0.99)
}
