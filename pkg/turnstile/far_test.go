package turnstile

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestMarker(t *testing.T) {
	for _, tc := range []struct {
		ahead, near int
		want        int
		ok          bool
	}{
		{ahead: 0, near: 9, ok: false},
		{ahead: 9, near: 9, ok: false},
		{ahead: 10, near: 9, want: 0, ok: true},    // its leaving leaves nine in front
		{ahead: 19, near: 9, want: 9, ok: true},    // half is nine
		{ahead: 20, near: 9, want: 9, ok: true},    // half is ten
		{ahead: 999, near: 9, want: 499, ok: true}, // half of 999 is 499 left in front
		{ahead: 30, near: 20, want: 9, ok: true},   // ten slots: never nearer than twenty
	} {
		t.Run(fmt.Sprintf("%d ahead, near %d", tc.ahead, tc.near), func(t *testing.T) {
			got, ok := marker(tc.ahead, tc.near)
			if ok != tc.ok || ok && got != tc.want {
				t.Errorf("marker(%d, %d) = %d, %v; want %d, %v", tc.ahead, tc.near, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNearZone(t *testing.T) {
	for n, want := range map[int]int{1: 9, 8: 16, 10: 20, 100: 200} {
		if got := nearZone(n); got != want {
			t.Errorf("nearZone(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestAhead(t *testing.T) {
	a, b, c, me, holder := request("a", 1), request("b", 1), request("c", 1), request("me", 1), request("holder", 1)
	canary := request("canary", 0)
	for _, tc := range []struct {
		name   string
		leases []*coordinationv1.Lease
		want   []string
	}{
		{"not queued", []*coordinationv1.Lease{ticketLease(a, t0, t0)}, nil},
		{"first", []*coordinationv1.Lease{ticketLease(me, t0, t0), ticketLease(a, t0.Add(time.Second), t0)}, []string{}},
		{"by arrival, a holder's ticket left out", []*coordinationv1.Lease{
			slotLease(0, &holder, t0, ""), ticketLease(holder, t0.Add(-time.Minute), t0),
			ticketLease(b, t0.Add(-time.Second), t0), ticketLease(a, t0.Add(-2*time.Second), t0),
			ticketLease(me, t0, t0), ticketLease(c, t0.Add(time.Second), t0)}, []string{"a", "b"}},
		{"a ticket of the aborted version left out", []*coordinationv1.Lease{
			lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationAborted: "v1"}),
			lease(TicketName("db", a), RoleTicket, &a, t0.Add(-2*time.Second), t0, map[string]string{AnnotationVersion: "v1"}),
			ticketLease(b, t0.Add(-time.Second), t0), ticketLease(me, t0, t0)}, []string{"b"}},
		{"an earlier wave first, an expired ticket left out", []*coordinationv1.Lease{
			ticketLease(a, t0.Add(-3*time.Minute), t0.Add(-2*time.Minute)),
			ticketLease(me, t0, t0), ticketLease(canary, t0.Add(time.Second), t0)}, []string{"canary"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ahead(NewView("db", 1, tc.leases), me, t0)
			if tc.want == nil {
				if got != nil {
					t.Errorf("ahead = %v, want nil (not queued)", got)
				}
				return
			}
			var names []string
			for _, tk := range got {
				names = append(names, tk.Request)
			}
			want := make([]string, 0, len(tc.want))
			for _, n := range tc.want {
				want = append(want, "default/"+n)
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("ahead = %v, want %v", names, want)
			}
		})
	}
}

func TestFarFrom(t *testing.T) {
	ts, err := New(Config{Leases: leasesClient, Promise: "db", LeaseDuration: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	me := request("me", 1)
	var leases []*coordinationv1.Lease
	for i := range 12 {
		r := request(fmt.Sprintf("r%02d", i), 1)
		leases = append(leases, ticketLease(r, t0.Add(time.Duration(i-20)*time.Second), t0))
	}
	mine := ticketFrom(ticketLease(me, t0, t0))
	mine.Version = "v2"
	// The rollout started a minute ago.
	record := lease(RolloutName("db"), RoleRollout, nil, t0, t0, map[string]string{AnnotationStarted: t0.Add(-time.Minute).Format(time.RFC3339)})
	view := NewView("db", 1, append(leases, ticketLease(me, t0, t0), record))
	window := t0.Add(10 * time.Minute) // when what blocks it lifts
	for _, tc := range []struct {
		name     string
		mine     *Ticket
		expected []Expected
		grace    time.Duration
		n        int
		blocked  bool
		far      bool
		refresh  time.Time
	}{
		{name: "twelve ahead of one slot", mine: &mine, n: 1, far: true, refresh: t0.Add(15 * time.Minute)},
		{name: "blocked until a window opens", mine: &mine, n: 1, blocked: true, far: true, refresh: window},
		{name: "twelve ahead of ten slots: near", mine: &mine, n: 10},
		{name: "an earlier wave expected", mine: &mine, n: 1, expected: []Expected{{Request: "default/canary", Wave: 0}}, grace: 5 * time.Minute},
		{name: "an earlier wave expected past the grace", mine: &mine, n: 1, expected: []Expected{{Request: "default/canary", Wave: 0}},
			grace: 30 * time.Second, far: true, refresh: t0.Add(15 * time.Minute)},
		{name: "no ticket written yet", n: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &acquiring{req: me, opts: AcquireOptions{Target: "v2", Grace: tc.grace}, mine: tc.mine, expected: tc.expected}
			f, ok := ts.farFrom(context.Background(), view, a, t0, tc.n, window, Wait{Position: 12, Blocked: tc.blocked})
			if ok != tc.far {
				t.Fatalf("far = %v, want %v", ok, tc.far)
			}
			// The ticket is renewed in place a third of the lease after its last renewal.
			if renewAt := t0.Add(5 * time.Minute); ok && (len(f.ahead) != 12 || f.near != nearZone(tc.n) || !f.refresh.Equal(tc.refresh) || !f.renewAt.Equal(renewAt)) {
				t.Errorf("far wait: %d ahead, near %d, refresh %s, renew %s; want 12, %d, %s, %s", len(f.ahead), f.near, f.refresh, f.renewAt, nearZone(tc.n), tc.refresh, renewAt)
			}
		})
	}
}

func TestOrderKey(t *testing.T) {
	early, late := t0, t0.Add(time.Microsecond)
	for _, tc := range []struct {
		name         string
		wave         int
		arrival      time.Time
		ok           bool
		beforeWave1s bool // served before a wave-1 ticket that arrived at t0
	}{
		{"wave 0 arriving later", 0, late.Add(time.Hour), true, true},
		{"wave 1, same microsecond", 1, early, true, false},
		{"wave 1, a microsecond later", 1, late, true, false},
		{"the last wave with a key", orderedWaves - 1, t0, true, false},
		{"a wave beyond", orderedWaves, t0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, ok := orderKey(tc.wave, tc.arrival)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			wave1, _ := orderKey(1, t0)
			if ok && (key < wave1) != tc.beforeWave1s {
				t.Errorf("key %d < wave 1's %d = %v, want %v", key, wave1, key < wave1, tc.beforeWave1s)
			}
		})
	}
}

// A waiter watches its first look, then what can be served before its ticket: the tickets with
// an order no greater than its own, and those without one.
func TestSelections(t *testing.T) {
	ts, err := New(Config{Leases: leasesClient, Promise: "db"})
	if err != nil {
		t.Fatal(err)
	}
	me := request("me", 1)
	mine := ticketFrom(ticketLease(me, t0, t0))
	mine.Version = "v2"
	late := mine
	late.Wave = orderedWaves
	key, _ := orderKey(1, t0)
	for _, tc := range []struct {
		name string
		mine *Ticket
		want []string
	}{
		{"first look", nil, []string{
			"turnstile.kratix.io/promise in (ALL,db),turnstile.kratix.io/role in (hold,rollout,slot)",
			"turnstile.kratix.io/promise in (ALL,db) metadata.name=" + TicketName("db", me)}},
		{"with a ticket", &mine, []string{
			"turnstile.kratix.io/promise in (ALL,db),turnstile.kratix.io/role in (hold,rollout,slot)",
			fmt.Sprintf("turnstile.kratix.io/order<%d,turnstile.kratix.io/promise=db,turnstile.kratix.io/role=ticket", key+1),
			"!turnstile.kratix.io/order,turnstile.kratix.io/promise=db,turnstile.kratix.io/role=ticket"}},
		{"of a wave beyond the keys", &late, []string{"turnstile.kratix.io/promise in (ALL,db)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &acquiring{req: me, opts: AcquireOptions{Target: "v2"}, mine: tc.mine}
			var got []string
			for _, o := range ts.selections(ts.watchFor(a)) {
				got = append(got, strings.TrimSpace(o.LabelSelector+" "+o.FieldSelector))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("selections =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestSelectorOfAnInvalidPromiseSelectsNothing(t *testing.T) {
	sel := Selector("not a label!")
	// As the apiserver gets it: the empty selector would select every Lease in the namespace.
	parsed, err := labels.Parse(sel.String())
	if err != nil || sel.String() == "" {
		t.Fatalf("Selector() = %q (%v), want a selector the apiserver can parse", sel.String(), err)
	}
	for _, set := range []labels.Set{
		{},
		{LabelManagedBy: ManagedBy, LabelPromise: "db", LabelRole: RoleSlot},
		{LabelManagedBy: ManagedBy, LabelPromise: AllPromises, LabelRole: RoleHold},
	} {
		if parsed.Matches(set) {
			t.Errorf("%q selects %v", sel.String(), set)
		}
	}
}
