package turnstile

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// The await tests' attempt: default/me took slot 0 for v2 at t0; its run begins 5s later.
var (
	awaitMe    = request("me", 1)
	awaitBegin = t0.Add(5 * time.Second)
	slot0      = SlotName("db", 0)
	keeping    = "; keeping " + slot0 + ", so the rollout pauses until this request recovers, is skipped or is deleted"
)

func awaitConfig() AwaitConfig {
	return AwaitConfig{Promise: "db", Namespace: "slots", MinHealthy: 30 * time.Second, FailureThreshold: 3,
		ProgressDeadline: 10 * time.Minute, Wait: time.Minute, LeaseDuration: 10 * time.Minute}
}

// heldSlot is the start of a run whose request holds slot 0 in phase, for lease, renewed at renewed.
func heldSlot(phase string, lease time.Duration, renewed time.Time) AwaitStart {
	l := awaitSlotLease(&awaitMe, renewed, phase)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(lease / time.Second))
	return AwaitStart{Request: awaitMe, View: NewView("db", 1, []*leaseT{l}), Target: "v2",
		Status: rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Slot: slot0, Since: t0}}
}

func awaitSlotLease(holder *Request, renewed time.Time, phase string) *leaseT {
	return lease(slot0, RoleSlot, holder, t0, renewed, map[string]string{AnnotationVersion: "v2", AnnotationPhase: phase})
}

// holding is the usual start: slot 0 held, Upgrading, with a 10m lease renewed at t0.
var holding = heldSlot(PhaseUpgrading, 10*time.Minute, t0)

// unheld is a start whose request holds no slot, with status st and slot 0 held by another.
func unheld(st rollout.Status) AwaitStart {
	other := request("other", 1)
	return AwaitStart{Request: awaitMe, View: NewView("db", 1, []*leaseT{awaitSlotLease(&other, t0, PhaseUpgrading)}), Target: "v2", Status: st}
}

// lostSlot: acquire took slot 0 for v2 at t0, and another request holds it now.
var lostSlot = unheld(rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Slot: slot0, Since: t0})

// Readings of the live request: one record of its own, stamped for v2, run at t0+run.
func reading(state string, run time.Duration) AwaitEvent {
	details := health.Stamp{Promise: "db", RequestUID: string(awaitMe.UID), Version: "v2", VersionProven: true}.Apply(nil)
	return AwaitEvent{On: OnReading, Live: rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2"},
		Health: health.Status{Records: []health.Record{{Source: "default/me", State: state, LastRun: t0.Add(run), Details: details}}}}
}

func healthy(run time.Duration) AwaitEvent   { return reading(health.StateHealthy, run) }
func unhealthy(run time.Duration) AwaitEvent { return reading(health.StateUnhealthy, run) }

func skippedReading() AwaitEvent {
	ev := healthy(10 * time.Second)
	ev.Live.Phase = rollout.PhaseSkipped
	return ev
}

var (
	tick = AwaitEvent{On: OnTick}
	done = AwaitEvent{On: OnDone}
)

func lost(why string) AwaitEvent { return AwaitEvent{On: OnLost, Why: why} }

func refreshed(phase string) AwaitEvent {
	return AwaitEvent{On: OnRefreshed, Live: rollout.Status{Phase: phase, Version: "v2"}}
}

const (
	good       = "healthy, 1 fresh record(s)"
	soaking    = "say healthy for 0s of 30s: " + good
	soaked     = "say healthy for 30s: " + good
	bad        = "default/me is unhealthy"
	notHeld    = "not held"
	lostNotice = notHeld + ": its lease ran out or it was skipped, so another request may have upgraded beside it; verifying without a slot"
	skipStop   = "say default/me: its upgrade to v2 was skipped by an operator: no longer verifying it"
)

// render writes actions as lines, times as offsets from t0.
func render(acts []AwaitAction) []string {
	status := func(s rollout.Status) string {
		out := s.Phase + " since " + s.Since.Sub(t0).String()
		if s.Slot != "" {
			out += " " + s.Slot
		}
		if s.Failures > 0 {
			out += fmt.Sprintf(" failures=%d", s.Failures)
		}
		return out + ": " + s.Message
	}
	var out []string
	for _, a := range acts {
		switch a.Do {
		case DoSay:
			out = append(out, "say "+a.Line)
		case DoWarn, DoNote:
			out = append(out, map[AwaitDo]string{DoWarn: "warn ", DoNote: "note "}[a.Do]+a.Reason+": "+a.Line)
		case DoPublish:
			out = append(out, "publish "+status(a.Status))
		case DoJudgeGates:
			out = append(out, "gates "+a.Status.Phase)
		case DoRenew, DoRelease:
			out = append(out, map[AwaitDo]string{DoRenew: "renew ", DoRelease: "release "}[a.Do]+a.Slot)
		case DoMarkFailed:
			out = append(out, "mark failed "+a.Slot+": "+a.Line)
		case DoRefresh:
			out = append(out, "refresh")
		case DoHandBack:
			out = append(out, "hand back "+status(a.Status)+" (retry: "+a.Line+")")
		case DoFinish:
			out = append(out, "finish "+status(a.Status))
		case DoStop:
			out = append(out, "stop")
		}
	}
	return out
}

