package stage

import (
	"context"
	"fmt"

	kratix "github.com/syntasso/kratix-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/kratix-turnstile/turnstile/pkg/event"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// report is the turnstile block of a request's status.
type report = rollout.Status

// write puts the report into status.yaml, for Kratix to merge when the pipeline ends.
func (r *run) write(rep report) error {
	return r.pipe.WriteStatusKey(rollout.StatusKey, rep.Map())
}

// publish writes the report into the live request's status at once, for phases that must be
// seen while the stage is still running (a failed upgrade that keeps its slot).
func (r *run) publish(rep report) error {
	sdk := kratix.New(kratix.WithObjectClient(r.dynamic.Resource(r.request.GroupVersionResource).Namespace(r.request.Namespace)))
	status := kratix.NewStatusFromMap(map[string]any{rollout.StatusKey: rep.MergePatch()})
	if err := sdk.PublishStatus(r.object.Resource, status); err != nil {
		return fmt.Errorf("publishing status of %s: %w", r.request.Key(), err)
	}
	return nil
}

// eventer records Kubernetes Events on the request.
type eventer struct {
	recorder event.Recorder
	request  turnstile.Request
	out      printer
}

// emit records one Event; a failure to record one is printed, and the stage carries on.
func (e eventer) emit(ctx context.Context, eventType, reason, message string) {
	ref := corev1.ObjectReference{APIVersion: e.request.GroupVersion().String(), Kind: e.request.Kind,
		Namespace: e.request.Namespace, Name: e.request.Name, UID: e.request.UID}
	if err := e.recorder.Record(ctx, ref, eventType, reason, message); err != nil {
		e.out.printf("could not record an event: %s", program.OneLine(err.Error()))
	}
}
