package report

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

func TestOutcome(t *testing.T) {
	tests := []struct {
		name string
		rep  Report
		want Outcome
	}{
		{"nothing yet", Report{}, Progressing},
		{"part way", Report{Total: 5, Upgraded: 2, Waiting: 3}, Progressing},
		{"all upgraded", Report{Total: 5, Upgraded: 5}, Done},
		{"paused", Report{Total: 5, Upgraded: 2, Paused: true}, Halted},
		{"held platform-wide", Report{Total: 5, Upgraded: 2, Held: true}, Halted},
		{"done, though the platform is held", Report{Total: 5, Upgraded: 5, Held: true}, Done},
		{"aborted", Report{Total: 5, Upgraded: 5, Aborted: true}, Halted},
		{"a failed upgrade", Report{Total: 5, Upgraded: 1, Failed: 1}, Halted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.Outcome(); got != tt.want {
				t.Errorf("Outcome() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		n, of int
		want  string
	}{
		{0, 0, "[----------]"}, {0, 5, "[----------]"}, {1, 5, "[##--------]"}, {5, 5, "[##########]"}, {2, 3, "[######----]"},
	}
	for _, tt := range tests {
		if got := bar(tt.n, tt.of, 10); got != tt.want {
			t.Errorf("bar(%d, %d) = %s, want %s", tt.n, tt.of, got, tt.want)
		}
	}
}

func TestWithDeclared(t *testing.T) {
	cases := []struct {
		name                      string
		target, previous, aborted string
		declared                  string
		want                      string
	}{
		{"the Promise moved on: its rollout has not begun", "v1", "", "", "v2", "v2"},
		{"the rollout under way", "v2", "v1", "", "v2", "v2"},
		{"no version label", "v2", "v1", "", "", "v2"},
		{"a rollback back to the previous version", "v1", "v2", "v2", "v2", "v1"},
		{"a leftover of the version before", "v2", "v1", "", "v1", "v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := turnstile.View{Rollout: turnstile.Rollout{Target: c.target, Previous: c.previous, AbortedVersion: c.aborted}}
			if got := WithDeclared(v, c.declared).Rollout.Target; got != c.want {
				t.Errorf("target = %q, want %q", got, c.want)
			}
		})
	}
}

func TestBuildHeldRowFollowsTheNewerOfSlotAndStatus(t *testing.T) {
	took := time.Date(2026, 12, 2, 10, 0, 0, 500_000_000, time.UTC)
	failedAt := took.Add(30 * time.Second)
	slot := func(phase string) *coordinationv1.Lease {
		a := map[string]string{turnstile.AnnotationUID: "uid-web", turnstile.AnnotationRequest: "default/web", turnstile.AnnotationPhase: phase, turnstile.AnnotationMessage: "upgrade to v2 failed: unhealthy"}
		if phase == turnstile.PhaseFailed {
			a[turnstile.AnnotationFailedAt] = failedAt.Format(time.RFC3339Nano)
		}
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: turnstile.SlotName("db", 0),
			Labels:      map[string]string{turnstile.LabelRole: turnstile.RoleSlot},
			Annotations: a},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("example.com/Database/default/web"), AcquireTime: &metav1.MicroTime{Time: took},
				RenewTime: &metav1.MicroTime{Time: took}, LeaseDurationSeconds: ptr.To(int32(600))}}
	}
	rolloutLease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: turnstile.RolloutName("db"),
		Labels: map[string]string{turnstile.LabelRole: turnstile.RoleRollout}, Annotations: map[string]string{turnstile.AnnotationTarget: "v2"}}}
	tests := []struct {
		name        string
		slotPhase   string
		status      rollout.Status
		want        string
		wantMessage string
	}{
		{"upgrading", turnstile.PhaseUpgrading, rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Since: took}, rollout.PhaseUpgrading, ""},
		{"verifying, in the second the slot was taken", turnstile.PhaseUpgrading, rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Since: took.Truncate(time.Second)}, rollout.PhaseVerifying, ""},
		{"passed, slot not yet released", turnstile.PhaseUpgrading, rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: took.Add(time.Minute)}, rollout.PhaseUpgraded, ""},
		{"slot marked failed, status not yet", turnstile.PhaseFailed, rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Since: took}, rollout.PhaseFailed, "upgrade to v2 failed: unhealthy"},
		{"recovered: the verdict is newer than the failed mark", turnstile.PhaseFailed, rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: took.Add(time.Minute)}, rollout.PhaseUpgraded, ""},
		{"marked failed after it said upgraded (its release never came)", turnstile.PhaseFailed, rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2", Since: failedAt.Add(-10 * time.Second)}, rollout.PhaseFailed, "upgrade to v2 failed: unhealthy"},
		{"an earlier attempt's failure says nothing", turnstile.PhaseUpgrading, rollout.Status{Phase: rollout.PhaseFailed, Version: "v2", Since: took.Add(-time.Hour)}, rollout.PhaseUpgrading, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			web := unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "web", "namespace": "default", "uid": "uid-web"},
				"status": map[string]any{rollout.StatusKey: tt.status.Map()}}}
			view := turnstile.NewView("db", 1, []*coordinationv1.Lease{slot(tt.slotPhase), rolloutLease})
			row := Build("db", view, []unstructured.Unstructured{web}, 1, took.Add(2*time.Minute)).Rows[0]
			if row.Phase != tt.want || (tt.wantMessage != "" && row.Message != tt.wantMessage) {
				t.Errorf("row = %s %q, want %s %q", row.Phase, row.Message, tt.want, tt.wantMessage)
			}
		})
	}
}
