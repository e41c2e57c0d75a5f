package plan

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// request is a request of wave ("" for none), with status.turnstile phase and version ("" for
// a request never configured: a first install).
func request(name, wave, phase, version string) unstructured.Unstructured {
	u := unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": name, "namespace": "default"}}}
	if wave != "" {
		u.SetLabels(map[string]string{turnstile.WaveKey: wave})
	}
	if phase != "" {
		u.Object["status"] = map[string]any{"lastSuccessfulConfigureWorkflowTime": "2026-12-01T00:00:00Z",
			"turnstile": map[string]any{"phase": phase, "version": version}}
	}
	return u
}

// stageFlags are a stage's flags, as stageflags defines them.
type stageFlags interface {
	Register(*pflag.FlagSet)
	Validate() error
}

// parsed is f with args parsed and validated, as the stage would.
func parsed[T stageFlags](t *testing.T, f T, args ...string) T {
	t.Helper()
	fs := pflag.NewFlagSet("stage", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	return f
}

func acquire(t *testing.T, args ...string) stageflags.Acquire {
	return *parsed(t, &stageflags.Acquire{}, args...)
}

func await(t *testing.T, args ...string) *stageflags.Await {
	return parsed(t, &stageflags.Await{}, args...)
}

func rolloutLease(annotations map[string]string) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: turnstile.RolloutName("db"),
		Labels: map[string]string{turnstile.LabelRole: turnstile.RoleRollout}, Annotations: annotations}}
}

func ticket(name string, wave int, arrived time.Time) *coordinationv1.Lease {
	r := turnstile.Request{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Wave: wave}
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: turnstile.TicketName("db", r), Labels: map[string]string{turnstile.LabelRole: turnstile.RoleTicket},
			Annotations: map[string]string{turnstile.AnnotationRequest: r.Key(), turnstile.AnnotationVersion: "v2",
				turnstile.AnnotationWave: string(rune('0' + wave)), turnstile.AnnotationUID: string(r.UID)}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(r.Identity()), AcquireTime: &metav1.MicroTime{Time: arrived},
			RenewTime: &metav1.MicroTime{Time: now}, LeaseDurationSeconds: ptr.To(int32(600))},
	}
}

// order is the plan's requests in order, as "wave:name".
func order(p Plan) string {
	var out []string
	for _, w := range p.Waves {
		for _, r := range w.Requests {
			out = append(out, string(rune('0'+r.Wave))+":"+strings.TrimPrefix(r.Request, "default/"))
		}
	}
	return strings.Join(out, " ")
}

