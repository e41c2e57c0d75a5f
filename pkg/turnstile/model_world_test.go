package turnstile

// The world of the model-based test (model_test.go): requests, their pipeline processes, their
// apps and health records. What a process does in a step is in model_stages_test.go.

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Timings, scaled down from the defaults but in the same proportions where it matters: the
// lease covers a configure pipeline and a retryAfter pause with room to spare; skew and watch
// delay are small against it.
const (
	mL           = 30 * time.Second // leaseDurationSeconds
	mSkew        = time.Second      // every node's clock is within ±mSkew of true time
	mLag         = 2 * time.Second  // a watch shows the store as of at most mLag ago
	mMaxDt       = 3 * time.Second  // true time between two rounds
	mMinHealthy  = 4 * time.Second  // await --min-healthy
	mFailures    = 2                // await --failure-threshold
	mDeadline    = 60 * time.Second // await --progress-deadline
	mStageWait   = 20 * time.Second // --wait of both stages (when the schedule uses it)
	mRetry       = 5 * time.Second  // --retry-after
	mDeliver     = 3 * time.Second  // a health record lands up to this late, in any order
	mForever     = 1000 * time.Hour
	mBump        = 2                // new Promise versions a schedule may release after v2
	mBackoff     = 4                // failed runs of a pipeline in a row before the workflow fails (Job backoffLimit)
	mGrace       = 10 * time.Second // acquire --wave-grace, when the schedule uses it
	mWaveSoak    = 5 * time.Second  // acquire --wave-soak, when the schedule uses it
	mDrainRounds = 800
)

const (
	stAcquire = iota
	stConfigure
	stAwait
	stLeave
)

var mStageNames = [...]string{"acquire", "configure", "await", "leave"}

// mReq is one resource request (a name; re-creating it makes a new incarnation, a new uid).
type mReq struct {
	name   string
	inc    int
	req    Request
	ticket string // its ticket Lease's name
	exists bool
	// deleting: its delete workflow (Leave) runs; the object is gone when it ends.
	deleting bool
	// st is status.turnstile as the stages and kubectl turnstile write it; installed: a
	// configure workflow completed (lastSuccessfulConfigureWorkflowTime).
	st        rollout.Status
	installed bool
	// The app the request runs, and its health: unhealthy until sickUntil.
	app       string
	sickUntil time.Time
	agentSkew time.Duration
	record    *mRecord  // the record status.healthStatus shows
	pending   []mRecord // records on their way
	nextCheck time.Time
	// Kratix's ConfigureWorkflowCompleted=False/ConfigureWorkflowFailed, and when.
	wfFailed   string
	wfFailedAt time.Time
	proc       *mProc // the running (or frozen) pipeline process
	rerun      *mProc // the next process, to start at rerun.start
	// Bookkeeping for the invariants: upgrading from taking a slot until proved healthy,
	// deleted or left; reclaimed: lost the slot to expiry meanwhile; skipped by an operator.
	upgrading, reclaimed, skipped bool
	lastRenew                     time.Time // true time of its last write renewing its slot
	attemptAt                     time.Time // true time its current attempt began (acquireTime moved)
}

// mTurn is what one turn of Acquire's loop decided on: the view (with the rollout record it
// used), the holder statuses and the process's clock.
type mTurn struct {
	rev       int // the view's revision
	view      View
	holders   map[types.UID]HolderStatus
	following bool
	now       time.Time
}

// mRecord is a health record with what the model knows and the stages cannot: which app the
// check reached, and when (true time).
type mRecord struct {
	rec       health.Record
	app       string
	ranAt     time.Time
	deliverAt time.Time
}

