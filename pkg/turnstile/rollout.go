package turnstile

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RecordTarget notes on the rollout Lease that a rollout to target has begun. The first request
// of a new version writes it; everyone after finds it there and writes nothing. A pause stays
// across versions (it is the operator's to lift); an abort belongs to the version it stopped.
func (t *Turnstile) RecordTarget(ctx context.Context, view View, target string) error {
	if target == "" || view.Rollout.Target == target {
		return nil
	}
	now := t.cfg.Clock.Now().UTC().Format(time.RFC3339)
	l := view.Rollout.Lease
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{
			Name: RolloutName(t.cfg.Promise), Namespace: t.cfg.Namespace, Labels: t.labels(RoleRollout),
			Annotations: map[string]string{},
		}}
	} else {
		l = l.DeepCopy()
	}
	l.Annotations[AnnotationTarget] = target
	l.Annotations[AnnotationStarted] = now
	var err error
	if view.Rollout.Lease == nil {
		_, err = t.leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		_, err = t.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	if isLostRace(err) {
		return nil // another request recorded it a moment ago
	}
	return t.writeError("recording the rollout of "+target, err)
}
