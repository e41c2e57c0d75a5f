package agent

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

func TestStampMakesTheRecordCountForItsRequestOnly(t *testing.T) {
	since := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	def := &health.HealthDefinition{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "webapp-team-a-web",
			Annotations: map[string]string{health.RequestUIDAnnotation: "uid-1", health.VersionAnnotation: "v2"}},
		Spec: health.DefinitionSpec{PromiseRef: health.PromiseRef{Name: "webapp"}},
	}
	doc := &checks.Document{Version: "v2"}
	rep := checks.Report{State: checks.StateHealthy, VersionProven: true}
	details := stamp(def, doc, rep)
	for key, want := range map[string]any{
		health.PromiseKey: "webapp", health.RequestUIDKey: "uid-1", health.DefinitionKey: "default/webapp-team-a-web",
		health.VersionKey: "v2", health.VersionProvenKey: true,
	} {
		if details[key] != want {
			t.Errorf("details[%s] = %v, want %v", key, details[key], want)
		}
	}
	rec := health.Record{Source: "team-a/webapp-team-a-web", State: rep.State, LastRun: since.Add(time.Minute), Details: details}
	now := since.Add(2 * time.Minute)
	tests := []struct {
		name string
		f    health.Freshness
		want health.Standing
	}{
		{"this request's upgrade", health.Freshness{Promise: "webapp", RequestUID: "uid-1", Since: since, Version: "v2"}, health.Fresh},
		{"another Promise's", health.Freshness{Promise: "other", RequestUID: "uid-1", Since: since, Version: "v2"}, health.Foreign},
		{"a later request of the same name", health.Freshness{Promise: "webapp", RequestUID: "uid-2", Since: since, Version: "v2"}, health.Foreign},
		{"an upgrade to another version", health.Freshness{Promise: "webapp", RequestUID: "uid-1", Since: since, Version: "v3"}, health.Stale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.f.Standing(rec, now); got != tt.want {
				t.Errorf("Standing() = %v, want %v", got, tt.want)
			}
		})
	}
	if o := health.Observe(health.Status{Records: []health.Record{rec}}, true, tests[0].f, now); !o.Good || !o.VersionProven {
		t.Errorf("Observe() = %+v, want good and version proven", o)
	}
	def.Annotations = nil
	if got := (health.Freshness{Promise: "webapp", RequestUID: "", Since: since}).Standing(health.Record{LastRun: rec.LastRun, Details: stamp(def, doc, rep)}, now); got != health.Foreign {
		t.Errorf("a record of a definition without a request uid is %v, want foreign", got)
	}
}
