// Package event records Kubernetes Events on the objects Turnstile acts for.
package event

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Recorder records Kubernetes Events, so `kubectl describe` tells an object's story. It writes
// each Event at once: the stages are short-lived processes that must not lose one on exit.
type Recorder struct {
	Events corev1client.EventsGetter
	// Component names who reports, e.g. turnstile-acquire.
	Component string
}

// Record writes one Event about obj. Events are a courtesy: the error is for the caller to
// print, not to stop on.
func (r Recorder) Record(ctx context.Context, obj corev1.ObjectReference, eventType, reason, message string) error {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: obj.Name + ".", Namespace: obj.Namespace},
		InvolvedObject: obj,
		Reason:         reason, Message: message, Type: eventType,
		Source:         corev1.EventSource{Component: r.Component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "turnstile.kratix.io/" + r.Component, ReportingInstance: r.Component,
	}
	if _, err := r.Events.Events(obj.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("recording event %s on %s/%s: %w", reason, obj.Namespace, obj.Name, err)
	}
	return nil
}
