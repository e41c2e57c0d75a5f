package turnstile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

type awaitStep struct {
	at   time.Duration // from t0
	ev   AwaitEvent
	want []string
}

func TestAwaitStep(t *testing.T) {
	pass := []string{"publish Upgraded since 40s: upgraded to v2: healthy for 30s: " + good, "gates Upgraded", "release " + slot0}
	released := []string{
		"say upgraded to v2: healthy for 30s: " + good + "; released " + slot0,
		"note Upgraded: upgraded to v2: healthy for 30s: " + good + "; released " + slot0,
		"finish Upgraded since 40s: upgraded to v2: healthy for 30s: " + good + "; released " + slot0}
	failThird := "upgrade to v2 failed: unhealthy 3 times in a row: " + bad
	unhealthyThrice := []awaitStep{
		{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
		{11 * time.Second, unhealthy(11 * time.Second), []string{"say " + bad + " (2 of 3 failures)"}},
		{12 * time.Second, unhealthy(12 * time.Second), []string{"say unhealthy 3 times in a row: " + bad, "mark failed " + slot0 + ": " + failThird}},
	}
	tests := []struct {
		name  string
		start AwaitStart
		cfg   func(*AwaitConfig)
		steps []awaitStep
		next  time.Duration // Next after the last step, from t0, when set
	}{
		{name: "a fresh healthy reading starts the soak; the tick at its end judges the gates, then releases", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{40 * time.Second, tick, append([]string{soaked}, pass...)},
				{40 * time.Second, done, released},
			}},
		{name: "a reading exactly at the soak's end passes", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{40 * time.Second, healthy(40 * time.Second), append([]string{soaked}, pass...)},
			}},
		{name: "a tick before the soak's end does nothing", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{40*time.Second - time.Millisecond, tick, nil},
			}, next: 40 * time.Second},
		{name: "a reading mid-soak says how far it is", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{25 * time.Second, healthy(25 * time.Second), []string{"say healthy for 15s of 30s: " + good}},
			}, next: 40 * time.Second},
		{name: "an unhealthy reading resets the soak", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{20 * time.Second, unhealthy(20 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{30 * time.Second, healthy(30 * time.Second), []string{soaking}},
			}, next: 60 * time.Second},
		{name: "a stale reading resets the soak", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{20 * time.Second, healthy(-time.Minute), []string{"say 1 of 1 records predate the upgrade (default/me)"}},
			}, next: 65 * time.Second}, // the hand-back: the soak is off
		{name: "a reading without health records", start: holding,
			steps: []awaitStep{{10 * time.Second, AwaitEvent{On: OnReading}, []string{"say no health records yet"}}},
			next:  65 * time.Second},
		{name: "the same bad reading seen twice counts once, and is said once", start: holding,
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{11 * time.Second, unhealthy(10 * time.Second), nil},
			}, next: 65 * time.Second},
		{name: "failure threshold: marks the slot failed, keeps it, warns, publishes, judges the gates", start: holding,
			steps: append(unhealthyThrice, awaitStep{12 * time.Second, done, []string{
				"say " + failThird + keeping,
				"warn UpgradeFailed: " + failThird,
				"publish Failed since 12s " + slot0 + ": " + failThird,
				"gates Failed"}}),
			next: 65 * time.Second}, // failed: the deadline no longer matters
		{name: "marking it failed finds the slot lost to expiry: warn, and fail without it", start: holding,
			steps: append(unhealthyThrice[:3:3],
				awaitStep{12 * time.Second, lost(notHeld), []string{"refresh"}},
				awaitStep{12 * time.Second, refreshed(rollout.PhaseUpgrading), []string{
					"say WARNING: " + lostNotice, "warn SlotLost: " + lostNotice,
					"say " + failThird, "warn UpgradeFailed: " + failThird, "publish Failed since 12s " + slot0 + ": " + failThird, "gates Failed"}}),
			next: 65 * time.Second},
		{name: "marking it failed finds the slot lost to a skip: the operator's Skipped stands", start: holding,
			steps: append(unhealthyThrice[:3:3],
				awaitStep{12 * time.Second, lost(notHeld), []string{"refresh"}},
				awaitStep{12 * time.Second, refreshed(rollout.PhaseSkipped), []string{
					"say default/me: an operator skipped its upgrade to v2 and released its slot", "say " + failThird}},
				awaitStep{13 * time.Second, skippedReading(), []string{skipStop, "stop"}}),
		},
		{name: "failed in an earlier run: not marked again, and a recovery is let through", start: heldSlot(PhaseFailed, time.Hour, t0),
			cfg: func(c *AwaitConfig) { c.Wait = 0 },
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{11 * time.Minute, unhealthy(11 * time.Minute), []string{"say no healthy reading before the progress deadline: " + bad}},
				{12 * time.Minute, healthy(12 * time.Minute), []string{soaking}},
			}, next: 12*time.Minute + 30*time.Second},
		{name: "a request unhealthy before its upgrade fails saying so", start: func() AwaitStart {
			l := awaitSlotLease(&awaitMe, t0, PhaseUpgrading)
			l.Annotations[AnnotationBaseline] = "web-health is unhealthy"
			s := holding
			s.View = NewView("db", 1, []*leaseT{l})
			return s
		}(),
			steps: []awaitStep{
				unhealthyThrice[0], unhealthyThrice[1],
				{12 * time.Second, unhealthy(12 * time.Second), []string{"say unhealthy 3 times in a row: " + bad,
					"mark failed " + slot0 + ": " + failThird + " (it was unhealthy before the upgrade: web-health is unhealthy)"}},
			}},
		{name: "failures carried over from an earlier run of the attempt count on",
			start: func() AwaitStart {
				s := holding
				s.Status = rollout.Status{Phase: rollout.PhaseVerifying, Version: "v2", Slot: slot0, Since: t0, Failures: 2, Reading: "x"}
				return s
			}(),
			steps: []awaitStep{{10 * time.Second, unhealthy(10 * time.Second), []string{
				"say unhealthy 3 times in a row: " + bad, "mark failed " + slot0 + ": upgrade to v2 failed: unhealthy 3 times in a row: " + bad}}}},
		{name: "the progress deadline fails an upgrade without a healthy reading", start: holding,
			cfg: func(c *AwaitConfig) { c.ProgressDeadline, c.Wait = 30*time.Second, 0 },
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{30 * time.Second, tick, []string{"say no healthy reading before the progress deadline: " + bad,
					"mark failed " + slot0 + ": upgrade to v2 failed: no healthy reading before the progress deadline: " + bad}},
			}},
		{name: "a soak under way outlives the progress deadline", start: holding,
			cfg: func(c *AwaitConfig) { c.ProgressDeadline, c.Wait = 30*time.Second, 0 },
			steps: []awaitStep{
				{20 * time.Second, healthy(20 * time.Second), []string{soaking}},
				{30 * time.Second, tick, nil},
				{50 * time.Second, tick, []string{soaked, "publish Upgraded since 50s: upgraded to v2: healthy for 30s: " + good,
					"gates Upgraded", "release " + slot0}},
			}},
		{name: "the wait runs out mid-soak: renew, and hand back Verifying", start: holding,
			steps: []awaitStep{
				{50 * time.Second, healthy(50 * time.Second), []string{soaking}},
				{65 * time.Second, tick, []string{"refresh"}},
				{65 * time.Second, refreshed(rollout.PhaseUpgrading), []string{"renew " + slot0}},
				{65 * time.Second, done, []string{"hand back Verifying since 0s " + slot0 + ": healthy for 0s of 30s: " + good +
					" (retry: healthy for 0s of 30s: " + good + ")"}},
			}},
		{name: "deadline and hand-back at once: fail first, then hand back Failed with the count", start: holding,
			cfg: func(c *AwaitConfig) { c.ProgressDeadline, c.Wait = time.Minute, 55*time.Second },
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{60 * time.Second, tick, []string{"say no healthy reading before the progress deadline: " + bad,
					"mark failed " + slot0 + ": upgrade to v2 failed: no healthy reading before the progress deadline: " + bad}},
				{60 * time.Second, done, []string{
					"say upgrade to v2 failed: no healthy reading before the progress deadline: " + bad + keeping,
					"warn UpgradeFailed: upgrade to v2 failed: no healthy reading before the progress deadline: " + bad,
					"publish Failed since 1m0s " + slot0 + ": upgrade to v2 failed: no healthy reading before the progress deadline: " + bad,
					"gates Failed"}},
				{60 * time.Second, tick, []string{"refresh"}},
				{60 * time.Second, AwaitEvent{On: OnDone}, []string{"renew " + slot0}}, // the read failed: the status as last seen
				{60 * time.Second, done, []string{"hand back Failed since 0s " + slot0 + " failures=1: no healthy reading before the progress deadline: " +
					bad + " (retry: no healthy reading before the progress deadline: " + bad + ")"}},
			}},
		{name: "soak end and hand-back at once: the pass wins", start: holding,
			steps: []awaitStep{
				{35 * time.Second, healthy(35 * time.Second), []string{soaking}},
				{65 * time.Second, tick, []string{soaked, "publish Upgraded since 1m5s: upgraded to v2: healthy for 30s: " + good,
					"gates Upgraded", "release " + slot0}},
			}},
		{name: "renewals: due at a third of the slot's lease, exactly; a late tick renews once, on the same pace",
			start: heldSlot(PhaseUpgrading, time.Minute, t0), cfg: func(c *AwaitConfig) { c.Wait = 0 },
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{25*time.Second - time.Nanosecond, tick, nil},
				{25 * time.Second, tick, []string{"renew " + slot0}},
				{25 * time.Second, done, nil},
				{25 * time.Second, tick, nil},
				{70 * time.Second, tick, []string{"renew " + slot0}},
				{70 * time.Second, done, nil},
			}, next: 85 * time.Second},
		{name: "slot lost while soaking: warn once, and pass without releasing", start: heldSlot(PhaseUpgrading, time.Minute, t0),
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{25 * time.Second, tick, []string{"renew " + slot0}},
				{25 * time.Second, lost(notHeld), []string{"say WARNING: " + lostNotice, "warn SlotLost: " + lostNotice}},
				{40 * time.Second, healthy(40 * time.Second), []string{soaked,
					"publish Upgraded since 40s: upgraded to v2: healthy for 30s: " + good, "gates Upgraded",
					"say upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)",
					"note Upgraded: upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)",
					"finish Upgraded since 40s: upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)"}},
			}},
		{name: "the release finds the slot lost", start: holding,
			steps: []awaitStep{
				{10 * time.Second, healthy(10 * time.Second), []string{soaking}},
				{40 * time.Second, tick, append([]string{soaked}, pass...)},
				{40 * time.Second, lost(notHeld), []string{"say WARNING: " + lostNotice, "warn SlotLost: " + lostNotice,
					"say upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)",
					"note Upgraded: upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)",
					"finish Upgraded since 40s: upgraded to v2: healthy for 30s: " + good + "; its slot was lost before it was verified (not held)"}},
			}},
		{name: "skipped while holding: the renewal finds the slot gone, and the run stops", start: holding,
			steps: []awaitStep{
				{10 * time.Second, skippedReading(), []string{"renew " + slot0}},
				{10 * time.Second, lost(notHeld), []string{"say default/me: an operator skipped its upgrade to v2 and released its slot", skipStop, "stop"}},
			}},
		{name: "a Skipped status whose slot is still held: verification goes on", start: holding,
			steps: []awaitStep{
				{10 * time.Second, skippedReading(), []string{"renew " + slot0}},
				{10 * time.Second, done, []string{soaking}},
			}},
		{name: "a lost slot: hand back names the loss, and renews nothing", start: lostSlot,
			steps: []awaitStep{
				{10 * time.Second, unhealthy(10 * time.Second), []string{"say " + bad + " (1 of 3 failures)"}},
				{65 * time.Second, tick, []string{"refresh"}},
				{65 * time.Second, refreshed(rollout.PhaseUpgrading), []string{"hand back Verifying since 0s " + slot0 + " failures=1: " +
					bad + " (1 of 3 failures); its slot was lost (default/me no longer holds " + slot0 + ", which acquire took for v2)" +
					" (retry: " + bad + " (1 of 3 failures))"}},
			}},
		{name: "a lost slot: failing publishes without keeping it", start: lostSlot,
			cfg: func(c *AwaitConfig) { c.FailureThreshold = 1 },
			steps: []awaitStep{{10 * time.Second, unhealthy(10 * time.Second), []string{"say unhealthy: " + bad,
				"say upgrade to v2 failed: unhealthy: " + bad, "warn UpgradeFailed: upgrade to v2 failed: unhealthy: " + bad,
				"publish Failed since 10s " + slot0 + ": upgrade to v2 failed: unhealthy: " + bad, "gates Failed"}}}},
		{name: "a lost slot found skipped on a reading: stop", start: lostSlot,
			steps: []awaitStep{{10 * time.Second, skippedReading(), []string{skipStop, "stop"}}}},
		{name: "a lost slot found skipped on handing back: stop, writing nothing", start: lostSlot,
			steps: []awaitStep{
				{65 * time.Second, tick, []string{"refresh"}},
				{65 * time.Second, refreshed(rollout.PhaseSkipped), []string{skipStop, "stop"}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := awaitConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			a, _, err := BeginAwait(cfg, tt.start, awaitBegin)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				var acts []AwaitAction
				a, acts = a.Step(s.ev, t0.Add(s.at))
				if got := render(acts); !slices.Equal(got, s.want) {
					t.Fatalf("step %d (at %s):\n%s\nwant:\n%s", i, s.at, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
				}
			}
			if got := a.Next(); tt.next != 0 && !got.Equal(t0.Add(tt.next)) {
				t.Errorf("next = %s, want %s", got.Sub(t0), tt.next)
			}
		})
	}
}
