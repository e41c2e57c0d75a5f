package turnstile

// The await stage's verification of one upgrade attempt, as a state machine beside decide. The
// stage feeds it what it sees (the live request, the passing of time, the outcome of its slot
// writes) and carries out the actions it returns, in order. Every decision of time and verdict
// is made here, at the now the stage passes in: the stage only reads, writes and waits.

import (
	"fmt"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// AwaitConfig is how an await run judges its attempt: the stage's flags.
type AwaitConfig struct {
	// Promise is whose records count (health.Freshness); Namespace, the slot namespace, is
	// named in errors.
	Promise, Namespace string
	// MinHealthy is the soak; FailureThreshold the bad readings in a row that fail the upgrade;
	// ProgressDeadline how long after the attempt began it may take to pass before it fails.
	MinHealthy       time.Duration
	FailureThreshold int
	ProgressDeadline time.Duration
	// RequireProof: healthy records count only when they prove the target version answered.
	RequireProof bool
	// Wait is how long a run watches before it hands back to Kratix; 0 watches until a verdict.
	Wait time.Duration
	// LeaseDuration paces the renewals of a slot whose Lease names no usable duration of its
	// own. Defaults to DefaultLeaseDuration.
	LeaseDuration time.Duration
}

// AwaitStart is what an await run finds when it begins.
type AwaitStart struct {
	Request Request
	// View is the Promise's Leases: the slot the request holds is the record of its attempt.
	View View
	// Target is the version to verify: the held slot's, else the pipeline's.
	Target string
	// Status is status.turnstile as the pipeline's input has it; zero when there is none.
	Status rollout.Status
}

// AwaitOn says what an AwaitEvent is.
type AwaitOn int

const (
	// OnReading: the live request as it is now, Live and Health.
	OnReading AwaitOn = iota
	// OnTick: time has passed, to at least Next.
	OnTick
	// OnDone: the last action's slot write went through (or failed in a way the stage carries
	// on from), or its read failed.
	OnDone
	// OnLost: the last action's slot write found the slot no longer held for the attempt; Why
	// says so.
	OnLost
	// OnRefreshed: the last action's read of the live request's status brought Live.
	OnRefreshed
)

// AwaitEvent is what the stage feeds the machine.
type AwaitEvent struct {
	On     AwaitOn
	Live   rollout.Status
	Health health.Status
	Why    string
}

// AwaitDo says what an AwaitAction asks of the stage.
type AwaitDo int

const (
	// DoSay prints Line.
	DoSay AwaitDo = iota
	// DoWarn and DoNote record a Warning or a Normal Event on the request: Reason, Line.
	DoWarn
	DoNote
	// DoPublish writes Status into the live request's status at once.
	DoPublish
	// DoJudgeGates judges the ratio gates, counting this request as Status.Phase.
	DoJudgeGates
	// DoRenew, DoMarkFailed (with Line) and DoRelease write the slot for Attempt; the outcome,
	// OnDone or OnLost, is fed back before anything else.
	DoRenew
	DoMarkFailed
	DoRelease
	// DoRefresh reads the live request's status afresh; OnRefreshed, or OnDone when the read
	// failed, is fed back before anything else.
	DoRefresh
	// DoHandBack writes Status and asks Kratix to run the pipeline again (Line says why). The
	// run is over.
	DoHandBack
	// DoFinish writes Status. The run is over.
	DoFinish
	// DoStop ends the run, writing nothing.
	DoStop
)

// AwaitAction is one thing the machine asks of the stage.
type AwaitAction struct {
	Do      AwaitDo
	Line    string
	Reason  string
	Status  rollout.Status
	Slot    string // the slot's name, for what the stage says of a failed write
	Attempt Attempt
}

// resumption is what the machine goes on with once a slot write's or a read's outcome is in.
type resumption int

const (
	resumeNothing      resumption = iota
	resumeReading                 // the reading that found the attempt skipped, after a renewal
	resumeMarked                  // failing, after marking the slot
	resumeMarkedLost              // failing, after reading the status of a slot found lost
	resumeHandBackRead            // handing back, after reading the status afresh
	resumeHandBack                // handing back, after renewing
	resumeReleased                // passing, after releasing
)

// Await is one await run's verification of an upgrade attempt. Feed it with Step; it is a
// value: Step returns the next one.
type Await struct {
	req     Request
	target  string
	slot    Slot // keeps the name of a slot lost, for the statuses written later
	held    bool
	attempt Attempt
	since   time.Time
	failed  bool
	// lost says why the slot was found no longer held, when it was: never reported as held.
	lost string
	// live is the request's turnstile status as last seen.
	live    rollout.Status
	soak    health.Soak
	fresh   health.Freshness
	last    health.Observation
	verdict health.Verdict
	said    string // the verdict line last printed
	// checkedAt is when a due recheck was last judged: a recheck time not after it is done, so
	// a verdict it left unchanged cannot keep the machine ticking in the past, starving handing
	// back and renewals.
	checkedAt time.Time
	// every paces the renewals, at renewAt; handBackAt ends the run's watch, zero for never.
	every               time.Duration
	renewAt, handBackAt time.Time
	resume              resumption
	reading             AwaitEvent // the reading a renewal interrupted
	why                 string     // why the slot was lost, while the status is read afresh
	msg                 string     // what a pass or a failure says, while the slot is written
}

// BeginAwait begins a run at now: it ends there (actions that end in DoStop), fails with an
// error the operator must fix, or returns the machine to feed, with the actions to carry out
// before the first reading.
func BeginAwait(cfg AwaitConfig, in AwaitStart, now time.Time) (Await, []AwaitAction, error) {
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	a := Await{req: in.Request, target: in.Target}
	a.slot, a.held = in.View.HeldBy(in.Request)
	st := in.Status
	var acts []AwaitAction
	if a.held {
		// The slot is the one record of the attempt: its version, start and lease duration are
		// what acquire took it for, whatever the stage's own flags say.
		a.attempt, a.since, a.failed = a.slot.Attempt(), a.slot.AcquireTime, a.slot.Phase == PhaseFailed
	} else {
		switch {
		case st.Phase == rollout.PhaseUpgraded && st.Version == a.target:
			return a, stop("%s is already upgraded to %s", a.req, a.target), nil
		case st.Version == a.target && st.Phase == rollout.PhaseSkipped:
			return a, stop("%s: its upgrade to %s was skipped by an operator: nothing to verify", a.req, a.target), nil
		case st.Version == a.target && st.Slot == "" && st.Began(a.target):
			// A request that went straight through (a first install) is verified the same way,
			// from when it passed acquire; so is each later run of that verification.
			a.since = st.Since
		case st.Version == a.target && st.Slot != "" && !hasSlot(in.View, st.Slot):
			return a, nil, fmt.Errorf("%s: acquire took %s for %s, but there is no such Lease in %s: acquire and await must share --slot-namespace",
				a.req, st.Slot, a.target, cfg.Namespace)
		case st.Version == a.target && st.Slot != "":
			// acquire took a slot and it is gone: reclaimed after its lease ran out, or skipped.
			// The slot's name stays in every status this attempt writes, so that a later run
			// knows it as lost too, not as one that never had a slot.
			a.since, a.slot = st.Since, Slot{Name: st.Slot}
			acts = a.slotLost(fmt.Sprintf("%s no longer holds %s, which acquire took for %s", a.req, st.Slot, a.target))
		default:
			return a, nil, fmt.Errorf("%s holds no slot for %s: acquire never took one (its status says %s); acquire and await must share "+
				"--slot-namespace, and acquire's --wait must be 0 on a Kratix without workflow-control", a.req, a.target, describe(st))
		}
		if a.since.IsZero() {
			a.since = now
		}
	}
	a.soak = health.Soak{MinHealthy: cfg.MinHealthy, FailureThreshold: cfg.FailureThreshold, Deadline: a.since.Add(cfg.ProgressDeadline)}
	// An earlier run of this same attempt handed back its count of bad readings in a row.
	if st.Version == a.target && st.Since.Unix() == a.since.Unix() && st.Failures > 0 {
		a.soak.Restore(st.Failures, st.Reading)
	}
	a.fresh = health.Freshness{Promise: cfg.Promise, RequestUID: string(a.req.UID), Since: a.since, Version: a.target,
		RequireProof: cfg.RequireProof}
	where := "holding no slot"
	if a.held {
		where = "holding " + a.slot.Name
	}
	acts = append(acts, say("%s: verifying %s (%s): fresh since %s, soak %s", a.req, a.target, where,
		a.since.UTC().Format(time.RFC3339), cfg.MinHealthy))
	// Within a run, renew at a third of the slot's lease duration; across retryAfter runs, the
	// renewal at the start of each run keeps the slot well inside its lease.
	a.every = cfg.LeaseDuration / 3
	if a.held && a.slot.Duration >= MinLeaseDuration {
		a.every = a.slot.Duration / 3 // a hand-edited Lease without a duration keeps the flag's
	}
	a.renewAt = now.Add(a.every)
	if cfg.Wait > 0 {
		a.handBackAt = now.Add(cfg.Wait)
	}
	// Renew at the start of every run: with retryAfter, a run may be too short for the pace.
	if a.held && now.Sub(a.slot.RenewTime) > a.slot.Duration/3 {
		acts = append(acts, a.write(DoRenew, resumeNothing))
	}
	return a, acts, nil
}

func say(format string, args ...any) AwaitAction {
	return AwaitAction{Do: DoSay, Line: fmt.Sprintf(format, args...)}
}

func stop(format string, args ...any) []AwaitAction {
	return []AwaitAction{say(format, args...), {Do: DoStop}}
}

// hasSlot reports whether the slot Lease of that name exists.
func hasSlot(v View, name string) bool {
	for _, s := range v.Slots {
		if s.Name == name && s.Lease != nil {
			return true
		}
	}
	return false
}

// describe is a request's turnstile status in a few words, for errors.
func describe(st rollout.Status) string {
	if st.Phase == "" {
		return "nothing of the turnstile"
	}
	if st.Version == "" {
		return st.Phase + " for no version"
	}
	return st.Phase + " for " + st.Version
}
