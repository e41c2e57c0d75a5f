package turnstile

// The trouble of the model-based test (model_test.go): what Kratix, the cluster and the
// operator do to the requests at random moments, and how the operator resolves the rest in
// the drain.

import (
	"slices"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// mEvents are the random moves, weighted. Each returns what it did ("" for nothing: the
// schedule had nothing for it to act on).
var mEvents = []struct {
	weight int
	do     func(*mModel) string
}{
	{25, (*mModel).kill},
	{6, (*mModel).freeze},
	{5, (*mModel).delete},
	{5, (*mModel).recreate},
	{3, (*mModel).pause},
	{5, (*mModel).resume},
	{2, func(m *mModel) string { v, err := m.op.Abort(mCtx, "op"); return mOp("abort "+v, err) }},
	{6, (*mModel).approve},
	{6, func(m *mModel) string { return m.skip(m.rng.IntN(7) == 0) }},
	{6, (*mModel).heal},
	{6, (*mModel).reconcile},
	{2, (*mModel).bump},
}

var mEventWeights = func() (n int) {
	for _, e := range mEvents {
		n += e.weight
	}
	return n
}()

func (m *mModel) event() {
	n := m.rng.IntN(mEventWeights)
	for _, e := range mEvents {
		if n -= e.weight; n < 0 {
			if did := e.do(m); did != "" {
				m.tracef("#%d t=%s event: %s", m.steps, m.ts(m.now), did)
			}
			return
		}
	}
}

func mOp(what string, err error) string {
	if err != nil {
		return what + ": " + err.Error()
	}
	return what
}

// pause is an operator's pause: of the rollout, or in odd seeds the platform-wide hold, which
// decide honours the same way from another Lease. The seed chooses, not the random stream, so
// every schedule draws what it drew before the hold existed.
func (m *mModel) pause() string {
	if m.seed%2 == 1 {
		return mOp("hold all", m.op.HoldAll(mCtx, "model", "op"))
	}
	return mOp("pause", m.op.Pause(mCtx, "model", "op"))
}

// resume lifts what pause set.
func (m *mModel) resume() string {
	if m.seed%2 == 1 {
		return mOp("release hold", m.op.ReleaseHold(mCtx, "op"))
	}
	return mOp("resume", m.op.Resume(mCtx, "op"))
}

// pick is a random request that passes ok, or nil.
func (m *mModel) pick(ok func(*mReq) bool) *mReq {
	var c []*mReq
	for _, r := range m.reqs {
		if ok(r) {
			c = append(c, r)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[m.rng.IntN(len(c))]
}

// kill ends a running process at any step. The Job runs the pipeline again; now and then the
// whole workflow runs again instead (a manual reconciliation).
func (m *mModel) kill() string {
	r := m.pick(func(r *mReq) bool { return r.proc != nil })
	if r == nil {
		return ""
	}
	p := r.proc
	if p.stage != stLeave && m.rng.IntN(10) < 3 {
		m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 5*time.Second)))
		return "killed " + r.name + "'s " + mStageNames[p.stage] + "; its workflow runs again"
	}
	m.schedule(r, m.newProc(r, p.stage, p.target, m.dur(time.Second, 10*time.Second)))
	return "killed " + r.name + "'s " + mStageNames[p.stage] + "; the Job runs it again"
}

// freeze stops a process without ending it (a stalled node): it acts again later, as it was.
func (m *mModel) freeze() string {
	r := m.pick(func(r *mReq) bool { return r.proc != nil })
	if r == nil {
		return ""
	}
	r.proc.frozenUntil = m.now.Add(m.dur(0, 2*mL))
	return "froze " + r.name + "'s " + mStageNames[r.proc.stage] + " until " + m.ts(r.proc.frozenUntil)
}

// delete deletes a request: its delete workflow runs Leave, then the object goes; now and then
// its finalizer is removed by force and it goes at once, leaving its ticket and slot behind.
func (m *mModel) delete() string {
	r := m.pick(func(r *mReq) bool { return r.exists && !r.deleting })
	if r == nil {
		return ""
	}
	if m.rng.IntN(7) == 0 {
		m.gone(r)
		return "deleted " + r.name + " by force: no delete workflow"
	}
	r.deleting = true
	m.schedule(r, m.newProc(r, stLeave, m.version, m.dur(0, 2*time.Second)))
	return "deleting " + r.name
}

