package stage

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// DefaultWaveGrace is how long, after a rollout starts, a request waits for the requests of
// earlier waves to arrive before it takes a slot ahead of them. Kratix re-runs every request of
// a Promise within seconds of its upgrade (about one a second, in an order of its own); two
// minutes covers a busy controller working through hundreds of requests, and is short enough
// that a canary whose workflow never runs holds the rollout back only briefly, and visibly.
const DefaultWaveGrace = 2 * time.Minute

// MaxWaveGrace bounds --wave-grace: past an hour, a missing canary is an incident, not a delay.
const MaxWaveGrace = time.Hour

// expectedBefore lists the Promise's requests of earlier waves than this one that have not
// begun their upgrade to target: the ones this request must let go first. Requests being
// deleted are not expected, nor new ones, whose first install goes straight through. It needs
// list on the Promise's kind in every namespace.
func (r *run) expectedBefore(ctx context.Context, target string, defaultWave int, gateNew bool) ([]turnstile.Expected, error) {
	if r.request.Wave == 0 {
		return nil, nil // nothing goes before wave 0
	}
	list, err := r.dynamic.Resource(r.request.GroupVersionResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the Promise's requests, to let earlier waves go first (or set %s=0): %w", EnvName("wave-grace"), err)
	}
	var out []turnstile.Expected
	for _, u := range list.Items {
		if u.GetUID() == r.request.UID || u.GetDeletionTimestamp() != nil {
			continue
		}
		wave, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations())
		if !ok || err != nil {
			wave = defaultWave
		}
		status, _ := u.Object["status"].(map[string]any)
		st, seen := rollout.StatusFrom(status)
		if !gateNew && !seen && status["lastSuccessfulConfigureWorkflowTime"] == nil {
			continue // a first install goes straight through, queueing nowhere: nothing to wait for
		}
		if wave < r.request.Wave && !st.Began(target) {
			out = append(out, turnstile.Expected{Request: u.GetNamespace() + "/" + u.GetName(), Wave: wave})
		}
	}
	return out, nil
}
