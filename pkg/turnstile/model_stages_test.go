package turnstile

// What a pipeline process does in one step of the model-based test (model_test.go): one step
// of the stage as pkg/stage has it (acquire, the Promise's own configure, await, and the delete
// workflow's acquire). Acquire's loop body is the package's own turn (turnstile.go), one turn
// a step, on the process's stale view; what only waits or blocks in Acquire and in the stages
// is the model's. Await is the package's own machine (await.go), driven as pkg/stage/await.go
// drives it. Only runAcquire's checks before Acquire and its retryAfter are mirrored, thinly
// (pkg/stage/acquire.go): keep those in step. Status writes replace the status.turnstile block.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// mCtx is what the writers get: the model never cancels.
var mCtx = context.Background()

// step is one turn of the request's running process.
func (m *mModel) step(r *mReq) {
	p := r.proc
	switch p.stage {
	case stAcquire:
		m.stepAcquire(r, p)
	case stConfigure:
		m.stepConfigure(r, p)
	case stAwait:
		m.stepAwait(r, p)
	case stLeave:
		if released, err := p.t.Leave(mCtx, r.req); err != nil {
			m.fault(r, p, err)
		} else {
			m.tracef("  left (released=%v); %s is gone", released, r.req.Key())
			m.gone(r)
		}
	}
}

// fault ends a process on an error it returns (the pod fails): the Job runs it again, up to
// mBackoff times in a row; then the workflow has failed, as Kratix says in its condition.
func (m *mModel) fault(r *mReq, p *mProc, err error) {
	kind := mStageNames[p.stage] + ": " + mErrKind(err)
	m.stats.errors[kind]++
	m.stats.errorSeed[kind] = m.seed
	m.tracef("  %s fails: %v", mStageNames[p.stage], err)
	if p.faults+1 >= mBackoff && p.stage != stLeave {
		r.proc, r.wfFailed, r.wfFailedAt = nil, mStageNames[p.stage]+" failed", m.now.Truncate(time.Second)
		return
	}
	q := m.newProc(r, p.stage, p.target, m.dur(time.Second, 10*time.Second))
	q.faults = p.faults + 1
	m.schedule(r, q)
}

func (m *mModel) setStatus(r *mReq, st rollout.Status) {
	st.Since = st.Since.Truncate(time.Second) // RFC3339 in the status
	r.st = st
}

// stepAcquire is one step of the acquire stage: runAcquire's checks on its first step, then
// one turn of Acquire's loop (the package's own turn) per step, on the view its watch shows.
func (m *mModel) stepAcquire(r *mReq, p *mProc) {
	if p.took != nil { // Acquire has returned (a kill may fall before this): the stage writes its status
		m.setStatus(r, rollout.Status{Phase: rollout.PhaseUpgrading, Version: p.target, Slot: p.took.Name, Since: p.took.AcquireTime})
		m.next(r, stConfigure, p.target)
		return
	}
	if p.acq == nil && !m.beginAcquire(r, p) {
		return
	}
	if !p.deadline.IsZero() && !m.now.Before(p.deadline) {
		since := p.wait.Arrival // when it joined the queue, not this retry
		if since.IsZero() {
			since = p.since
		}
		m.tracef("  still waiting after --wait: retryAfter")
		m.setStatus(r, rollout.Status{Phase: rollout.PhaseWaiting, Version: p.target, Since: since})
		m.schedule(r, m.newProc(r, stAcquire, p.target, mRetry))
		return
	}
	now := p.clk.Now()
	rev := m.pickView(p)
	// What Acquire watches: its first look, then only what can go before its ticket.
	watching := p.t.watchFor(p.acq)
	view, following := m.store.selectedAt(rev, p.t, watching), true
	if m.mutant != "" {
		var skip bool
		if view, following, skip = m.mutate(p, view); skip {
			return
		}
	}
	holders := m.holderStatuses(view, r, p)
	if m.mutant == "unknown-failed-holder" {
		holders = nil // not followed: nothing heard of them
	}
	// What the invariants need of the store before the turn: the slots as the take found them,
	// and the request's ticket (a take deletes it in the same turn).
	before, lost, ticket := m.store.head(), m.store.lost, m.store.lease(r.ticket)
	for i := range m.prev {
		m.prev[i] = m.store.lease(SlotName(mPromise, i))
	}
	first := watching.first && m.mutant != "first-look-take"
	tr, err := p.t.turn(mCtx, p.acq, view, now, holders, following, first)
	if a := p.acq; a.record != nil && a.record.Target == p.target && view.Rollout.predates(*a.record, a.staleRV) {
		view.Rollout = *a.record // the record turn decided on, in place of the watch's older one
	}
	p.last = mTurn{rev: rev, view: view, holders: holders, following: following, now: now}
	if p.turnedRev == 0 && err == nil && m.store.lost == lost {
		p.turnedRev = m.store.head()
	}
	if m.tracing {
		m.tracef("  view r%d/%d: %s%s", rev, before, mTurned(tr, err), m.store.since(before, lost))
	}
	switch {
	case err != nil:
		m.fault(r, p, err)
	case tr.took != nil:
		m.onTake(r, p, tr.reentered, m.prev[tr.took.Index], ticket, *tr.took)
		p.took = tr.took
	case !tr.again && !watching.first: // a first look knows no place: Acquire looks again
		p.wait = tr.wait
	}
}

