package turnstile

// The invariants of the model-based test (model_test.go). 1 and 4 are checked after every step
// (check), 2 at every release by a holder (checkRelease), 3 at every take (onTake, checkOrder),
// 5 at the end of the drain (end).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// check is invariants 1 and 4, after every step; 2 and 3 are checked at each release and take.
func (m *mModel) check() {
	if m.fail != "" {
		return
	}
	// (1) Never more than N upgrades holding slots. Requests still upgrading without one are
	// those whose slot was reclaimed after expiry (onTake checks they had stopped renewing for
	// longer than the lease) or skipped by an operator; they are counted, not bounded.
	holding, all, lost := 0, 0, 0
	for _, r := range m.reqs {
		if !r.exists || !r.upgrading {
			continue
		}
		all++
		if r.reclaimed || r.skipped {
			if !r.skipped {
				lost++
			}
			continue
		}
		holding++
		if m.heldIndex(r) < 0 {
			m.violate(1, "%s is upgrading but holds no slot, and its slot was neither reclaimed after expiry nor skipped", r.name)
			return
		}
	}
	if holding > m.p.slots {
		m.violate(1, "%d upgrades hold slots, more than %d", holding, m.p.slots)
	}
	for w, c := range m.p.waveSlots { // --wave-slots: never more of a wave than its cap
		n := 0
		for _, r := range m.reqs {
			if r.exists && r.upgrading && !r.reclaimed && !r.skipped && r.req.Wave == w {
				n++
			}
		}
		if n > c {
			m.violate(1, "%d upgrades of wave %d hold slots, more than its cap %d", n, w, c)
		}
	}
	m.stats.maxConcurrent = max(m.stats.maxConcurrent, all)
	if over := holding + lost - m.p.slots; over > m.stats.maxOver {
		m.stats.maxOver = over
	}
	// (4) Liveness: while a slot is free for everyone, nothing gates, and an eligible waiter
	// runs, a slot is taken within mStallBound of the stall's start, or of the last write of a
	// ticket stuck during the stall (it keeps its place until it expires), if that came later.
	rl := m.store.rollout()
	if rl.Paused || m.store.viewAt(m.store.head()).Hold.Active || m.freeSlots() == 0 || !m.eligible(rl) {
		m.stallStart = time.Time{}
		return
	}
	if m.stallStart.IsZero() {
		m.stallStart, m.stallSteps, m.stallDead, m.stallStuck = m.now, 0, false, time.Time{}
	}
	m.stallSteps++
	stuck, written := m.stuckTicket()
	m.stallDead, m.stallStuck = m.stallDead || stuck, later(m.stallStuck, written)
	if d := m.now.Sub(m.stallStart); d > mStallBound && m.now.Sub(m.stallStuck) > mStallBound {
		m.violate(4, "a slot has been free with a waiter eligible for %s (%d steps), over the bound %s", d, m.stallSteps, mStallBound)
	}
}

// freeSlots counts the slots that every waiter, whatever its clock, sees free.
func (m *mModel) freeSlots() int {
	view := m.store.viewAt(m.store.head())
	// --wave-slots: while a capped wave has requests upgrading or in line, only its cap's
	// slots are anyone's to take.
	first := -1
	for _, s := range view.Slots {
		if s.Held() && (first < 0 || s.Wave < first) {
			first = s.Wave
		}
	}
	for _, t := range view.Tickets {
		if t.Live(m.now.Add(-mSkew)) && (first < 0 || t.Wave < first) {
			first = t.Wave
		}
	}
	lim := m.p.slots
	for w, c := range m.p.waveSlots {
		if w >= first {
			lim = min(lim, c)
		}
	}
	for _, s := range view.Slots[lim:] {
		// An upgrade under way beyond the limit finishes before anyone takes a slot.
		if s.Held() && m.byUID(s.HolderUID) != nil && (s.Phase == PhaseFailed || s.RenewTime.Add(s.Duration+mSkew).After(m.now)) {
			return 0
		}
	}
	n := 0
	for _, s := range view.Slots[:lim] {
		h := m.byUID(s.HolderUID)
		switch {
		case !s.Held() || h == nil:
			n++
		case s.Phase == PhaseFailed || m.truthStatus(s.HolderUID).failedDuring(s):
		case !s.RenewTime.Add(s.Duration + mSkew).After(m.now):
			n++
		}
	}
	return n
}

