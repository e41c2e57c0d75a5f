package stage

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/bindings"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	promisereport "github.com/kratix-turnstile/turnstile/pkg/report"
)

// releaseRollbackPin lets a request that `kubectl turnstile rollback` pinned to an older version
// follow the Promise again once a newer version is published. Without it the request would stay
// on the rolled-back version through every later upgrade. acquire is where this can happen with
// no controller: Kratix re-runs every request when the Promise changes, pinned ones included
// (at their pinned revision), and re-runs the request again, at the newest revision, once its
// binding moves. A failure only keeps the pin, so it is reported and the run goes on. released
// says the pin went: this run is at the pinned revision, and must end without upgrading anyone
// (its later stages would read the new version as their target and verify the old app as it).
func (r *run) releaseRollbackPin(ctx context.Context) (released bool, msg string) {
	list, _, err := bindings.List(ctx, r.dynamic, r.env.Promise, r.request.Namespace, r.request.Name)
	if err != nil {
		r.out.printf("keeping any rollback pin on %s: %s", r.request, program.OneLine(explain(err).Error()))
		return false, ""
	}
	if len(list) == 0 || list[0].RolledBackFrom == "" {
		return false, ""
	}
	b := list[0]
	p, err := r.dynamic.Resource(promisesGVR).Get(ctx, r.env.Promise, metav1.GetOptions{})
	if err != nil {
		r.out.printf("keeping the rollback pin of %s to %s: reading Promise %s: %s", r.request, b.Version, r.env.Promise, program.OneLine(explain(err).Error()))
		return false, ""
	}
	latest := p.GetLabels()[promisereport.PromiseVersionLabel]
	if !b.NeedsRelease(latest) {
		return false, ""
	}
	if err := bindings.Release(ctx, r.dynamic, b); err != nil {
		r.out.printf("keeping the rollback pin of %s to %s: %s", r.request, b.Version, program.OneLine(explain(err).Error()))
		return false, ""
	}
	msg = fmt.Sprintf("released the rollback's pin to %s (rolled back from %s): Promise %s has moved on to %s, and Kratix re-runs the request at it, through the turnstile",
		b.Version, b.RolledBackFrom, r.env.Promise, latest)
	r.out.printf("%s", msg)
	r.events.emit(ctx, corev1.EventTypeNormal, "RollbackPinReleased", msg)
	return true, msg
}
