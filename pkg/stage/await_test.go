package stage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1fake "k8s.io/client-go/kubernetes/typed/core/v1/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/event"
	"github.com/kratix-turnstile/turnstile/pkg/pipeline"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// scriptedSlot is the request's slot as the await machine's writes find it: each write is
// noted, and answered with err.
type scriptedSlot struct {
	err    error
	writes []string
}

func (s *scriptedSlot) write(what string, at turnstile.Attempt) (turnstile.Slot, error) {
	s.writes = append(s.writes, what+" "+at.Version)
	return turnstile.Slot{}, s.err
}

func (s *scriptedSlot) Renew(_ context.Context, _ turnstile.Request, at turnstile.Attempt) (turnstile.Slot, error) {
	return s.write("renew", at)
}

func (s *scriptedSlot) Release(_ context.Context, _ turnstile.Request, at turnstile.Attempt) (turnstile.Slot, error) {
	return s.write("release", at)
}

func (s *scriptedSlot) MarkFailed(_ context.Context, _ turnstile.Request, at turnstile.Attempt, _ string) (turnstile.Slot, error) {
	return s.write("mark-failed", at)
}

// liveRequest is the request as a read finds it: obj, or err.
type liveRequest struct {
	obj *unstructured.Unstructured
	err error
}

func (l liveRequest) Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error) {
	return l.obj, l.err
}

func TestAwaitCarriesOutActions(t *testing.T) {
	attempt := turnstile.Attempt{Version: "v2", Began: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	gr := schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	withPhase := func(phase string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
			rollout.StatusKey: rollout.Status{Phase: phase, Version: "v2"}.Map()}}}
	}
	handingBack := rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2"}
	tests := []struct {
		name     string
		act      turnstile.AwaitAction
		slotErr  error
		live     liveRequest
		want     *turnstile.AwaitEvent // the outcome fed back; nil for none
		over     bool
		wantErr  bool
		writes   string // the slot writes, in order
		printed  string // a line the stage prints
		metadata string // a file the stage writes in /kratix/metadata
	}{
		{name: "a renewal that went through", act: turnstile.AwaitAction{Do: turnstile.DoRenew, Attempt: attempt},
			want: &turnstile.AwaitEvent{On: turnstile.OnDone}, writes: "renew v2"},
		{name: "a renewal of a slot skipped or taken since: the machine hears it is lost",
			act: turnstile.AwaitAction{Do: turnstile.DoRenew, Attempt: attempt}, slotErr: fmt.Errorf("renewing the slot: team-a/web %w", turnstile.ErrNotHeld),
			want: &turnstile.AwaitEvent{On: turnstile.OnLost, Why: "renewing the slot: team-a/web holds no slot"}, writes: "renew v2"},
		{name: "a release for an attempt the slot is no longer held for: lost",
			act: turnstile.AwaitAction{Do: turnstile.DoRelease, Attempt: attempt}, slotErr: turnstile.ErrOtherAttempt,
			want: &turnstile.AwaitEvent{On: turnstile.OnLost, Why: turnstile.ErrOtherAttempt.Error()}, writes: "release v2"},
		{name: "a release the apiserver refused: the run fails, holding the slot",
			act: turnstile.AwaitAction{Do: turnstile.DoRelease, Attempt: attempt}, slotErr: apierrors.NewForbidden(gr, "webapp-0", errors.New("no update")),
			want: &turnstile.AwaitEvent{On: turnstile.OnDone}, wantErr: true, writes: "release v2"},
		{name: "marking failed that did not go through: said, and the run goes on",
			act:     turnstile.AwaitAction{Do: turnstile.DoMarkFailed, Attempt: attempt, Slot: "webapp-0", Line: "unhealthy"},
			slotErr: apierrors.NewServiceUnavailable("etcd is down"),
			want:    &turnstile.AwaitEvent{On: turnstile.OnDone}, writes: "mark-failed v2", printed: "could not mark webapp-0 failed: etcd is down"},
		{name: "a read of the status afresh", act: turnstile.AwaitAction{Do: turnstile.DoRefresh}, live: liveRequest{obj: withPhase(rollout.PhaseFailed)},
			want: &turnstile.AwaitEvent{On: turnstile.OnRefreshed, Live: rollout.Status{Phase: rollout.PhaseFailed, Version: "v2"}}},
		{name: "a read that failed keeps the status last seen", act: turnstile.AwaitAction{Do: turnstile.DoRefresh},
			live: liveRequest{err: apierrors.NewServiceUnavailable("restarting")}, want: &turnstile.AwaitEvent{On: turnstile.OnDone}},
		{name: "handing back to Kratix: status and retryAfter written, the run over",
			act: turnstile.AwaitAction{Do: turnstile.DoHandBack, Status: handingBack, Line: "verifying"}, over: true,
			printed: "still Verifying after 1m0s: asking Kratix to retry in 30s", metadata: "workflow-control.yaml"},
		{name: "finishing writes the status", act: turnstile.AwaitAction{Do: turnstile.DoFinish, Status: rollout.Status{Phase: rollout.PhaseUpgraded}},
			over: true, metadata: "status.yaml"},
		{name: "stopping writes nothing", act: turnstile.AwaitAction{Do: turnstile.DoStop}, over: true},
		{name: "a line to say", act: turnstile.AwaitAction{Do: turnstile.DoSay, Line: "healthy for 10s of 10s"}, printed: "await: healthy for 10s of 10s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot := &scriptedSlot{err: tt.slotErr}
			a, out, dirs := newAwaiting(t, slot, tt.live)
			got, over, err := a.do(context.Background(), tt.act)
			if (err != nil) != tt.wantErr || over != tt.over {
				t.Fatalf("do() = over %v, error %v; want over %v, error %v", over, err, tt.over, tt.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("outcome = %+v, want %+v", got, tt.want)
			}
			if w := strings.Join(slot.writes, ", "); w != tt.writes {
				t.Errorf("slot writes = %q, want %q", w, tt.writes)
			}
			if !strings.Contains(out.String(), tt.printed) {
				t.Errorf("printed %q, want a line with %q", out.String(), tt.printed)
			}
			written, _ := filepath.Glob(filepath.Join(dirs.Metadata, "*"))
			switch {
			case tt.metadata == "" && len(written) > 0:
				t.Errorf("wrote %v, want nothing", written)
			case tt.metadata != "" && !containsBase(written, tt.metadata):
				t.Errorf("wrote %v, want %s", written, tt.metadata)
			}
		})
	}
}

