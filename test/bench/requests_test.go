package bench

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// perRequest is what one request's passage through the turnstile cost in API requests.
type perRequest struct {
	writes, waitReads, waitWatches int64
	waited                         bool
}

// BenchmarkAPIRequestsPerUpgrade sends 20 requests at once through one slot. Each has its own
// counting client; a request "upgrades" for 5ms once it holds the slot, then releases it.
// Target: <= 4 lease writes per upgrade, and no polling while waiting (reads stay flat however
// long the wait).
func BenchmarkAPIRequestsPerUpgrade(b *testing.B) {
	cfg := controlPlane(b).Config
	admin := kubernetes.NewForConfigOrDie(cfg)
	for b.Loop() {
		ns := namespace(b, admin, "requests")
		const requests = 20
		results := make([]perRequest, requests)
		var wg sync.WaitGroup
		for i := range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &counter{}
				ts, err := turnstile.New(turnstile.Config{Leases: kubernetes.NewForConfigOrDie(c.wrap(cfg)).CoordinationV1(), Namespace: ns, Promise: "bench"})
				if err != nil {
					b.Error(err)
					return
				}
				req := benchRequest(fmt.Sprintf("db-%02d", i))
				ctx := context.Background()
				grant, err := ts.Acquire(ctx, req, turnstile.AcquireOptions{Target: "v2"})
				if err != nil {
					b.Error(err)
					return
				}
				r := &results[i]
				r.waited = grant.Waited > 50*time.Millisecond
				r.waitReads, r.waitWatches = c.reads.Load(), c.watches.Load()
				time.Sleep(5 * time.Millisecond)
				if _, err := ts.Release(ctx, req, turnstile.Attempt{}); err != nil {
					b.Error(err)
				}
				r.writes = c.writes.Load()
			}()
		}
		wg.Wait()
		median := func(get func(perRequest) int64) float64 {
			var v []int64
			for _, r := range results {
				v = append(v, get(r))
			}
			sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
			return float64(v[len(v)/2])
		}
		var most int64
		for _, r := range results {
			most = max(most, r.writes)
		}
		writes := median(func(r perRequest) int64 { return r.writes })
		reads := median(func(r perRequest) int64 { return r.waitReads })
		watches := median(func(r perRequest) int64 { return r.waitWatches })
		b.ReportMetric(writes, "lease-writes/upgrade")
		b.ReportMetric(float64(most), "max-lease-writes/upgrade")
		b.ReportMetric(reads, "reads-while-waiting")
		b.ReportMetric(watches, "watches-while-waiting")
		fmt.Printf("API requests per upgrade (20 at once, 1 slot): lease writes median %.0f, max %d; while waiting: %.0f list/get, %.0f watch (no polling); plus 1-2 Events per upgrade from the stages\n",
			writes, most, reads, watches)
	}
}