// recreate makes a deleted request's name exist again: a new uid, maybe a new wave, no status.
func (m *mModel) recreate() string {
	r := m.pick(func(r *mReq) bool { return !r.exists && !r.deleting })
	if r == nil {
		return ""
	}
	wave := r.req.Wave
	if m.rng.IntN(2) == 0 {
		wave = m.rng.IntN(3)
	}
	r.inc++
	*r = mReq{name: r.name, inc: r.inc, req: mRequest(r.name, r.inc, wave), ticket: r.ticket, exists: true, agentSkew: r.agentSkew}
	m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 2*time.Second)))
	return "re-created " + r.name + " as " + string(r.req.UID) + ", wave " + string(rune('0'+wave))
}

// approve approves the next wave waiting for approval, as kubectl turnstile approve would.
func (m *mModel) approve() string {
	rl := m.store.rollout()
	for _, w := range slices.Sorted(slices.Values(rl.ApprovalWaves)) {
		if !slices.Contains(rl.Approved, w) {
			return mOp("approve wave "+string(rune('0'+w))+" of "+rl.Target, m.op.Approve(mCtx, w, "op"))
		}
	}
	return ""
}

// skip skips a failed upgrade (with force: any holder), as kubectl turnstile skip would.
func (m *mModel) skip(force bool) string {
	var c []Slot
	for i := range m.p.slots {
		if s := m.store.slotAt(i); s.Held() && (force || s.Phase == PhaseFailed) {
			c = append(c, s)
		}
	}
	if len(c) == 0 {
		return ""
	}
	key := c[m.rng.IntN(len(c))].Request
	s, err := m.op.Skip(mCtx, key, force)
	if err != nil {
		return mOp("skip "+key, err)
	}
	// kubectl turnstile skip then marks the request's status Skipped for the slot's version.
	if h := m.byUID(s.HolderUID); h != nil {
		h.skipped = h.upgrading
		m.setStatus(h, rollout.Status{Phase: rollout.PhaseSkipped, Version: s.Version, Since: m.now})
	}
	return "skipped " + key + " (" + s.Phase + ")"
}

// heal mends an app that would stay unhealthy.
func (m *mModel) heal() string {
	r := m.pick(func(r *mReq) bool { return r.exists && r.sickUntil.After(m.now) })
	if r == nil {
		return ""
	}
	r.sickUntil = m.now
	return "healed " + r.name + "'s app"
}

// reconcile runs a request's failed workflow again (a manual reconciliation).
func (m *mModel) reconcile() string {
	r := m.pick(func(r *mReq) bool {
		return r.exists && !r.deleting && r.wfFailed != "" && r.proc == nil && r.rerun == nil
	})
	if r == nil {
		return ""
	}
	r.wfFailed = ""
	m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 2*time.Second)))
	return "reconciling " + r.name + " after its workflow failed"
}

// bump releases a new Promise version: Kratix runs every request's workflow again.
func (m *mModel) bump() string {
	if m.bumps == mBump {
		return ""
	}
	m.bumps++
	m.version = "v" + string(rune('2'+m.bumps))
	for _, r := range m.reqs {
		if r.exists && !r.deleting {
			r.wfFailed = ""
			m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 3*time.Second)))
		}
	}
	return "released Promise version " + m.version
}

// resolve is the operator in the drain: resume, approve, mend every app, re-run failed
// workflows, wake frozen processes; at the start, skip some failed upgrades too.
func (m *mModel) resolve(first bool) {
	if m.store.rollout().Paused || m.store.viewAt(m.store.head()).Hold.Active {
		m.tracef("  drain: %s", m.resume())
	}
	if did := m.approve(); did != "" {
		m.tracef("  drain: %s", did)
	}
	for _, r := range m.reqs {
		if r.proc != nil {
			r.proc.frozenUntil = time.Time{}
		}
		if r.exists && r.sickUntil.After(m.now) {
			r.sickUntil = m.now
		}
		if r.exists && !r.deleting && r.wfFailed != "" && r.proc == nil && r.rerun == nil {
			r.wfFailed = ""
			m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 2*time.Second)))
		}
	}
	if first && m.rng.IntN(3) == 0 {
		if did := m.skip(false); did != "" {
			m.tracef("  drain: %s", did)
		}
	}
}