// eligible: some request's acquire is running, not frozen, and nothing gates its wave.
func (m *mModel) eligible(rl Rollout) bool {
	for _, r := range m.reqs {
		p := r.proc
		if !r.exists || r.deleting || p == nil || p.stage != stAcquire || p.acq == nil || p.took != nil ||
			m.now.Before(p.frozenUntil) || rl.AbortedVersion == p.target || (!p.deadline.IsZero() && !m.now.Before(p.deadline)) {
			continue
		}
		gates := rl
		if rl.Target != p.target { // its first step records the target, with no wave approved yet
			gates = Rollout{ApprovalWaves: m.p.approval}
		}
		if _, gated := gates.NeedsApproval(r.req.Wave); gated {
			continue
		}
		// --wave-grace: an earlier wave's request expected and not arrived holds it back until
		// the grace after the rollout started (by any clock) is over.
		if _, waits := earliestWave(arrived(slices.Clone(p.acq.expected), m.store.viewAt(m.store.head()), p.target), r.req.Wave); waits &&
			m.p.grace > 0 && m.now.Before(rl.Started.Add(m.p.grace+2*mSkew+time.Second)) {
			continue
		}
		// --wave-soak: an earlier wave upgrading or in line, or released less than the soak
		// ago (by any clock), holds it back. Judged without the holders followed: a deleted
		// holder counts as upgrading, which only ever excuses a stall, never flags one.
		if m.soaks(r, p.target) {
			continue
		}
		return true
	}
	return false
}

// checkSoak is invariant 3 for --wave-soak: no request takes a slot while a request of an
// earlier wave is upgrading, once the taker's watch must have shown that (its attempt began
// over mLag ago, by any clock), unless the view it decided on showed that slot gone quiet past
// its lease (to any clock): such a holder is passed over as a reclaim would pass it.
func (m *mModel) checkSoak(r *mReq, p *mProc, got Slot) {
	if m.p.waveSoak == 0 {
		return
	}
	for _, o := range m.reqs {
		if o == r || !o.exists || o.deleting || !o.upgrading || o.reclaimed || o.skipped || o.req.Wave >= r.req.Wave ||
			m.now.Sub(o.attemptAt) <= mLag+2*mSkew {
			continue
		}
		if s, seen := p.last.view.HeldBy(o.req); !seen || (s.Phase != PhaseFailed && !s.RenewTime.Add(s.Duration-2*mSkew).After(m.now)) {
			continue
		}
		m.violate(3, "%s (wave %d) took %s while %s (wave %d) had been upgrading for %s, with a soak between waves",
			r.name, r.req.Wave, got.Name, o.name, o.req.Wave, m.now.Sub(o.attemptAt))
	}
}

// checkWaveSlots is invariant 3 for --wave-slots: no request takes a slot beside a request of
// an earlier capped wave that its view showed upgrading (live, and not known to be deleted), once
// the cap is full.
func (m *mModel) checkWaveSlots(r *mReq, p *mProc, got Slot) {
	for w, c := range m.p.waveSlots {
		if w >= r.req.Wave {
			continue
		}
		busy := 0
		for _, s := range p.last.view.Slots {
			if s.Held() && s.Wave <= w && s.HolderUID != r.req.UID && !p.last.holders[s.HolderUID].Gone && (s.Phase == PhaseFailed || !s.Expired(p.last.now)) {
				busy++
			}
		}
		if busy >= c {
			m.violate(3, "%s (wave %d) took %s while its view showed %d upgrade(s) of waves up to %d, capped at %d",
				r.name, r.req.Wave, got.Name, busy, w, c)
		}
	}
}