func TestAwaitHandsBackWithTheStatusItSays(t *testing.T) {
	a, _, dirs := newAwaiting(t, &scriptedSlot{}, liveRequest{})
	st := rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Message: "healthy for 5s of 10s"}
	if _, over, err := a.do(context.Background(), turnstile.AwaitAction{Do: turnstile.DoHandBack, Status: st, Line: "verifying"}); !over || err != nil {
		t.Fatalf("do() = over %v, error %v; want over, no error", over, err)
	}
	control := readMetadata(t, dirs, "workflow-control.yaml")
	if control["retryAfter"] != "30s" || control["message"] != "verifying" {
		t.Errorf("workflow-control.yaml = %v, want retryAfter 30s and the machine's line", control)
	}
	status := readMetadata(t, dirs, "status.yaml")
	if got, _ := rollout.StatusFrom(status); got.Phase != st.Phase || got.Message != st.Message {
		t.Errorf("status.yaml's %s = %+v, want %+v", rollout.StatusKey, got, st)
	}
}

func TestAwaitNeverCarriesOnPastAnOutcome(t *testing.T) {
	slot := &scriptedSlot{}
	a, _, _ := newAwaiting(t, slot, liveRequest{})
	over, err := a.carry(context.Background(), []turnstile.AwaitAction{{Do: turnstile.DoRenew}, {Do: turnstile.DoRelease}})
	if !over || err == nil || !strings.Contains(err.Error(), "action 1 of 2 has an outcome but is not the last") {
		t.Fatalf("carry() = over %v, error %v; want the run over on that error", over, err)
	}
	if len(slot.writes) != 1 {
		t.Errorf("slot writes = %v, want the renewal only", slot.writes)
	}
}

// newAwaiting is an await run over slot and live, printing to the buffer returned, with its
// pipeline's directories under a temporary root.
func newAwaiting(t *testing.T, slot slotWriter, live requestReader) (*awaiting, *bytes.Buffer, pipeline.Dirs) {
	t.Helper()
	dirs := pipeline.DirsUnder(t.TempDir())
	for _, d := range []string{dirs.Input, dirs.Output, dirs.Metadata} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := &bytes.Buffer{}
	p := printer{w: out, stage: "await"}
	req := turnstile.Request{Namespace: "team-a", Name: "web", Kind: "WebApp"}
	r := &run{out: p, pipe: pipeline.New(dirs), request: req,
		events: eventer{recorder: event.Recorder{Events: &corev1fake.FakeCoreV1{Fake: &clienttesting.Fake{}}, Component: "turnstile-await"}, request: req, out: p},
		clock:  clocktesting.NewFakeClock(time.Date(2026, 12, 3, 9, 1, 0, 0, time.UTC))}
	flags := &stageflags.Await{Slot: stageflags.Slot{Wait: time.Minute, RetryAfter: 30 * time.Second}}
	return &awaiting{run: r, flags: flags, slots: slot, requests: live}, out, dirs
}

func readMetadata(t *testing.T, dirs pipeline.Dirs, name string) map[string]any {
	t.Helper()
	out := map[string]any{}
	data, err := os.ReadFile(filepath.Join(dirs.Metadata, name))
	if err == nil {
		err = yaml.Unmarshal(data, &out)
	}
	if err != nil {
		t.Fatalf("reading the stage's %s: %v", name, err)
	}
	return out
}

func containsBase(paths []string, base string) bool {
	for _, p := range paths {
		if filepath.Base(p) == base {
			return true
		}
	}
	return false
}