func TestBuild(t *testing.T) {
	fleet := []unstructured.Unstructured{
		request("zed", "", "Upgraded", "v1"), request("shop", "0", "Upgraded", "v1"), request("blog", "", "Upgraded", "v1"),
		request("chat", "2", "Upgraded", "v1"), request("fresh", "", "", ""), request("done", "", "Upgraded", "v2"),
	}
	tests := []struct {
		name       string
		acquire    []string
		await      []string
		leases     []*coordinationv1.Lease
		wantOrder  string
		wantSlots  int
		wantWave0  int // slots of the first wave
		wantStart  string
		wantGate   string
		wantEst    time.Duration
		wantFrom   string
		wantFirsts int
	}{
		{name: "defaults: one at a time, canary first, then by name", wantOrder: "0:shop 1:blog 1:zed 2:chat", wantSlots: 1, wantWave0: 1,
			wantStart: "now", wantGate: "no await stage", wantEst: 4 * time.Minute, wantFirsts: 1},
		{name: "a share of the fleet, counted as it would be now, and a canary cap", acquire: []string{"--slots=50%", "--wave-slots=0=1"},
			await: []string{"--min-healthy=30s"}, wantOrder: "0:shop 1:blog 1:zed 2:chat", wantSlots: 3, wantWave0: 1, wantStart: "now",
			wantGate: "a wave pauses the rollout when over 20% of its upgrades fail", wantEst: 3 * 90 * time.Second, wantFirsts: 1},
		{name: "the queue under way orders by arrival, and the record's slots hold", acquire: []string{"--slots=50%"},
			leases: []*coordinationv1.Lease{rolloutLease(map[string]string{turnstile.AnnotationTarget: "v2", turnstile.AnnotationSlots: "1"}),
				ticket("zed", 1, now.Add(-time.Minute)), ticket("blog", 1, now)},
			wantOrder: "0:shop 1:zed 1:blog 2:chat", wantSlots: 1, wantWave0: 1, wantStart: "now", wantEst: 4 * time.Minute, wantFirsts: 1},
		{name: "gating new requests queues first installs too", acquire: []string{"--gate-new-requests"},
			wantOrder: "0:shop 1:blog 1:fresh 1:zed 2:chat", wantSlots: 1, wantWave0: 1, wantStart: "now", wantEst: 5 * time.Minute},
		{name: "a soak between waves, an approval and a freeze", acquire: []string{"--wave-soak=10m", "--require-approval-waves=2", "--deny-window=0 11 * * * for 2h"},
			wantOrder: "0:shop 1:blog 1:zed 2:chat", wantSlots: 1, wantWave0: 1, wantStart: "in 1h: in a deny window",
			wantGate: "wave 2 waits for approval: kubectl turnstile approve db 2", wantEst: 4*time.Minute + 20*time.Minute, wantFirsts: 1},
		{name: "from the version on record", leases: []*coordinationv1.Lease{rolloutLease(map[string]string{turnstile.AnnotationTarget: "v1"})},
			wantOrder: "0:shop 1:blog 1:zed 2:chat", wantSlots: 1, wantWave0: 1, wantStart: "now", wantEst: 4 * time.Minute, wantFrom: "v1", wantFirsts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Promise: "db", Target: "v2", Acquire: acquire(t, tt.acquire...), Requests: fleet, Now: now,
				PipelineTime: time.Minute, View: turnstile.NewView("db", 1, tt.leases)}
			if tt.await != nil {
				in.Await = await(t, tt.await...)
			}
			p := Build(in)
			if got := order(p); got != tt.wantOrder {
				t.Errorf("order = %q, want %q", got, tt.wantOrder)
			}
			if p.Slots != tt.wantSlots || p.Waves[0].Slots != tt.wantWave0 {
				t.Errorf("slots = %d, wave 0 %d; want %d, %d", p.Slots, p.Waves[0].Slots, tt.wantSlots, tt.wantWave0)
			}
			if !strings.HasPrefix(p.Start, tt.wantStart) {
				t.Errorf("start = %q, want %q...", p.Start, tt.wantStart)
			}
			if tt.wantGate != "" && !strings.Contains(strings.Join(p.Gates, "\n"), tt.wantGate) {
				t.Errorf("gates = %q, want one with %q", p.Gates, tt.wantGate)
			}
			if p.Estimate != tt.wantEst || p.From != tt.wantFrom || len(p.FirstInstalls) != tt.wantFirsts {
				t.Errorf("estimate %s, from %q, %d first installs; want %s, %q, %d", p.Estimate, p.From, len(p.FirstInstalls), tt.wantEst, tt.wantFrom, tt.wantFirsts)
			}
			if len(p.OnTarget) != 1 || p.OnTarget[0].Request != "default/done" {
				t.Errorf("on target = %v, want default/done", p.OnTarget)
			}
			var out bytes.Buffer
			if err := p.Write(&out); err != nil || !strings.Contains(out.String(), "Nothing was written.") {
				t.Errorf("Write() = %v:\n%s", err, out.String())
			}
		})
	}
}

func TestBuildNotesUnhealthyBefore(t *testing.T) {
	sick := request("sick", "", "Upgraded", "v1")
	sick.SetUID("uid-sick")
	record := map[string]any{"state": "unhealthy", "lastRun": now.Add(-time.Minute).Unix(),
		"source":  map[string]any{"name": "sick-health", "namespace": "default"},
		"details": health.Stamp{Promise: "db", RequestUID: "uid-sick", Version: "v1"}.Apply(nil)}
	sick.Object["status"].(map[string]any)["healthStatus"] = map[string]any{"state": "unhealthy", "healthRecords": []any{record}}
	for _, tt := range []struct{ preflight, want string }{
		{"upgrade", "unhealthy now (default/sick-health is unhealthy): a failure will be its own, left out of the gates"},
		{"wait", "unhealthy now (default/sick-health is unhealthy): waits until healthy (--preflight=wait)"},
	} {
		p := Build(Input{Promise: "db", Target: "v2", Acquire: acquire(t, "--preflight="+tt.preflight), Now: now,
			Requests: []unstructured.Unstructured{sick}, View: turnstile.NewView("db", 1, nil)})
		if got := p.Waves[0].Requests[0].Note; got != tt.want {
			t.Errorf("--preflight=%s: note = %q, want %q", tt.preflight, got, tt.want)
		}
	}
}