// soaks: the soak between waves holds r back, as decide would see the store now.
func (m *mModel) soaks(r *mReq, target string) bool {
	if m.p.waveSoak == 0 {
		return false
	}
	view := m.store.viewAt(m.store.head())
	queue := slices.DeleteFunc(view.Queue(m.now.Add(-mSkew)), func(t Ticket) bool { return t.Holder == r.req.Identity() })
	in := decideInput{promise: mPromise, view: view, me: r.req, target: target, now: m.now.Add(-mSkew - time.Second), waveSoak: m.p.waveSoak}
	_, _, held := waveSoaking(in, queue)
	return held
}

// stuckTicket: whether the store has a live ticket that no process of its request will act on
// soon (its request gone, its process frozen, or none running or due), and the latest true
// time such a ticket was written. Such a ticket keeps its place in the queue until it expires.
func (m *mModel) stuckTicket() (stuck bool, written time.Time) {
	for _, t := range m.store.viewAt(m.store.head()).Tickets {
		o := m.byUID(t.UID)
		if !t.Live(m.now.Add(-mSkew)) || o != nil && (o.proc != nil && !m.now.Before(o.proc.frozenUntil) || o.proc == nil && o.rerun != nil) {
			continue
		}
		rev, _ := strconv.Atoi(t.Lease.ResourceVersion)
		stuck, written = true, later(written, m.store.revs[rev].at)
	}
	return stuck, written
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// onTake checks a successful take against invariants 1 (reclaim) and 3 (order, approval):
// prev is the slot's Lease as the take found it, ticket the request's ticket Lease before the
// turn (the turn that takes deletes it).
func (m *mModel) onTake(r *mReq, p *mProc, reentered bool, prev, ticket *coordinationv1.Lease, got Slot) {
	m.stats.takes++
	if !m.stallStart.IsZero() {
		stall := m.now.Sub(m.stallStart)
		m.stats.stalls++
		m.stats.maxStall, m.stats.maxStallSteps = max(m.stats.maxStall, stall), max(m.stats.maxStallSteps, m.stallSteps)
		if m.stallDead {
			m.stats.deadStalls++
			m.stats.maxDeadStall, m.stats.maxDeadStallSteps = max(m.stats.maxDeadStall, stall), max(m.stats.maxDeadStallSteps, m.stallSteps)
		}
		m.stallStart = time.Time{}
	}
	old := slotFrom(mPromise, got.Index, prev)
	for i, l := range m.prev { // (1) one request, one slot
		if s := slotFrom(mPromise, i, l); i != got.Index && s.Held() && s.HolderUID == r.req.UID {
			m.violate(1, "%s took %s while it held %s", r.name, got.Name, s.Name)
		}
	}
	if !reentered {
		if ticket == nil || ticketFrom(ticket).UID != r.req.UID {
			m.violate(3, "%s took %s with no ticket of its own on record", r.name, got.Name)
		}
		if h := m.byUID(old.HolderUID); old.Held() && h != nil && h != r {
			// (1) Reclaimed from a request that exists: only after it stopped renewing for
			// longer than the lease (less the skew of two clocks), never from a failed upgrade.
			gap := m.now.Sub(h.lastRenew)
			m.stats.reclaims++
			if m.stats.minReclaimGap == 0 || gap < m.stats.minReclaimGap {
				m.stats.minReclaimGap = gap
			}
			m.tracef("  reclaimed %s from %s, which last renewed %s ago (upgrading: %v)", got.Name, h.name, gap, h.upgrading)
			switch {
			case gap < mL-2*mSkew:
				m.violate(1, "%s reclaimed %s from %s, which renewed it %s ago (lease %s)", r.name, got.Name, h.name, gap, mL)
			case old.Phase == PhaseFailed || (HolderStatus{WorkflowFailed: h.wfFailed, FailedAt: h.wfFailedAt}).failedDuring(old):
				_, reported := p.last.holders[old.HolderUID]
				m.violate(1, "%s reclaimed %s from %s, whose upgrade had failed (phase %q, workflow failed: %q, reported to the taker: %v): a failed upgrade keeps its slot",
					r.name, got.Name, h.name, old.Phase, h.wfFailed, reported)
			}
			h.reclaimed = h.upgrading
		}
		m.checkOrder(r, p)
		m.checkSoak(r, p, got)
		m.checkWaveSlots(r, p, got)
		if rl := m.store.rollout(); rl.Target == p.target {
			if w, gated := rl.NeedsApproval(r.req.Wave); gated {
				m.violate(3, "%s (wave %d) took %s for %s before wave %d was approved (approval waves %v, approved %v), deciding on the rollout record of %q",
					r.name, r.req.Wave, got.Name, p.target, w, rl.ApprovalWaves, rl.Approved, p.last.view.Rollout.Target)
			}
		}
	}
	if !reentered || !old.AcquireTime.Equal(got.AcquireTime) {
		r.attemptAt = m.now
	}
	r.upgrading, r.reclaimed, r.skipped, r.lastRenew = true, false, false, m.now
}

// checkOrder is invariant 3: no lower-wave waiter present in the taker's view and live is
// passed: each of them still has a free slot. Present and live by the model's truth: its ticket
// is in the view and live, its request exists, holds no slot, and waits for a version that is
// not aborted. A ticket that still names the aborted version counts once the waiter's acquire
// has had a turn that the view shows (that turn rewrites it); before, the waiter has not come
// back to the queue yet (--wave-grace is what waits for it). Such passes, and those of waiters
// the watch did not show yet, are counted, the latter with how long their ticket had been
// written.
func (m *mModel) checkOrder(r *mReq, p *mProc) {
	in := p.last
	// The tickets are the store's at the view's revision, not the view's: a waiter watches only
	// what its selections name, and a ticket ahead they hid would be a defect, not watch lag.
	full := m.store.viewAt(in.rev)
	aborted := in.view.Rollout.AbortedVersion
	ahead, mistagged := 0, 0
	for _, t := range full.Tickets {
		o := m.byUID(t.UID)
		if o == nil || o == r || o.req.Wave >= r.req.Wave || !t.Live(in.now) {
			continue
		}
		if _, holds := full.HeldBy(o.req); holds {
			continue
		}
		if wants := m.waitsFor(o); wants != "" && wants != aborted {
			if t.Version == aborted { // decide drops it as a ticket of the aborted version
				if q := o.proc; q == nil || q.stage != stAcquire || q.turnedRev == 0 || in.rev < q.turnedRev {
					m.stats.requeuePasses++
					m.tracef("  (%s's wave-%d ticket in the view still names the aborted %s: its acquire has not re-queued it yet)", o.name, o.req.Wave, aborted)
					continue
				}
				mistagged++
			}
			ahead++
		}
	}
	free := 0
	for _, s := range in.view.Slots {
		st, known := in.holders[s.HolderUID]
		switch {
		case s.Index >= m.p.slots:
		case !s.Held() || st.Gone:
			free++
		case st.failedDuring(s) || s.Phase == PhaseFailed:
		case s.Expired(in.now) && (known || s.HolderUID == "" || !in.following):
			free++
		}
	}
	if ahead >= free {
		m.violate(3, "%s (wave %d) took a slot past %d lower-wave waiter(s) in its view with %d slot(s) free (%d of them on a ticket still naming the aborted %s)",
			r.name, r.req.Wave, ahead, free, mistagged, aborted)
	}
	for _, o := range m.reqs {
		l := m.store.lease(o.ticket)
		if o == r || !o.exists || o.req.Wave >= r.req.Wave || l == nil || m.heldIndex(o) >= 0 {
			continue
		}
		t := ticketFrom(l)
		if wants := m.waitsFor(o); t.UID != o.req.UID || !t.Live(in.now) || wants == "" || wants == aborted {
			continue
		}
		if vt, ok := full.TicketOf(mPromise, o.req); ok && vt.UID == o.req.UID && vt.Live(in.now) {
			continue
		}
		rev, _ := strconv.Atoi(l.ResourceVersion)
		age := m.now.Sub(m.store.revs[rev].at) // since this version of the ticket was written
		m.stats.lagPasses++
		m.stats.maxLagAge = max(m.stats.maxLagAge, age)
		m.tracef("  (watch lag: %s's wave-%d ticket, written %s ago, was not in the view, or not live there)", o.name, o.req.Wave, age)
	}
}

// waitsFor is the version a request's acquire waits for (running, or run again after
// retryAfter), or "".
func (m *mModel) waitsFor(o *mReq) string {
	for _, q := range []*mProc{o.proc, o.rerun} {
		if q != nil && q.stage == stAcquire {
			return q.target
		}
	}
	return ""
}

// checkRelease is invariant 2: a holder releases its slot only on a fresh healthy reading
// that the model knows came from the target version's app.
func (m *mModel) checkRelease(r *mReq, p *mProc, slot int) {
	rec := p.proof
	switch {
	case rec != nil && rec.app == p.target && rec.rec.State == health.StateHealthy && !rec.ranAt.Before(r.attemptAt.Add(-2*mSkew)):
	case m.p.unstamped && rec != nil && rec.app != p.target && !rec.ranAt.Before(r.attemptAt.Add(-2*mSkew)):
		// A known limit of freshness by time (health.Freshness): a check whose record names no
		// version, run after the slot was taken, may still have reached the old app. Counted.
		m.stats.oldAppReleases++
		m.tracef("  (known limit: released on an unstamped reading of the %s app)", rec.app)
	default:
		m.violate(2, "%s released slot-%d for %s on %s", r.name, slot, p.target, m.describeRecord(rec))
	}
}

func (m *mModel) describeRecord(rec *mRecord) string {
	if rec == nil {
		return "no health record"
	}
	return fmt.Sprintf("a %s record (lastRun %s, stamped %v) of the %s app, checked at %s", rec.rec.State,
		m.ts(rec.rec.LastRun), rec.rec.Details[health.VersionKey], rec.app, m.ts(rec.ranAt))
}

// ended is invariant 5's condition: every request finished, failed holding its slot, skipped,
// deleted, or waiting for a version whose rollout was aborted.
func (m *mModel) ended() bool {
	rl := m.store.rollout()
	for _, r := range m.reqs {
		if m.end(r, rl) == "" {
			return false
		}
	}
	return true
}

func (m *mModel) unended() string {
	var out []string
	rl := m.store.rollout()
	for _, r := range m.reqs {
		if e := m.end(r, rl); e == "" {
			out = append(out, fmt.Sprintf("%s: status %s for %s, slot %d, process %v, workflow failed %q", r.name, r.st.Phase, r.st.Version,
				m.heldIndex(r), r.proc != nil || r.rerun != nil, r.wfFailed))
		}
	}
	return strings.Join(out, "; ")
}

func (m *mModel) end(r *mReq, rl Rollout) string {
	idle, slot := r.proc == nil && r.rerun == nil, m.heldIndex(r)
	switch {
	case !r.exists && !r.deleting:
		return "deleted"
	case idle && slot < 0 && r.st.Phase == rollout.PhaseUpgraded && r.st.Version == m.version:
		return "finished"
	case idle && slot >= 0 && m.store.slotAt(slot).Phase == PhaseFailed:
		return "failed, holding"
	case idle && slot < 0 && r.st.Phase == rollout.PhaseSkipped:
		return "skipped"
	case rl.AbortedVersion == m.version && slot < 0 && (r.st.Phase != rollout.PhaseUpgraded || r.st.Version != m.version):
		return "aborted version"
	}
	return ""
}