// beginAcquire is runAcquire before Acquire; false when the stage ends there.
func (m *mModel) beginAcquire(r *mReq, p *mProc) bool {
	r.wfFailed = "" // a new run of the workflow: Kratix's condition no longer says it failed
	p.since = p.clk.Now()
	switch {
	case r.st.Phase == rollout.PhaseUpgraded && r.st.Version == p.target:
		m.tracef("  already upgraded to %s: no slot needed", p.target)
		m.next(r, stConfigure, p.target)
		return false
	case !m.p.gateNew && !r.installed && r.st.Phase == "":
		m.tracef("  new: its first install goes straight through")
		_, _ = p.t.RecordTarget(mCtx, p.target, m.terms())
		m.setStatus(r, rollout.Status{Phase: rollout.PhaseUpgrading, Version: p.target, Since: p.since})
		m.next(r, stConfigure, p.target)
		return false
	}
	var expected []Expected
	if m.p.grace > 0 && r.req.Wave > 0 { // expectedBefore
		for _, o := range m.reqs {
			if o != r && o.exists && !o.deleting && o.req.Wave < r.req.Wave && !o.st.Began(p.target) {
				expected = append(expected, Expected{Request: o.req.Key(), Wave: o.req.Wave})
			}
		}
	}
	p.acq = newAcquiring(r.req, AcquireOptions{Target: p.target, Terms: m.terms(), Expected: expected, Grace: m.p.grace, WaveSoak: m.p.waveSoak})
	return true
}

// terms are what every acquire of the schedule would record.
func (m *mModel) terms() Terms {
	return Terms{ApprovalWaves: m.p.approval, Slots: m.p.slots, WaveSlots: m.p.waveSlots}
}

// holderStatuses is what the waiter's holder tracker has heard, as holders.statuses() after
// holders.follow(view.Slots) in Acquire: a holder first followed in this turn has not reported
// yet (no entry); one followed since an earlier turn has (its watch's first word comes at
// once), and says what is true now. One that left the view's slots is no longer followed.
func (m *mModel) holderStatuses(v View, r *mReq, p *mProc) map[types.UID]HolderStatus {
	out := map[types.UID]HolderStatus{}
	var followed []types.UID
	for _, s := range v.Slots {
		if !s.Held() || s.HolderUID == "" || s.HolderUID == r.req.UID {
			continue
		}
		followed = append(followed, s.HolderUID)
		if mContains(p.followed, s.HolderUID) {
			out[s.HolderUID] = m.truthStatus(s.HolderUID)
		}
	}
	p.followed = followed
	return out
}

// truthStatus is what a holder watch reports of a uid: gone, or its workflow's failure.
func (m *mModel) truthStatus(uid types.UID) HolderStatus {
	h := m.byUID(uid)
	if h == nil {
		return HolderStatus{Gone: true}
	}
	return HolderStatus{WorkflowFailed: h.wfFailed, FailedAt: h.wfFailedAt}
}

