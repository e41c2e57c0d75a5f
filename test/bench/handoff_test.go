package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

func benchRequest(name string) turnstile.Request {
	return turnstile.Request{GroupVersionResource: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "databases"},
		Kind: "Database", Namespace: "bench", Name: name, UID: types.UID("uid-" + name), Wave: 1}
}

// turnstileHandoffs measures, round after round, the time from the start of the holder's
// Release to the return of the waiter's Acquire; the two swap roles each round.
func turnstileHandoffs(b *testing.B, client kubernetes.Interface, ns string, rounds int) []time.Duration {
	ctx := context.Background()
	ts, err := turnstile.New(turnstile.Config{Leases: client.CoordinationV1(), Namespace: ns, Promise: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	reqs := [2]turnstile.Request{benchRequest("a"), benchRequest("b")}
	if _, err := ts.Acquire(ctx, reqs[0], turnstile.AcquireOptions{Target: "v2"}); err != nil {
		b.Fatal(err)
	}
	holder := 0
	var samples []time.Duration
	for range rounds {
		waiter := 1 - holder
		queued, acquired := make(chan struct{}), make(chan time.Time, 1)
		go func() {
			var once sync.Once
			_, err := ts.Acquire(ctx, reqs[waiter], turnstile.AcquireOptions{Target: "v2", OnWait: func(turnstile.Wait) {
				once.Do(func() { close(queued) })
			}})
			if err != nil {
				b.Error(err)
			}
			acquired <- time.Now()
		}()
		<-queued
		time.Sleep(20 * time.Millisecond) // the waiter settles on its watch, as a real one would be
		released := time.Now()
		if _, err := ts.Release(ctx, reqs[holder], turnstile.Attempt{}); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, (<-acquired).Sub(released))
		holder = waiter
	}
	return samples
}

// leaderElectionHandoffs measures the same handoff with client-go's leaderelection at the
// timings core components use (15s/10s/2s) and ReleaseOnCancel: from cancelling the leader to
// the waiting candidate's OnStartedLeading.
func leaderElectionHandoffs(b *testing.B, client kubernetes.Interface, ns string, rounds int) []time.Duration {
	started := make(chan time.Time, 1)
	run := func(id string) (context.CancelFunc, chan struct{}) {
		lock := &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Name: "bench-leaderelection", Namespace: ns},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		}
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			ReleaseOnCancel: true, Name: id,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) { started <- time.Now() },
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { le.Run(ctx); close(done) }()
		return cancel, done
	}
	cancel, done := run("candidate-0")
	<-started
	var samples []time.Duration
	for i := range rounds {
		nextCancel, nextDone := run(fmt.Sprintf("candidate-%d", i+1))
		time.Sleep(time.Second) // the new candidate has tried once and is polling
		released := time.Now()
		cancel()
		<-done
		samples = append(samples, (<-started).Sub(released))
		cancel, done = nextCancel, nextDone
	}
	cancel()
	<-done
	return samples
}

// BenchmarkHandoff: how soon the next request goes once a slot is released, against client-go
// leaderelection's polling at its default timings. Targets: p50 <= 20ms and >= 50x faster.
func BenchmarkHandoff(b *testing.B) {
	cfg := controlPlane(b).Config
	client := kubernetes.NewForConfigOrDie(cfg)
	for b.Loop() {
		ts := turnstileHandoffs(b, client, namespace(b, client, "handoff"), 200)
		le := leaderElectionHandoffs(b, client, namespace(b, client, "leaderelection"), 10)
		tsP50, leP50 := quantile(ts, 0.5), quantile(le, 0.5)
		b.ReportMetric(ms(tsP50), "turnstile-p50-ms")
		b.ReportMetric(ms(quantile(ts, 0.99)), "turnstile-p99-ms")
		b.ReportMetric(ms(leP50), "leaderelection-p50-ms")
		b.ReportMetric(ms(quantile(le, 0.99)), "leaderelection-p99-ms")
		b.ReportMetric(float64(leP50)/float64(tsP50), "x-faster-p50")
		fmt.Printf("handoff (release -> next holder): turnstile p50 %.1fms p99 %.1fms over %d; leaderelection 15s/10s/2s p50 %.0fms p99 %.0fms over %d; ratio of p50s %.0fx\n",
			ms(tsP50), ms(quantile(ts, 0.99)), len(ts), ms(leP50), ms(quantile(le, 0.99)), len(le), float64(leP50)/float64(tsP50))
	}
}
