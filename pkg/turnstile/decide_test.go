package turnstile

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// leasesClient satisfies Config.Leases for validation tests, which never call it.
var leasesClient = fake.NewClientset().CoordinationV1()

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func request(name string, wave int) Request {
	return Request{GroupVersionResource: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "databases"},
		Kind: "Database", Namespace: "default", Name: name, UID: types.UID("uid-" + name), Wave: wave}
}

func lease(name, role string, holder *Request, acquired, renewed time.Time, annotations map[string]string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelRole: role}, Annotations: map[string]string{}}}
	for k, v := range annotations {
		l.Annotations[k] = v
	}
	l.Spec.LeaseDurationSeconds = ptr.To(int32(60))
	if holder != nil {
		l.Spec.HolderIdentity = ptr.To(holder.Identity())
		l.Spec.AcquireTime = &metav1.MicroTime{Time: acquired}
		l.Spec.RenewTime = &metav1.MicroTime{Time: renewed}
		l.Annotations[AnnotationUID] = string(holder.UID)
		l.Annotations[AnnotationRequest] = holder.Key()
		l.Annotations[AnnotationWave] = strconv.Itoa(holder.Wave)
	}
	return l
}

func slotLease(i int, holder *Request, renewed time.Time, phase string) *coordinationv1.Lease {
	a := map[string]string{}
	if phase != "" {
		a[AnnotationPhase] = phase
	}
	return lease(SlotName("db", i), RoleSlot, holder, renewed, renewed, a)
}

// released is a free slot last released by a request of wave, upgrading to version, at at.
func released(i, wave int, version string, at time.Time) *coordinationv1.Lease {
	return lease(SlotName("db", i), RoleSlot, nil, at, at, map[string]string{AnnotationReleasedWave: strconv.Itoa(wave),
		AnnotationReleasedVersion: version, AnnotationReleasedAt: at.Format(time.RFC3339Nano)})
}

// waveSlots is a rollout record capping waves, as --wave-slots writes it.
func waveSlots(caps string) *coordinationv1.Lease {
	return lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationWaveSlots: caps})
}

func ticketLease(r Request, arrived, renewed time.Time) *coordinationv1.Lease {
	return lease(TicketName("db", r), RoleTicket, &r, arrived, renewed, nil)
}

// calendar is a Promise's calendar of one allow and one deny window ("" for none).
func calendar(t *testing.T, allow, deny string) window.Calendar {
	t.Helper()
	var c window.Calendar
	for _, w := range []struct {
		spec string
		into *[]window.Window
	}{{allow, &c.Allow}, {deny, &c.Deny}} {
		if w.spec == "" {
			continue
		}
		parsed, err := window.Parse(w.spec)
		if err != nil {
			t.Fatal(err)
		}
		*w.into = append(*w.into, parsed)
	}
	return c
}