func TestBeginAwait(t *testing.T) {
	verifying := "say default/me: verifying v2 (holding " + slot0 + "): fresh since 2026-11-22T12:00:00Z, soak 30s"
	tests := []struct {
		name    string
		start   AwaitStart
		cfg     func(*AwaitConfig)
		want    []string
		next    time.Time
		wantErr string
	}{
		{name: "holding its slot: verify from when acquire took it; first due is the hand-back", start: holding,
			want: []string{verifying}, next: awaitBegin.Add(time.Minute)},
		{name: "no hand-back without --wait: first due is a renewal, at a third of the slot's lease", start: holding,
			cfg: func(c *AwaitConfig) { c.Wait = 0 }, want: []string{verifying}, next: awaitBegin.Add(200 * time.Second)},
		{name: "a slot renewed more than a third of its lease ago is renewed at once",
			start: heldSlot(PhaseUpgrading, time.Minute, t0.Add(-16*time.Second)),
			want:  []string{verifying, "renew " + slot0}, next: awaitBegin.Add(20 * time.Second)},
		{name: "a slot renewed exactly a third of its lease ago is not",
			start: heldSlot(PhaseUpgrading, time.Minute, t0.Add(-15*time.Second)),
			want:  []string{verifying}, next: awaitBegin.Add(20 * time.Second)},
		{name: "a Lease without a duration is renewed at every start, and paced by the flag",
			start: heldSlot(PhaseUpgrading, 0, t0), cfg: func(c *AwaitConfig) { c.Wait = 0 },
			want: []string{verifying, "renew " + slot0}, next: awaitBegin.Add(200 * time.Second)},
		{name: "holding no slot: already upgraded, nothing to do", start: unheld(rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v2"}),
			want: []string{"say default/me is already upgraded to v2", "stop"}},
		{name: "holding no slot: skipped by an operator, nothing to verify", start: unheld(rollout.Status{Phase: rollout.PhaseSkipped, Version: "v2", Slot: slot0}),
			want: []string{"say default/me: its upgrade to v2 was skipped by an operator: nothing to verify", "stop"}},
		{name: "a first install is verified from when it passed acquire",
			start: unheld(rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Since: t0.Add(-time.Minute)}),
			want:  []string{"say default/me: verifying v2 (holding no slot): fresh since 2026-11-22T11:59:00Z, soak 30s"},
			next:  awaitBegin.Add(time.Minute)},
		{name: "a first install with no start on record is verified from this run's",
			start: unheld(rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2"}), cfg: func(c *AwaitConfig) { c.Wait = 0 },
			want: []string{"say default/me: verifying v2 (holding no slot): fresh since 2026-11-22T12:00:05Z, soak 30s"},
			next: awaitBegin.Add(10 * time.Minute)}, // the progress deadline
		{name: "its slot was taken meanwhile: warn, and verify without it", start: lostSlot,
			want: []string{
				"say WARNING: default/me no longer holds " + slot0 + ", which acquire took for v2: its lease ran out or it was skipped, " +
					"so another request may have upgraded beside it; verifying without a slot",
				"warn SlotLost: default/me no longer holds " + slot0 + ", which acquire took for v2: its lease ran out or it was skipped, " +
					"so another request may have upgraded beside it; verifying without a slot",
				"say default/me: verifying v2 (holding no slot): fresh since 2026-11-22T12:00:00Z, soak 30s"},
			next: awaitBegin.Add(time.Minute)},
		{name: "its slot has no Lease: the stages disagree on the namespace",
			start:   AwaitStart{Request: awaitMe, Target: "v2", Status: rollout.Status{Phase: rollout.PhaseUpgrading, Version: "v2", Slot: slot0}},
			wantErr: "default/me: acquire took " + slot0 + " for v2, but there is no such Lease in slots: acquire and await must share --slot-namespace"},
		{name: "acquire never took a slot", start: unheld(rollout.Status{Phase: rollout.PhaseWaiting, Version: "v2"}),
			wantErr: "default/me holds no slot for v2: acquire never took one (its status says Waiting for v2); acquire and await must share " +
				"--slot-namespace, and acquire's --wait must be 0 on a Kratix without workflow-control"},
		{name: "nothing of the turnstile", start: unheld(rollout.Status{}), wantErr: "(its status says nothing of the turnstile)"},
		{name: "a status for no version", start: unheld(rollout.Status{Phase: rollout.PhaseUpgrading}),
			wantErr: "(its status says Upgrading for no version)"},
		{name: "another version's status", start: unheld(rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v1"}),
			wantErr: "(its status says Upgraded for v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := awaitConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			a, acts, err := BeginAwait(cfg, tt.start, awaitBegin)
			if tt.wantErr != "" || err != nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if got := render(acts); !slices.Equal(got, tt.want) {
				t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if len(acts) > 0 && acts[len(acts)-1].Do == DoStop {
				return
			}
			if got := a.Next(); !got.Equal(tt.next) {
				t.Errorf("next = %s, want %s", got.Sub(t0), tt.next.Sub(t0))
			}
		})
	}
}

func TestAwaitRenewsOnTheSlotsAttempt(t *testing.T) {
	_, acts, err := BeginAwait(awaitConfig(), heldSlot(PhaseUpgrading, time.Minute, t0.Add(-time.Minute)), awaitBegin)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := acts[len(acts)-1], (AwaitAction{Do: DoRenew, Slot: slot0, Attempt: Attempt{Version: "v2", Began: t0}}); got != want {
		t.Errorf("renewal = %+v, want %+v", got, want)
	}
}
