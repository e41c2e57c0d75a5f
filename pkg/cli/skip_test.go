package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

var databases = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "databases"}

// holding is a rollout of db to v2 in which default/web holds slot 0, upgrading.
func holding(t *testing.T, phase string) (*clients, *turnstile.Turnstile, *fake.Clientset) {
	t.Helper()
	req := turnstile.Request{GroupVersionResource: databases, Kind: "Database", Namespace: "default", Name: "web", UID: "uid-web", Wave: 1}
	now := metav1.NewMicroTime(time.Now())
	labels := func(role string) map[string]string {
		return map[string]string{turnstile.LabelPromise: "db", turnstile.LabelRole: role}
	}
	core := fake.NewClientset(
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: turnstile.RolloutName("db"), Namespace: "turnstile-system", Labels: labels(turnstile.RoleRollout),
			Annotations: map[string]string{turnstile.AnnotationTarget: "v2", turnstile.AnnotationPrevious: "v1"}}},
		&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: turnstile.SlotName("db", 0), Namespace: "turnstile-system", Labels: labels(turnstile.RoleSlot),
			Annotations: map[string]string{turnstile.AnnotationUID: string(req.UID), turnstile.AnnotationRequest: req.Key(),
				turnstile.AnnotationVersion: "v2", turnstile.AnnotationPhase: phase, turnstile.AnnotationWave: "1"}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(req.Identity()), AcquireTime: &now, RenewTime: &now, LeaseDurationSeconds: ptr.To(int32(600))}},
	)
	web := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Database",
		"metadata": map[string]any{"name": "web", "namespace": "default", "uid": "uid-web"},
		"status":   map[string]any{rollout.StatusKey: rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Since: now.Time}.Map()}}}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{databases: "DatabaseList"}, web)
	ts, err := turnstile.New(turnstile.Config{Leases: core.CoordinationV1(), Namespace: "turnstile-system", Promise: "db", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &clients{dynamic: dyn, leases: core.CoordinationV1(), events: core.CoreV1()}, ts, core
}

func TestSkipNamesTheVersionAndStatusShowsSkipped(t *testing.T) {
	for _, tt := range []struct {
		name  string
		phase string
		force bool
	}{
		{"a failed upgrade", turnstile.PhaseFailed, false},
		{"a forced skip of one under way", turnstile.PhaseUpgrading, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, ts, core := holding(t, tt.phase)
			out, err := skip(ctx, c, ts, databases, "default/web", tt.force, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if want := "skipped default/web's upgrade to v2: released turnstile-db-slot-0"; out != want {
				t.Errorf("skip said %q, want %q", out, want)
			}
			web, err := c.dynamic.Resource(databases).Namespace("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			status, _ := web.Object["status"].(map[string]any)
			st, _ := rollout.StatusFrom(status)
			if st.Phase != rollout.PhaseSkipped || st.Version != "v2" || st.Message != "upgrade to v2 skipped by alice; turnstile-db-slot-0 released" {
				t.Errorf("status.turnstile = %+v", st)
			}
			events, _ := core.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
			if len(events.Items) != 1 || !strings.Contains(events.Items[0].Message, "upgrade to v2 skipped by alice") {
				t.Errorf("events = %+v", events.Items)
			}
			view, err := ts.Inspect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rep := report.Build("db", view, []unstructured.Unstructured{*web}, 1, time.Now())
			if got := rep.Rows[0].Phase; got != rollout.PhaseSkipped {
				t.Errorf("status lists the skipped request as %s", got)
			}
		})
	}
}

func TestSkipRefusesAnUpgradeUnderWay(t *testing.T) {
	c, ts, _ := holding(t, turnstile.PhaseUpgrading)
	if _, err := skip(context.Background(), c, ts, databases, "default/web", false, "alice"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("skip() = %v, want a refusal naming --force", err)
	}
}

func TestFlagsOutOfRange(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "db", "--slots=0"}, `error: invalid argument "0" for "--slots" flag: want a number of requests from 1 to 1000, or a share such as 10%, got "0"`},
		{[]string{"pause", "db", "--slots=5000"}, `error: invalid argument "5000" for "--slots" flag`},
		{[]string{"status", "db", "--timeout=-1s"}, "error: --timeout must not be negative (0 waits for ever), got -1s"},
		{[]string{"status", "db", "-w", "--heartbeat=-5s"}, "error: --heartbeat must not be negative (0 never), got -5s"},
		{[]string{"dashboard", "--port=70000"}, "error: --port must be between 0 and 65535, got 70000"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			// A kubeconfig that cannot be loaded: the flags must be refused before it is read.
			code := Run(context.Background(), append(tt.args, "--kubeconfig=/nonexistent"), &stdout, &stderr, clock.RealClock{})
			if code != 1 || !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr.String(), tt.want)
			}
		})
	}
}