// pickView is the revision the process's watch shows now: not older than what it showed last
// (a watch never goes back), nor than mLag ago; as often the head as anything in between. It
// may be older than the process's own last writes, whose events the watch has yet to bring.
func (m *mModel) pickView(p *mProc) int {
	lo, hi := max(p.seen, m.store.oldest(m.now, mLag)), m.store.head()
	rev := hi
	// A process's first view is a consistent list (the watch lists with resourceVersion ""):
	// the head. Later views lag behind, as watch events do.
	if lagging := m.rng.IntN(2) == 0; lagging && p.seen != 0 {
		rev = lo + m.rng.IntN(hi-lo+1)
	}
	p.seen = rev
	return rev
}

func mTurned(tr turned, err error) string {
	switch {
	case err != nil:
		return "error " + err.Error()
	case tr.took != nil && tr.reentered:
		return "re-entered " + tr.took.Name
	case tr.took != nil:
		return "took " + tr.took.Name
	case tr.again:
		return "queued: decide again"
	}
	return fmt.Sprintf("wait (position %d of %d; %s)", tr.wait.Position, tr.wait.Queue, tr.wait.Message())
}

// stepConfigure is the Promise's own pipeline: it takes a while, now and then longer than the
// lease, and may fail; when it ends the target version is deployed.
func (m *mModel) stepConfigure(r *mReq, p *mProc) {
	if !p.begun {
		p.begun = true
		p.doneAt = m.now.Add(m.dur(time.Second, 8*time.Second))
		if m.rng.IntN(20) == 0 {
			p.doneAt = m.now.Add(m.dur(mL, 2*mL))
		}
		p.fail = !m.drain && m.rng.IntN(20) == 0
		return
	}
	if m.now.Before(p.doneAt) {
		return
	}
	if p.fail {
		r.proc, r.wfFailed, r.wfFailedAt = nil, "configure failed", m.now.Truncate(time.Second)
		m.tracef("  configure workflow failed")
		return
	}
	if r.app != p.target {
		r.app, r.sickUntil = p.target, time.Time{}
		switch n := m.rng.IntN(20); {
		case m.drain:
		case n < 3:
			r.sickUntil = m.now.Add(m.dur(0, 40*time.Second))
		case n < 5:
			r.sickUntil = m.now.Add(mForever)
		}
		m.tracef("  deployed %s (unhealthy until %s)", r.app, m.ts(r.sickUntil))
	}
	m.next(r, stAwait, p.target)
}

// stepAwait is one step of the await stage: the package's own machine (await.go), fed the live
// request as one reading a step and then ticked for whatever is due by the process's clock, its
// actions carried out against the store and the request's status as the stage carries them out.
// A pass publishes Upgraded, and its Release is the next step: a kill may fall between.
func (m *mModel) stepAwait(r *mReq, p *mProc) {
	switch {
	case !p.begun:
		m.beginAwait(r, p)
		return
	case p.release != nil:
		m.carry(r, p, []AwaitAction{*p.release})
		return
	}
	var st health.Status
	if r.record != nil {
		st = health.Status{State: r.record.rec.State, Records: []health.Record{r.record.rec}}
	}
	p.read = r.record
	if !m.feed(r, p, AwaitEvent{On: OnReading, Live: r.st, Health: st}) {
		return
	}
	for next := p.aw.Next(); !next.IsZero() && !p.clk.Now().Before(next); next = p.aw.Next() {
		if !m.feed(r, p, AwaitEvent{On: OnTick}) {
			return
		}
	}
}

// beginAwait is runAwait before its watch.
func (m *mModel) beginAwait(r *mReq, p *mProc) {
	p.begun = true
	v, _ := p.t.Inspect(mCtx)
	if s, held := v.HeldBy(r.req); held && s.Version != "" {
		p.target = s.Version
	}
	cfg := AwaitConfig{Promise: mPromise, Namespace: DefaultNamespace, MinHealthy: mMinHealthy, FailureThreshold: mFailures,
		ProgressDeadline: mDeadline, Wait: mStageWait, LeaseDuration: mL}
	aw, acts, err := BeginAwait(cfg, AwaitStart{Request: r.req, View: v, Target: p.target, Status: r.st}, p.clk.Now())
	if err != nil {
		m.fault(r, p, err)
		return
	}
	p.aw = aw
	m.carry(r, p, acts)
}

