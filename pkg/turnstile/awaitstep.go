package turnstile

// How the await machine (await.go) takes each event: a reading, a tick of the clock, or the
// outcome of a slot write or a read; and what it does when the attempt passes, fails, is handed
// back to Kratix, or loses its slot.

import (
	"fmt"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Step feeds the machine one event at now, and returns it as it is then, with the actions to
// carry out in order. An action that writes the slot or reads the status comes last, and its
// outcome is the next event; OnReading and OnTick are fed only when no outcome is awaited.
func (a Await) Step(ev AwaitEvent, now time.Time) (Await, []AwaitAction) {
	var acts []AwaitAction
	switch ev.On {
	case OnReading:
		acts = a.read(ev, now)
	case OnTick:
		acts = a.tick(now)
	default:
		acts = a.resumed(ev, now)
	}
	return a, acts
}

// Next is when the machine wants an OnTick: the verdict changes by itself, a renewal is due, or
// the run's watch is over. Zero for never.
func (a Await) Next() time.Time {
	next := a.recheckAt()
	if a.held {
		next = earliest(next, a.renewAt)
	}
	if !a.handBackAt.IsZero() {
		next = earliest(next, a.handBackAt)
	}
	return next
}

func (a *Await) read(ev AwaitEvent, now time.Time) []AwaitAction {
	a.live = ev.Live
	if a.held && a.liveSkipped() {
		a.reading = ev // a skip released the slot: renewing says so
		return []AwaitAction{a.write(DoRenew, resumeReading)}
	}
	return a.observe(ev, now)
}

func (a *Await) observe(ev AwaitEvent, now time.Time) []AwaitAction {
	if a.skipped() {
		return a.skippedStop()
	}
	// An absent healthStatus has no records, which Observe reads as none yet.
	a.last = health.Observe(ev.Health, true, a.fresh, now)
	a.verdict = a.soak.Observe(now, a.last)
	return a.judge(now)
}

// tick does the first thing due at now: a verdict changed by time (so a pass or a failure wins
// over handing back), then handing back (which renews), then a renewal.
func (a *Await) tick(now time.Time) []AwaitAction {
	switch {
	case due(a.recheckAt(), now):
		a.verdict, a.checkedAt = a.soak.At(now, a.last), now
		return a.judge(now)
	case due(a.handBackAt, now):
		// A skip may have released the slot since the last renewal: the status written on
		// handing back must not undo it.
		return []AwaitAction{a.refresh(resumeHandBackRead)}
	case a.held && due(a.renewAt, now):
		for !a.renewAt.After(now) { // on the pace set at the start, like a ticker
			a.renewAt = a.renewAt.Add(a.every)
		}
		return []AwaitAction{a.write(DoRenew, resumeNothing)}
	}
	return nil
}

// resumed goes on with what a slot write or a read left off, now that its outcome is in.
func (a *Await) resumed(ev AwaitEvent, now time.Time) []AwaitAction {
	r := a.resume
	a.resume = resumeNothing
	if ev.On == OnLost && r == resumeMarked {
		// Lost to an operator's skip or to expiry: the live status tells which.
		a.why = ev.Why
		return []AwaitAction{a.refresh(resumeMarkedLost)}
	}
	var acts []AwaitAction
	switch ev.On {
	case OnRefreshed:
		a.live = ev.Live
	case OnLost:
		acts = a.slotLost(ev.Why)
	}
	switch r {
	case resumeReading:
		return append(acts, a.observe(a.reading, now)...)
	case resumeMarked:
		return append(acts, a.markedFailed(now)...)
	case resumeMarkedLost:
		acts = append(acts, a.slotLost(a.why)...)
		return append(acts, a.markedFailed(now)...)
	case resumeHandBackRead:
		if a.held {
			return append(acts, a.write(DoRenew, resumeHandBack))
		}
		return append(acts, a.handBack()...)
	case resumeHandBack:
		return append(acts, a.handBack()...)
	case resumeReleased:
		if ev.On == OnDone {
			a.msg += "; released " + a.slot.Name
		}
		return append(acts, a.passed(now)...)
	}
	return acts
}

// judge says the verdict when it changed, and passes or fails on it.
func (a *Await) judge(now time.Time) []AwaitAction {
	var acts []AwaitAction
	if a.verdict.Message != a.said {
		a.said = a.verdict.Message
		acts = append(acts, say("%s", a.said))
	}
	switch {
	case a.verdict.Passed:
		return append(acts, a.pass(now)...)
	case a.verdict.Failed && !a.failed:
		return append(acts, a.fail(now)...)
	}
	return acts
}

// pass lets the next request go: the upgrade is proved. The request says it is upgraded before
// the next one can take the slot, so that its status never shows two requests upgrading at once
// (status.yaml lands after the pipeline). The gates are judged next, counting this request: a
// gate that trips pauses the rollout before the slot is free, so the request that tripped it is
// the last one through.
func (a *Await) pass(now time.Time) []AwaitAction {
	a.msg = fmt.Sprintf("upgraded to %s: %s", a.target, a.verdict.Message)
	acts := []AwaitAction{
		{Do: DoPublish, Status: rollout.Status{Phase: rollout.PhaseUpgraded, Version: a.target, Since: now, Message: a.msg}},
		{Do: DoJudgeGates, Status: rollout.Status{Phase: rollout.PhaseUpgraded}},
	}
	if a.held {
		return append(acts, a.write(DoRelease, resumeReleased))
	}
	return append(acts, a.passed(now)...)
}

func (a *Await) passed(now time.Time) []AwaitAction {
	if a.lost != "" {
		a.msg += "; its slot was lost before it was verified (" + a.lost + ")"
	}
	return []AwaitAction{say("%s", a.msg), {Do: DoNote, Reason: "Upgraded", Line: a.msg},
		{Do: DoFinish, Status: rollout.Status{Phase: rollout.PhaseUpgraded, Version: a.target, Since: now, Message: a.msg}}}
}

// fail marks the upgrade Failed and keeps the slot, so the rollout pauses visibly. The machine
// goes on: a request that recovers is still let through.
func (a *Await) fail(now time.Time) []AwaitAction {
	a.failed = true
	a.msg = "upgrade to " + a.target + " failed: " + a.verdict.Message + a.before()
	if a.held {
		act := a.write(DoMarkFailed, resumeMarked)
		act.Line = a.msg
		return []AwaitAction{act}
	}
	return a.markedFailed(now)
}

// before says, for a failure, that the request was unhealthy before its upgrade, if it was: the
// failure is its own, not the upgrade's.
func (a *Await) before() string {
	if a.slot.Baseline == "" {
		return ""
	}
	return " (it was unhealthy before the upgrade: " + a.slot.Baseline + ")"
}

// markedFailed is the rest of fail, once the slot says so (or cannot).
func (a *Await) markedFailed(now time.Time) []AwaitAction {
	line := a.msg
	if a.held {
		line += "; keeping " + a.slot.Name + ", so the rollout pauses until this request recovers, is skipped or is deleted"
	}
	acts := []AwaitAction{say("%s", line)}
	if a.skipped() {
		return acts // the operator's Skipped stands
	}
	return append(acts, AwaitAction{Do: DoWarn, Reason: "UpgradeFailed", Line: a.msg},
		AwaitAction{Do: DoPublish, Status: rollout.Status{Phase: rollout.PhaseFailed, Version: a.target, Slot: a.slot.Name, Since: now, Message: a.msg}},
		AwaitAction{Do: DoJudgeGates, Status: rollout.Status{Phase: rollout.PhaseFailed}})
}

// handBack reports where verification stands and asks Kratix to run the pipeline again later.
func (a *Await) handBack() []AwaitAction {
	if a.skipped() {
		return a.skippedStop()
	}
	phase := rollout.PhaseVerifying
	if a.failed {
		phase = rollout.PhaseFailed
	}
	msg := a.verdict.Message
	if a.failed {
		msg += a.before()
	}
	if a.lost != "" {
		msg += "; its slot was lost (" + a.lost + ")"
	}
	failures, reading := a.soak.Failures()
	return []AwaitAction{{Do: DoHandBack, Line: a.verdict.Message, Status: rollout.Status{Phase: phase, Version: a.target,
		Slot: a.slot.Name, Since: a.since, Message: msg, Failures: failures, Reading: reading}}}
}

// slotLost says, loudly, that the attempt's slot is no longer held, and goes on verifying
// without it: the upgrade happened, but while others may have taken the slot it had, so more
// than the configured number may have been upgrading at once.
func (a *Await) slotLost(why string) []AwaitAction {
	if a.lost != "" {
		return nil
	}
	a.held, a.lost = false, why
	if a.liveSkipped() {
		return []AwaitAction{say("%s: an operator skipped its upgrade to %s and released its slot", a.req, a.target)}
	}
	msg := why + ": its lease ran out or it was skipped, so another request may have upgraded beside it; verifying without a slot"
	// The status says so when this run hands back or ends: written now, it could overwrite the
	// Skipped that an operator's skip is about to write.
	return []AwaitAction{say("WARNING: %s", msg), {Do: DoWarn, Reason: "SlotLost", Line: msg}}
}

// liveSkipped reports whether the live status says an operator skipped this attempt's version.
func (a *Await) liveSkipped() bool {
	return a.live.Phase == rollout.PhaseSkipped && a.live.Version == a.target
}

// skipped reports whether an operator skipped this attempt (kubectl turnstile skip): its slot is
// gone on purpose, and its status is theirs to keep.
func (a *Await) skipped() bool { return a.lost != "" && a.liveSkipped() }

func (a *Await) skippedStop() []AwaitAction {
	return stop("%s: its upgrade to %s was skipped by an operator: no longer verifying it", a.req, a.target)
}

// recheckAt is when the verdict changes by itself: the soak ends, or the deadline passes.
func (a *Await) recheckAt() time.Time {
	at := time.Time{}
	switch {
	case !a.verdict.PassAt.IsZero():
		at = a.verdict.PassAt
	case !a.failed:
		at = a.soak.Deadline
	}
	if !at.After(a.checkedAt) {
		return time.Time{}
	}
	return at
}

// write is a slot write for the attempt; its outcome resumes r.
func (a *Await) write(do AwaitDo, r resumption) AwaitAction {
	a.resume = r
	return AwaitAction{Do: do, Slot: a.slot.Name, Attempt: a.attempt}
}

// refresh reads the live status afresh; its outcome resumes r.
func (a *Await) refresh(r resumption) AwaitAction {
	a.resume = r
	return AwaitAction{Do: DoRefresh}
}

func due(at, now time.Time) bool { return !at.IsZero() && !now.Before(at) }
