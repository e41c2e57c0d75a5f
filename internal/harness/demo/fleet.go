package demo

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/test/scrape"
)

// fleet is `turnstile-demo --fleet N`: N requests of the example Promise through one upgrade on
// real Kratix, healthy all, to measure what Turnstile adds to a rollout: the time a slot stands
// free between one request's release and the next one's take (Kratix re-running a request
// that handed back, the acquire stage's start and decision), against the time requests hold
// the slots for their own pipeline, app rollout and soak.
func (d *demo) fleet(ctx context.Context, n, slots int) error {
	if err := d.start(ctx); err != nil {
		return err
	}
	h := d.h
	variant := harness.Variant{AcquireEnv: map[string]string{"TURNSTILE_SLOTS": fmt.Sprint(slots)}}
	say(d.out, fmt.Sprintf("Publishing the webapp Promise at v1 with %d requests (first installs go straight through)", n))
	if err := h.ApplyPromiseAs(ctx, "v1", variant); err != nil {
		return fmt.Errorf("publishing the Promise at v1: %w", err)
	}
	var manifests strings.Builder
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("fleet-%02d", i)
		fmt.Fprintf(&manifests, "apiVersion: %s\nkind: WebApp\nmetadata: {name: %s, namespace: default}\nspec: {message: \"fleet request %d\"}\n---\n",
			harness.WebApps.GroupVersion(), names[i], i)
	}
	if err := h.Apply(ctx, []byte(manifests.String())); err != nil {
		return err
	}
	if err := d.waitAll(ctx, "v1", names, program.StillEvery); err != nil {
		return err
	}

	say(d.out, fmt.Sprintf("Upgrading the Promise to v2: %d requests through %d slot(s)", n, slots))
	upgrade := time.Now()
	if err := h.ApplyPromiseAs(ctx, "v2", variant); err != nil {
		return fmt.Errorf("upgrading the Promise to v2: %w", err)
	}
	if err := d.waitAll(ctx, "v2", names, program.StillEvery); err != nil {
		return err
	}
	took := time.Since(upgrade)
	// The observer's histograms lag its watch by a moment.
	time.Sleep(2 * time.Second)
	return d.share(n, slots, took)
}

// waitAll waits for every request of names to be Upgraded to version, looking every poll (the
// fleet's measurement wants the apiserver to itself, the story a quick eye) and saying how many
// are every few seconds, for up to a minute a request.
func (d *demo) waitAll(ctx context.Context, version string, names []string, every time.Duration) error {
	started, done := time.Now(), harness.AtPhase(version, "Upgraded")
	deadline := started.Add(time.Duration(len(names)) * time.Minute)
	ours := map[string]bool{}
	for _, n := range names {
		ours[n] = true
	}
	poll := time.NewTicker(every)
	defer poll.Stop()
	said, upgraded := started, 0
	for {
		// A failed list (the apiserver busy) counts as no news: the next tick lists again.
		if list, err := d.h.Dynamic.Resource(harness.WebApps).Namespace("default").List(ctx, metav1.ListOptions{}); err == nil {
			upgraded = 0
			for i := range list.Items {
				if ours[list.Items[i].GetName()] && done(&list.Items[i]) {
					upgraded++
				}
			}
		}
		if upgraded == len(names) {
			fmt.Fprintf(d.out, "all %d requests Upgraded to %s in %s\n", upgraded, version, time.Since(started).Round(time.Second))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for the requests at %s: %d of %d Upgraded after %s", version, upgraded, len(names), time.Since(started).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			if time.Since(said)+every > program.StillEvery { // by the next look it would be late
				said = time.Now()
				fmt.Fprintf(d.out, "%d of %d requests Upgraded to %s (%s)\n", upgraded, len(names), version, time.Since(started).Round(time.Second))
			}
		}
	}
}

// share prints the rollout's time and Turnstile's share of it, from the dashboard's metrics.
func (d *demo) share(n, slots int, took time.Duration) error {
	m, err := scrape.Get(d.dashboard + "metrics")
	if err != nil {
		return fmt.Errorf("reading the dashboard's metrics: %w", err)
	}
	p := "promise=" + harness.PromiseName
	// A series the observer never wrote reads as -1: none.
	value := func(name string) float64 { return max(0, m.Value(name, p)) }
	upgrades, held := value("turnstile_upgrade_duration_seconds_count"), value("turnstile_upgrade_duration_seconds_sum")
	handoffs, gaps := value("turnstile_handoff_gap_seconds_count"), value("turnstile_handoff_gap_seconds_sum")
	if upgrades == 0 {
		return fmt.Errorf("the observer saw no upgrade of %s", harness.PromiseName)
	}
	say(d.out, "Turnstile's share of the rollout")
	fmt.Fprintf(d.out, "%d requests, %d slot(s), %s: the rollout took %s (Promise upgraded → every request Upgraded)\n",
		n, slots, d.kratix.Describe(), took.Round(time.Second))
	fmt.Fprintf(d.out, "slots held by the requests' own upgrades (pipeline, app, soak): %.0f upgrades, %.1f s, %.1f s each\n",
		upgrades, held, held/upgrades)
	fmt.Fprintf(d.out, "slots standing free between a release and the next take: %.0f handoffs, %.1f s, %.2f s each\n",
		handoffs, gaps, gaps/max(handoffs, 1))
	// With more than one slot both are slot-seconds: the share is of the slots' time.
	fmt.Fprintf(d.out, "Turnstile's share: %.1f%% of the slots' time (%.2f slot-seconds per request)\n", 100*gaps/(held+gaps), gaps/float64(n))
	return nil
}