// feed steps the machine with ev and carries out what it says; false when the step ends there.
func (m *mModel) feed(r *mReq, p *mProc, ev AwaitEvent) bool {
	var acts []AwaitAction
	p.aw, acts = p.aw.Step(ev, p.clk.Now())
	return m.carry(r, p, acts)
}

// carry carries out the machine's actions, and the outcome of the last, as the stage does; false
// when the step ends there: the run is over, it failed, or its Release waits for the next step.
func (m *mModel) carry(r *mReq, p *mProc, acts []AwaitAction) bool {
	for len(acts) > 0 {
		var outcome *AwaitEvent
		for _, act := range acts {
			var goOn bool
			if outcome, goOn = m.do(r, p, act); !goOn {
				return false
			}
		}
		if outcome == nil {
			return true
		}
		p.aw, acts = p.aw.Step(*outcome, p.clk.Now())
	}
	return true
}

// do carries out one action: the outcome of a slot write or a read, and false when the step
// ends there. Events, gates and the wording of the stage's lines are not the model's.
func (m *mModel) do(r *mReq, p *mProc, act AwaitAction) (*AwaitEvent, bool) {
	switch act.Do {
	case DoSay:
		m.tracef("  %s", act.Line)
	case DoPublish:
		if act.Status.Phase == rollout.PhaseUpgraded { // passed, on the last reading
			p.proof, r.upgrading = p.read, false
		}
		m.setStatus(r, act.Status)
	case DoRenew:
		_, err := p.t.Renew(mCtx, r.req, act.Attempt)
		return m.written(r, p, err, true)
	case DoMarkFailed:
		_, err := p.t.MarkFailed(mCtx, r.req, act.Attempt, act.Line)
		if err != nil && !lostErr(err) {
			m.tracef("  could not mark %s failed: %v", act.Slot, err)
			return &AwaitEvent{On: OnDone}, true
		}
		return m.written(r, p, err, true)
	case DoRelease:
		if p.release == nil {
			p.release = &act
			return nil, false
		}
		p.release = nil
		prev := m.heldIndex(r)
		_, err := p.t.Release(mCtx, r.req, act.Attempt)
		outcome, ok := m.written(r, p, err, false)
		if ok && outcome.On == OnDone {
			m.tracef("  released slot-%d on %s", prev, m.describeRecord(p.proof))
			m.checkRelease(r, p, prev)
		}
		return outcome, ok
	case DoRefresh:
		return &AwaitEvent{On: OnRefreshed, Live: r.st}, true
	case DoHandBack:
		m.setStatus(r, act.Status)
		m.tracef("  still %s after --wait: retryAfter", act.Status.Phase)
		m.schedule(r, m.newProc(r, stAwait, p.target, mRetry))
		return nil, false
	case DoFinish:
		m.setStatus(r, act.Status)
		m.done(r)
		return nil, false
	case DoStop:
		m.done(r)
		return nil, false
	}
	return nil, true
}

// written is a slot write's outcome: a slot no longer held is the machine's to hear of; any
// other error fails the process. A write that renews the slot counts as its renewal.
func (m *mModel) written(r *mReq, p *mProc, err error, renews bool) (*AwaitEvent, bool) {
	switch {
	case lostErr(err):
		return &AwaitEvent{On: OnLost, Why: err.Error()}, true
	case err != nil:
		m.fault(r, p, err)
		return nil, false
	case renews:
		r.lastRenew = m.now
	}
	return &AwaitEvent{On: OnDone}, true
}

func lostErr(err error) bool { return errors.Is(err, ErrNotHeld) || errors.Is(err, ErrOtherAttempt) }

// done: the workflow's last pipeline ended well (Kratix records a successful configure).
func (m *mModel) done(r *mReq) { r.installed, r.proc = true, nil }

// stamp is the details a checker writes into a record of the request's app.
func (m *mModel) stamp(r *mReq) map[string]any {
	version := r.app
	if m.p.unstamped {
		version = ""
	}
	key := string(r.req.UID) + "/" + version
	if m.stamps[key] == nil {
		m.stamps[key] = health.Stamp{Promise: mPromise, RequestUID: string(r.req.UID), Version: version}.Apply(nil)
	}
	return m.stamps[key]
}