func TestDecide(t *testing.T) {
	me, a, b, c := request("me", 1), request("a", 1), request("b", 1), request("c", 1)
	canary := request("me", 0)
	tests := []struct {
		name      string
		slots     int
		me        Request
		leases    []*coordinationv1.Lease
		holders   map[types.UID]HolderStatus
		target    string
		want      action
		wantSlot  int
		wantPos   int
		recheck   time.Time
		paused    bool
		unmarked  int
		expected  []Expected
		grace     time.Duration
		following bool
		calendar  window.Calendar
		waveSoak  time.Duration
	}{
		{name: "no leases yet: take slot 0", slots: 1, me: me, want: actTake, wantSlot: 0},
		{name: "holding a slot: re-enter it", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &me, t0, PhaseUpgrading)}, want: actReenter, wantSlot: 0},
		{name: "held by another: wait until it would expire", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0, PhaseUpgrading)}, want: actWait, recheck: t0.Add(time.Minute)},
		{name: "held by another that stopped renewing: take it", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)}, want: actTake},
		{name: "followed holders: an expired slot whose holder was not heard from yet is not free", slots: 1, me: me, following: true,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)}, want: actWait},
		{name: "followed holders: an expired slot whose holder is well is free", slots: 1, me: me, following: true,
			leases:  []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)},
			holders: map[types.UID]HolderStatus{a.UID: {}}, want: actTake},
		{name: "a failed upgrade keeps its slot past expiry", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseFailed)}, want: actWait},
		{name: "a deleted holder frees its slot at once", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{slotLease(0, &a, t0, PhaseUpgrading)},
			holders: map[types.UID]HolderStatus{a.UID: {Gone: true}}, want: actTake},
		{name: "a holder whose workflow failed keeps its slot, to be marked", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)},
			holders: map[types.UID]HolderStatus{a.UID: {WorkflowFailed: "boom", FailedAt: t0}}, want: actWait, unmarked: 1},
		{name: "a workflow failure from an earlier attempt does not hold the slot", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)},
			holders: map[types.UID]HolderStatus{a.UID: {WorkflowFailed: "boom", FailedAt: t0.Add(-time.Hour)}}, want: actTake},
		{name: "first come, first served: an earlier waiter goes first", slots: 1, me: me,
			leases: []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Second), t0)}, want: actWait, wantPos: 1,
			recheck: t0.Add(time.Minute)}, // when the ticket ahead would go stale
		{name: "my own earlier ticket keeps my place", slots: 1, me: me,
			leases: []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Second), t0), ticketLease(me, t0.Add(-2*time.Second), t0)},
			want:   actTake},
		{name: "N=3: the second in line takes the second free slot", slots: 3, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &b, t0, PhaseUpgrading), ticketLease(a, t0.Add(-2*time.Second), t0),
				ticketLease(me, t0.Add(-time.Second), t0), ticketLease(c, t0, t0)},
			want: actTake, wantSlot: 2, wantPos: 1, recheck: t0.Add(time.Minute)},
		{name: "a lower wave outranks arrival", slots: 1, me: canary,
			leases: []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Hour), t0)}, want: actTake},
		{name: "the ticket of a request deleted keeps no place, at once", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Hour), t0)},
			holders: map[types.UID]HolderStatus{a.UID: {Gone: true}}, want: actTake},
		{name: "the ticket of a request being deleted keeps no place", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Hour), t0)},
			holders: map[types.UID]HolderStatus{a.UID: {Deleting: true}}, want: actTake},
		{name: "the ticket of a request that is well keeps its place", slots: 1, me: me,
			leases:  []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Hour), t0)},
			holders: map[types.UID]HolderStatus{a.UID: {}}, want: actWait, wantPos: 1, recheck: t0.Add(time.Minute)},
		{name: "a stale ticket loses its place", slots: 1, me: me,
			leases: []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Hour), t0.Add(-2*time.Minute))}, want: actTake},
		{name: "slots beyond N are never granted", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0, PhaseUpgrading), slotLease(1, nil, t0, "")},
			want:   actWait, recheck: t0.Add(time.Minute)},
		{name: "a paused rollout grants nothing", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationPaused: "true"})},
			want:   actWait, paused: true},
		{name: "a paused rollout still lets a holder re-enter", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &me, t0, PhaseUpgrading),
				lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationPaused: "true"})},
			want: actReenter},
		{name: "a platform-wide hold grants nothing", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(HoldName, RoleHold, nil, t0, t0, map[string]string{AnnotationPaused: "true", AnnotationPauseReason: "incident 42"})},
			want:   actWait, paused: true},
		{name: "a platform-wide hold still lets a holder re-enter", slots: 1, me: me,
			leases: []*coordinationv1.Lease{slotLease(0, &me, t0, PhaseUpgrading), lease(HoldName, RoleHold, nil, t0, t0, map[string]string{AnnotationPaused: "true"})},
			want:   actReenter},
		{name: "a lifted platform-wide hold holds nothing back", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(HoldName, RoleHold, nil, t0, t0, nil)}, want: actTake},
		{name: "outside the Promise's allow window: wait until it opens", slots: 1, me: me, calendar: calendar(t, "0 2 * * * for 1h", ""),
			want: actWait, paused: true, recheck: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)},
		{name: "inside the Promise's allow window: take", slots: 1, me: me, calendar: calendar(t, "0 11 * * * for 2h", ""), want: actTake},
		{name: "the operator's freeze on the rollout record wins over the allow window", slots: 1, me: me, calendar: calendar(t, "0 11 * * * for 2h", ""),
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationDenyWindows: "30 11 * * * for 1h"})},
			want:   actWait, paused: true, recheck: time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)},
		{name: "the operator's allow window narrows the Promise's, never widens it", slots: 1, me: me, calendar: calendar(t, "0 11 * * * for 2h", ""),
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAllowWindows: "30 12 * * * for 1h"})},
			want:   actWait, paused: true, recheck: time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)},
		{name: "allow windows that never meet never open", slots: 1, me: me, calendar: calendar(t, "0 11 * * * for 2h", ""),
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAllowWindows: "0 20 * * * for 1h"})},
			want:   actWait, paused: true},
		{name: "an unreadable window on the record holds the rollout", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationDenyWindows: "whenever"})},
			want:   actWait, paused: true},
		{name: "a window never cuts short an upgrade under way: the holder re-enters", slots: 1, me: me, calendar: calendar(t, "", "0 0 * * * for 24h"),
			leases: []*coordinationv1.Lease{slotLease(0, &me, t0, PhaseUpgrading)}, want: actReenter},
		{name: "with a wave soak, a later wave waits while an earlier one upgrades, slots free or not", slots: 3, me: request("me", 2), waveSoak: 10 * time.Minute,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0, PhaseUpgrading)}, want: actWait, paused: true, recheck: t0.Add(time.Minute)},
		{name: "with a wave soak, a later wave waits while an earlier one has requests in line", slots: 3, me: request("me", 2), waveSoak: 10 * time.Minute,
			leases: []*coordinationv1.Lease{ticketLease(a, t0.Add(-time.Second), t0)}, want: actWait, paused: true, wantPos: 1, recheck: t0.Add(time.Minute)},
		{name: "with a wave soak, a later wave waits until the earlier wave's last release is that old", slots: 1, me: request("me", 2), waveSoak: 10 * time.Minute, target: "v2",
			leases: []*coordinationv1.Lease{released(0, 1, "v2", t0.Add(-4*time.Minute))}, want: actWait, paused: true, recheck: t0.Add(6 * time.Minute)},
		{name: "with a wave soak, an earlier wave's holder gone quiet past its lease holds nothing back", slots: 1, me: request("me", 2), waveSoak: 10 * time.Minute,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)}, want: actTake},
		{name: "with a wave soak, an earlier wave's failed upgrade holds the next wave", slots: 2, me: request("me", 2), waveSoak: 10 * time.Minute,
			leases: []*coordinationv1.Lease{slotLease(0, &a, t0, PhaseFailed)}, want: actWait, paused: true},
		{name: "a wave soak that has passed lets the next wave start", slots: 1, me: request("me", 2), waveSoak: 10 * time.Minute, target: "v2",
			leases: []*coordinationv1.Lease{released(0, 1, "v2", t0.Add(-11*time.Minute))}, want: actTake},
		{name: "a release of an earlier rollout does not soak this one", slots: 1, me: request("me", 2), waveSoak: 10 * time.Minute, target: "v2",
			leases: []*coordinationv1.Lease{released(0, 1, "v1", t0.Add(-time.Minute))}, want: actTake},
		{name: "a wave does not soak after itself", slots: 1, me: me, waveSoak: 10 * time.Minute, target: "v2",
			leases: []*coordinationv1.Lease{released(0, 1, "v2", t0.Add(-time.Minute))}, want: actTake},
		{name: "wave slots: the canary wave goes one at a time", slots: 3, me: canary,
			leases: []*coordinationv1.Lease{waveSlots("0=1"), slotLease(0, ptr.To(request("a0", 0)), t0, PhaseUpgrading)},
			want:   actWait, recheck: t0.Add(time.Minute)},
		{name: "wave slots: no later wave starts beside a capped wave still upgrading", slots: 3, me: me,
			leases: []*coordinationv1.Lease{waveSlots("0=1"), slotLease(0, ptr.To(request("a0", 0)), t0, PhaseUpgrading)},
			want:   actWait, recheck: t0.Add(time.Minute)},
		{name: "wave slots: once the capped wave is done, later waves go wider", slots: 3, me: me,
			leases: []*coordinationv1.Lease{waveSlots("0=1"), slotLease(0, &b, t0, PhaseUpgrading)},
			want:   actTake, wantSlot: 1, recheck: t0.Add(time.Minute)},
		{name: "wave slots: a later wave is held to the cap of an earlier wave still in line", slots: 3, me: request("me", 2),
			leases: []*coordinationv1.Lease{waveSlots("1=1"), slotLease(0, &b, t0, PhaseUpgrading), ticketLease(a, t0.Add(-time.Second), t0)},
			want:   actWait, wantPos: 1, recheck: t0.Add(time.Minute)},
		{name: "wave slots: a slot beyond the cap still shows its holder and is not taken", slots: 3, me: canary,
			leases: []*coordinationv1.Lease{waveSlots("0=1"), slotLease(0, &a, t0, PhaseUpgrading), slotLease(1, nil, t0, "")},
			want:   actWait, recheck: t0.Add(time.Minute)},
		{name: "fewer slots recorded than in use: an upgrade beyond them finishes before anyone takes one", slots: 2, me: me,
			leases: []*coordinationv1.Lease{slotLease(3, &a, t0, PhaseUpgrading)}, want: actWait, paused: true, recheck: t0.Add(time.Minute)},
		{name: "wave slots: a later wave's upgrade begun before the canary arrived finishes first", slots: 3, me: canary,
			leases: []*coordinationv1.Lease{waveSlots("0=1"), slotLease(2, &b, t0, PhaseUpgrading)}, want: actWait, paused: true, recheck: t0.Add(time.Minute)},
		{name: "a failed upgrade beyond the count in force holds the rollout until skipped", slots: 2, me: me,
			leases: []*coordinationv1.Lease{slotLease(3, &a, t0.Add(-2*time.Minute), PhaseFailed)}, want: actWait, paused: true},
		{name: "an upgrade beyond the count whose workflow failed is marked, and holds the rollout", slots: 2, me: me,
			leases:  []*coordinationv1.Lease{slotLease(3, &a, t0.Add(-2*time.Minute), PhaseUpgrading)},
			holders: map[types.UID]HolderStatus{a.UID: {WorkflowFailed: "boom", FailedAt: t0}}, want: actWait, paused: true, unmarked: 1},
		{name: "an unreadable recorded count holds the rollout", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationSlots: "many"})},
			want:   actWait, paused: true},
		{name: "an unreadable recorded cap holds the rollout", slots: 1, me: me,
			leases: []*coordinationv1.Lease{waveSlots("0=none")}, want: actWait, paused: true},
		{name: "an aborted version grants nothing", slots: 1, me: me, target: "v2",
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAborted: "v2"})},
			want:   actWait, paused: true},
		{name: "a wave waiting for approval grants nothing", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationApprovalWaves: "1"})},
			want:   actWait, paused: true},
		{name: "a wave behind one waiting for approval waits too, even with slots free", slots: 3, me: request("me", 2),
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationApprovalWaves: "1"})},
			want:   actWait, paused: true},
		{name: "tickets of an aborted version keep no place", slots: 1, me: me, target: "v1",
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAborted: "v2"}),
				lease(TicketName("db", a), RoleTicket, &a, t0.Add(-time.Hour), t0, map[string]string{AnnotationVersion: "v2"})},
			want: actTake},
		{name: "an approved wave goes", slots: 1, me: me,
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationApprovalWaves: "1,2", AnnotationApproved: "1"})},
			want:   actTake},
		{name: "the canary not yet arrived holds back a later wave, within the grace", slots: 1, me: me, target: "v2",
			leases:   []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Add(-time.Minute).Format(time.RFC3339)})},
			expected: []Expected{{Request: "default/shop", Wave: 0}}, grace: 2 * time.Minute,
			want: actWait, paused: true, recheck: t0.Add(time.Minute)},
		{name: "past the grace, a missing canary holds nothing back", slots: 1, me: me, target: "v2",
			leases:   []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Add(-3 * time.Minute).Format(time.RFC3339)})},
			expected: []Expected{{Request: "default/shop", Wave: 0}}, grace: 2 * time.Minute, want: actTake},
		{name: "grace 0 orders only the waiters present", slots: 1, me: me, target: "v2",
			leases:   []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Format(time.RFC3339)})},
			expected: []Expected{{Request: "default/shop", Wave: 0}}, want: actTake},
		{name: "a request of the same wave not yet arrived holds nothing back", slots: 1, me: me, target: "v2",
			leases:   []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Format(time.RFC3339)})},
			expected: []Expected{{Request: "default/blog", Wave: 1}}, grace: 2 * time.Minute, want: actTake},
		{name: "the grace does not hold back a holder re-entering", slots: 1, me: me, target: "v2",
			leases: []*coordinationv1.Lease{slotLease(0, &me, t0, PhaseUpgrading),
				lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Format(time.RFC3339)})},
			expected: []Expected{{Request: "default/shop", Wave: 0}}, grace: 2 * time.Minute, want: actReenter},
		{name: "an abort of another version does not hold back this one", slots: 1, me: me, target: "v3",
			leases: []*coordinationv1.Lease{lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAborted: "v2"})},
			want:   actTake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(decideInput{promise: "db", view: NewView("db", tt.slots, tt.leases), me: tt.me, target: tt.target,
				slots: tt.slots, now: t0, holders: tt.holders, expected: tt.expected, grace: tt.grace, following: tt.following, calendar: tt.calendar, waveSoak: tt.waveSoak})
			if d.action != tt.want {
				t.Fatalf("action = %v, want %v (wait: %+v)", d.action, tt.want, d.wait)
			}
			if tt.want != actWait && d.slot.Index != tt.wantSlot {
				t.Errorf("slot = %d, want %d", d.slot.Index, tt.wantSlot)
			}
			if tt.want != actReenter && d.wait.Position != tt.wantPos {
				t.Errorf("position = %d, want %d", d.wait.Position, tt.wantPos)
			}
			if !d.recheck.Equal(tt.recheck) {
				t.Errorf("recheck = %v, want %v", d.recheck, tt.recheck)
			}
			if d.wait.Blocked != tt.paused {
				t.Errorf("paused = %v, want %v", d.wait.Blocked, tt.paused)
			}
			if len(d.unmarked) != tt.unmarked {
				t.Errorf("unmarked = %d, want %d", len(d.unmarked), tt.unmarked)
			}
		})
	}
}

