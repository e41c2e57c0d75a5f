package event

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corev1fake "k8s.io/client-go/kubernetes/typed/core/v1/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestRecord(t *testing.T) {
	web := corev1.ObjectReference{APIVersion: "example.kratix.io/v1", Kind: "WebApp", Namespace: "team-a", Name: "web", UID: "uid-1"}
	tests := []struct {
		name    string
		refuse  error
		wantErr string
	}{
		{name: "written at once, about the object, by the component"},
		{name: "a refusal names the event and the object", refuse: errors.New("events is forbidden"),
			wantErr: "recording event SlotTaken on team-a/web: events is forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &clienttesting.Fake{}
			var created *corev1.Event
			fake.AddReactor("create", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
				created = a.(clienttesting.CreateAction).GetObject().(*corev1.Event)
				return true, created, tt.refuse
			})
			r := Recorder{Events: &corev1fake.FakeCoreV1{Fake: fake}, Component: "turnstile-acquire"}
			err := r.Record(context.Background(), web, corev1.EventTypeNormal, "SlotTaken", "took slot 0")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Record() = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case created == nil:
				t.Fatal("no Event created")
			case created.InvolvedObject != web || created.Namespace != "team-a" || !strings.HasPrefix(created.GenerateName, "web."):
				t.Errorf("the Event is about %+v in %s (%s), want the request", created.InvolvedObject, created.Namespace, created.GenerateName)
			case created.Reason != "SlotTaken" || created.Message != "took slot 0" || created.Type != corev1.EventTypeNormal || created.Count != 1:
				t.Errorf("the Event says %s %s %q ×%d", created.Type, created.Reason, created.Message, created.Count)
			case created.Source.Component != "turnstile-acquire" || created.ReportingController != "turnstile.kratix.io/turnstile-acquire":
				t.Errorf("the Event is reported by %q / %q", created.Source.Component, created.ReportingController)
			}
		})
	}
}
