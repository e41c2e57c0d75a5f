package stage

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// expectedBefore lists the Promise's requests of earlier waves than this one that have not
// begun their upgrade to target: the ones this request must let go first. Requests being
// deleted are not expected, nor new ones, whose first install goes straight through. It needs
// list on the Promise's kind in every namespace.
func (r *run) expectedBefore(ctx context.Context, target string, defaultWave int, gateNew bool) ([]turnstile.Expected, error) {
	if r.request.Wave == 0 {
		return nil, nil // nothing goes before wave 0
	}
	list, err := r.requests(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w, to let earlier waves go first (or set %s=0)", err, stageflags.EnvName("wave-grace"))
	}
	var out []turnstile.Expected
	for _, u := range list {
		if u.GetUID() == r.request.UID || u.GetDeletionTimestamp() != nil {
			continue
		}
		wave, ok, err := turnstile.WaveOf(u.GetLabels(), u.GetAnnotations())
		if !ok || err != nil {
			wave = defaultWave
		}
		status, _ := u.Object["status"].(map[string]any)
		st, _ := rollout.StatusFrom(status)
		if !gateNew && rollout.FirstInstall(status) {
			continue // a first install goes straight through, queueing nowhere: nothing to wait for
		}
		if wave < r.request.Wave && !st.Began(target) {
			out = append(out, turnstile.Expected{Request: u.GetNamespace() + "/" + u.GetName(), Wave: wave})
		}
	}
	return out, nil
}

// requests lists the Promise's requests in every namespace, once a run.
func (r *run) requests(ctx context.Context) ([]unstructured.Unstructured, error) {
	if r.fleet != nil {
		return r.fleet, nil
	}
	list, err := r.dynamic.Resource(r.request.GroupVersionResource).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the Promise's requests: %w", err)
	}
	r.fleet = list.Items
	return r.fleet, nil
}

// terms are the rollout's terms as this request would record them. A share of the fleet is
// counted (the Promise's requests not being deleted) only when the record does not have this
// rollout yet: once it does, the count on record holds for every request of the rollout.
func (r *run) terms(ctx context.Context, f *stageflags.Acquire, target string) (turnstile.Terms, error) {
	if !f.Slots.Share() {
		return f.Terms(0), nil
	}
	if rec, err := r.turn.Record(ctx); err == nil && rec.Target == target && rec.Slots > 0 {
		terms := f.Terms(0)
		terms.Slots = rec.Slots
		return terms, nil
	}
	list, err := r.requests(ctx)
	if err != nil {
		return turnstile.Terms{}, fmt.Errorf("%w, to count --slots %s of them (or give a number)", err, f.Slots.String())
	}
	n := 0
	for _, u := range list {
		if u.GetDeletionTimestamp() == nil {
			n++
		}
	}
	r.out.printf("--slots %s of %d requests: %d slot(s)", f.Slots.String(), n, f.Slots.Of(n))
	return f.Terms(n), nil
}