func TestWaitMessage(t *testing.T) {
	held := Slot{Holder: "x", Request: "default/db-2"}
	failed := Slot{Holder: "y", Request: "default/db-3", Phase: PhaseFailed}
	tests := []struct {
		name string
		wait Wait
		want string
	}{
		{"next in line", Wait{Position: 0, Holders: []Slot{held}}, "waiting for a rollout slot: 1st in queue; slot held by default/db-2"},
		{"third", Wait{Position: 2, Holders: []Slot{held}}, "waiting for a rollout slot: 3rd in queue; slot held by default/db-2"},
		{"several holders", Wait{Position: 11, Holders: []Slot{held, failed}},
			"waiting for a rollout slot: 12th in queue; slots held by default/db-2, default/db-3 (upgrade failed)"},
		{"paused", Wait{Blocked: true, Reason: "rollout paused: by alice"}, "waiting: rollout paused: by alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.wait.Message(); got != tt.want {
				t.Errorf("Message() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOrdinal(t *testing.T) {
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 102: "102nd", 111: "111th"} {
		if got := Ordinal(n); got != want {
			t.Errorf("Ordinal(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{Promise: "db"}, "a Leases client is required"},
		{"bad promise", Config{Leases: leasesClient, Promise: "Not_A_Name"}, `promise name "Not_A_Name"`},
		{"bad namespace", Config{Leases: leasesClient, Promise: "db", Namespace: "-x"}, `slot namespace "-x"`},
		{"N < 1", Config{Leases: leasesClient, Promise: "db", Slots: -1}, "slots must be at least 1, got -1"},
		{"short lease", Config{Leases: leasesClient, Promise: "db", LeaseDuration: 14 * time.Second}, "lease duration must be from 15s to 24h0m0s, got 14s"},
		{"long lease", Config{Leases: leasesClient, Promise: "db", LeaseDuration: 25 * time.Hour}, "lease duration must be from 15s to 24h0m0s, got 25h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestArrived(t *testing.T) {
	shop, blog := request("shop", 0), request("blog", 0)
	ticket := func(r Request, version string) *coordinationv1.Lease {
		return lease(TicketName("db", r), RoleTicket, &r, t0, t0, map[string]string{AnnotationVersion: version})
	}
	held := func(r Request, version string) *coordinationv1.Lease {
		return lease(SlotName("db", 0), RoleSlot, &r, t0, t0, map[string]string{AnnotationVersion: version})
	}
	expected := []Expected{{Request: "default/shop"}, {Request: "default/blog"}}
	cases := []struct {
		name   string
		leases []*coordinationv1.Lease
		want   []string
	}{
		{"nobody here", nil, []string{"default/shop", "default/blog"}},
		{"queued for the target", []*coordinationv1.Lease{ticket(shop, "v2")}, []string{"default/blog"}},
		{"queued for an older version: not yet here", []*coordinationv1.Lease{ticket(shop, "v1")}, []string{"default/shop", "default/blog"}},
		{"holding a slot for the target", []*coordinationv1.Lease{held(blog, "v2")}, []string{"default/shop"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, e := range arrived(slices.Clone(expected), NewView("db", 1, c.leases), "v2") {
				got = append(got, e.Request)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("still expected = %v, want %v", got, c.want)
			}
		})
	}
}

func TestWaitWorth(t *testing.T) {
	a, b := request("a", 1), request("b", 1)
	upgrading := Slot{Request: a.Key(), Phase: PhaseUpgrading}
	failed := Slot{Request: a.Key(), Phase: PhaseFailed}
	tests := []struct {
		name       string
		last, next Wait
		want       bool
	}{
		{"another handoff, same power of two (6th to 5th)", Wait{Position: 5, Holders: []Slot{upgrading}}, Wait{Position: 4, Holders: []Slot{{Request: b.Key()}}}, false},
		{"crossing a power of two (5th to 4th)", Wait{Position: 4}, Wait{Position: 3}, true},
		{"crossing to first", Wait{Position: 1}, Wait{Position: 0}, true},
		{"second to second", Wait{Position: 1}, Wait{Position: 1}, false},
		{"back a little in a burst of arrivals (5th to 9th)", Wait{Position: 4}, Wait{Position: 8}, false},
		{"back more than twice as far (5th to 17th)", Wait{Position: 4}, Wait{Position: 16}, true},
		{"paused", Wait{Position: 3}, Wait{Position: 3, Blocked: true, Reason: "rollout paused"}, true},
		{"another reason", Wait{Blocked: true, Reason: "rollout paused: a"}, Wait{Blocked: true, Reason: "rollout paused: b"}, true},
		{"a holder's upgrade failed", Wait{Position: 9, Holders: []Slot{upgrading}}, Wait{Position: 9, Holders: []Slot{failed}}, true},
		{"and recovered", Wait{Position: 9, Holders: []Slot{failed}}, Wait{Position: 9, Holders: []Slot{upgrading}}, true},
	}
	for _, tt := range tests {
		if got := tt.next.Worth(tt.last); got != tt.want {
			t.Errorf("%s: Worth = %v, want %v", tt.name, got, tt.want)
		}
	}
	// From the 1000th place to the first, one handoff at a time: about log2(1000) publishes.
	last, publishes := Wait{Position: 999}, 1
	for p := 998; p >= 0; p-- {
		if w := (Wait{Position: p}); w.Worth(last) {
			last, publishes = w, publishes+1
		}
	}
	if publishes > 11 {
		t.Errorf("a waiter from the 1000th place publishes %d times, want at most log2(1000)+1", publishes)
	}
}

func TestFront(t *testing.T) {
	me, gone, old, c, d := request("me", 1), request("gone", 1), request("old", 1), request("c", 1), request("d", 1)
	leases := []*coordinationv1.Lease{
		lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAborted: "v1"}),
		ticketLease(gone, t0.Add(-4*time.Second), t0),
		lease(TicketName("db", old), RoleTicket, &old, t0.Add(-3*time.Second), t0, map[string]string{AnnotationVersion: "v1"}),
		ticketLease(c, t0.Add(-2*time.Second), t0), ticketLease(d, t0.Add(-time.Second), t0), ticketLease(me, t0, t0),
	}
	view := NewView("db", 1, leases)
	var got []string
	for _, tk := range view.Front(t0, me, 1, map[types.UID]HolderStatus{gone.UID: {Gone: true}}) {
		got = append(got, tk.Request)
	}
	// gone and old will not be served, so the one slot's worth of front reaches past them to c.
	if want := []string{gone.Key(), old.Key(), c.Key()}; !slices.Equal(got, want) {
		t.Errorf("Front = %v, want %v", got, want)
	}
}

func TestOpenSlots(t *testing.T) {
	a := request("a", 1)
	held, released := slotLease(0, &a, t0, PhaseUpgrading), slotLease(0, nil, t0, "")
	released.ResourceVersion = "7"
	expired := slotLease(0, &a, t0.Add(-2*time.Minute), PhaseUpgrading)
	open := openSlots{}
	steps := []struct {
		name   string
		leases []*coordinationv1.Lease
		at     time.Time
		want   time.Time
	}{
		{"no slot Lease yet: open", nil, t0, t0},
		{"still open a second later", nil, t0.Add(time.Second), t0},
		{"taken", []*coordinationv1.Lease{held}, t0.Add(2 * time.Second), time.Time{}},
		{"released: a new opening", []*coordinationv1.Lease{released}, t0.Add(3 * time.Second), t0.Add(3 * time.Second)},
		{"expired: another", []*coordinationv1.Lease{expired}, t0.Add(4 * time.Second), t0.Add(4 * time.Second)},
	}
	for _, st := range steps {
		if got := open.see(NewView("db", 1, st.leases), st.at, 1); !got.Equal(st.want) {
			t.Errorf("%s: open since %v, want %v", st.name, got, st.want)
		}
	}
}