// mProc is one run of one pipeline of a request: a pod, with its own clock skew.
type mProc struct {
	stage       int
	target      string
	start       time.Time
	begun       bool
	faults      int // failed runs of this pipeline in a row: at mBackoff the workflow fails
	clk         *mClock
	t           *Turnstile
	frozenUntil time.Time
	deadline    time.Time // end of acquire's --wait (true time); zero: none
	seen        int       // the revision its watch showed last (0: none yet): a watch never goes back
	// acquire: acq is Acquire's own state, from newAcquiring once past the stage's checks;
	// took the slot its last turn took; wait the place it last reported; since its start.
	since    time.Time
	acq      *acquiring
	took     *Slot
	wait     Wait
	followed []types.UID // the holders its holder tracker follows: they have reported
	// turnedRev is the head after its first turn that lost no race: from then on a view
	// shows its ticket naming the version it waits for.
	turnedRev int
	last      mTurn // what its last turn decided on, for invariant 3
	// configure
	doneAt time.Time
	fail   bool
	// await: the machine; a pass's Release, left for the next step; the record the last reading
	// showed, and the one the machine passed on.
	aw          Await
	release     *AwaitAction
	read, proof *mRecord
}

func (m *mModel) newProc(r *mReq, stage int, target string, after time.Duration) *mProc {
	clk := &mClock{now: &m.now, skew: m.dur(-mSkew, mSkew)}
	return &mProc{stage: stage, target: target, start: m.now.Add(after), clk: clk, t: mTurnstile(m.store, mL, clk)}
}

// schedule makes p the request's next process (replacing the running one, if any).
func (m *mModel) schedule(r *mReq, p *mProc) { r.proc, r.rerun = nil, p }

// next starts the request's next pipeline at once, in a new pod.
func (m *mModel) next(r *mReq, stage int, target string) {
	r.proc, r.rerun = nil, nil
	m.start(r, m.newProc(r, stage, target, 0))
}

func (m *mModel) start(r *mReq, p *mProc) {
	if p.stage == stAcquire && m.p.wait {
		p.deadline = m.now.Add(mStageWait)
	}
	r.proc = p
}

func (m *mModel) gone(r *mReq) {
	r.exists, r.deleting, r.proc, r.rerun = false, false, nil, nil
	r.upgrading, r.reclaimed, r.skipped = false, false, false
}

// world moves what no process does: health checks and their records, Job retries, thaws.
func (m *mModel) world() {
	for _, r := range m.reqs {
		if !r.exists {
			continue
		}
		if r.app != "" && !m.now.Before(r.nextCheck) {
			rec := mRecord{app: r.app, ranAt: m.now, deliverAt: m.now.Add(m.dur(0, mDeliver)),
				rec: health.Record{Source: "default/" + r.name, State: health.StateHealthy, LastRun: m.now.Add(r.agentSkew).Truncate(time.Second)}}
			if m.now.Before(r.sickUntil) {
				rec.rec.State = health.StateUnhealthy
			}
			rec.rec.Details = m.stamp(r)
			r.pending = append(r.pending, rec)
			r.nextCheck = m.now.Add(m.dur(time.Second, 3*time.Second))
		}
		for len(r.pending) > 0 { // land what is due, earliest due first: late ones overwrite
			i := 0
			for j := range r.pending {
				if r.pending[j].deliverAt.Before(r.pending[i].deliverAt) {
					i = j
				}
			}
			if m.now.Before(r.pending[i].deliverAt) {
				break
			}
			rec := r.pending[i]
			r.record = &rec
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
		}
		if r.proc == nil && r.rerun != nil && !m.now.Before(r.rerun.start) {
			p := r.rerun
			r.rerun = nil
			m.start(r, p)
		}
	}
}

func (m *mModel) byUID(uid types.UID) *mReq {
	for _, r := range m.reqs {
		if r.exists && r.req.UID == uid {
			return r
		}
	}
	return nil
}

// heldIndex is the slot the request holds in the store (same identity and uid), or -1.
func (m *mModel) heldIndex(r *mReq) int {
	if s, ok := m.store.viewAt(m.store.head()).HeldBy(r.req); ok {
		return s.Index
	}
	return -1
}

func mContains(uids []types.UID, u types.UID) bool {
	for _, x := range uids {
		if x == u {
			return true
		}
	}
	return false
}
