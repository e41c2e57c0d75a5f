package turnstile

// TestModel is a model-based test of the turnstile protocol. Each seed makes a random
// schedule: 2–5 requests in waves 0–2 upgrade from v1 through a turnstile of 1–3 slots, while
// their pipeline processes are killed, frozen and re-run, requests are deleted and re-created,
// Promise versions are released, and an operator pauses, resumes, aborts, approves, skips and
// heals at random moments. Each acquire process runs the package's own turn of Acquire's loop
// on a stale watch of the store (never older than mLag, but maybe older than its own writes),
// and every process writes with the package's own writers against a simulated apiserver. The
// invariants are checked after every step; then a drain (no more trouble; the operator
// resolves what is left) must bring every request to an end. Any violation fails. The files:
//
//	model_test.go             the runner, flags, figures
//	model_invariants_test.go  the five invariants
//	model_stages_test.go      a process step: acquire (a turn of Acquire's loop), configure, await, leave
//	model_world_test.go       requests, processes, apps and their health records
//	model_events_test.go      Kratix's, the cluster's and the operator's moves, and the drain
//	model_store_test.go       the Lease store (compare-and-swap, revisions for stale watches)
//	model_mutants_test.go     fixed defects put back, to check the regression seeds still reach them
//	testdata/model-seeds.txt  seeds run every time
//
//	go test ./pkg/turnstile -run 'TestModel$'                          # 10,000 schedules
//	go test ./pkg/turnstile -run 'TestModel$' -model.schedules=200000
//	go test ./pkg/turnstile -run 'TestModel$' -model.seed=N -v         # replay one, with its trace

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

var (
	mFlagSchedules = flag.Int("model.schedules", 10000, "TestModel: how many random schedules to run")
	mFlagFirst     = flag.Uint64("model.first", 1, "TestModel: the first schedule's seed")
	mFlagSeed      = flag.Uint64("model.seed", 0, "TestModel: replay this one schedule and print its trace")
	mFlagWorkers   = flag.Int("model.workers", 0, "TestModel: schedules run at once (0: GOMAXPROCS)")
)

const mPromise = "db"

var mT0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// mStallBound bounds how long a free slot may go untaken while an eligible waiter runs: a stuck
// ticket (its request deleted without its delete workflow, or its process frozen) keeps its
// place until it expires, mL after its last renewal as the slowest clock sees it; then the
// waiter's next turns (one to queue, one to take) follow within a few rounds. One waiter ahead
// may get stuck after another: the bound counts from the last such ticket's last write.
const mStallBound = mL + 2*mSkew + mLag + 3*mMaxDt

// mParams is the shape of one schedule, drawn from its seed.
type mParams struct {
	slots, requests int
	approval        []int         // acquire --require-approval-waves
	wait            bool          // acquire waits --wait, then retryAfter (else it blocks)
	gateNew         bool          // --gate-new-requests
	grace           time.Duration // acquire --wave-grace
	waveSoak        time.Duration // acquire --wave-soak
	waveSlots       map[int]int   // acquire --wave-slots
	unstamped       bool          // health records carry no version
	rounds          int           // rounds of trouble before the drain
	rate            float64
}

type mModel struct {
	p       mParams
	seed    uint64
	rng     *rand.Rand
	t0, now time.Time
	store   *mStore
	op      *Turnstile // the operator's kubectl turnstile (clock unskewed)
	reqs    []*mReq
	version string // the Promise's version: every request's target
	bumps   int
	drain   bool
	stamps  map[string]map[string]any
	steps   int
	// the liveness watch: when the current stall began, its steps, whether a stuck ticket was in
	stallStart time.Time
	stallSteps int
	stallDead  bool
	stallStuck time.Time // the last write of a ticket stuck during the stall
	fail       string
	tracing    bool
	trace      []string
	stats      *mStats
	prev       []*coordinationv1.Lease // the slot Leases before an acquire turn (scratch)
	mutant     string                  // a fixed defect put back (model_mutants_test.go)
}

// mStats are figures summed over schedules, reported by TestModel.
type mStats struct {
	schedules, steps, takes, reclaims, lagPasses, requeuePasses, stalls, deadStalls, oldAppReleases int
	maxConcurrent, maxStallSteps, maxDeadStallSteps, writes, lost, maxOver, overs                   int
	minReclaimGap, maxLagAge, maxStall, maxDeadStall, modelTime                                     time.Duration
	errors, ends                                                                                    map[string]int
	errorSeed                                                                                       map[string]uint64 // the lowest seed of each error
}

func newMStats() *mStats {
	return &mStats{errors: map[string]int{}, ends: map[string]int{}, errorSeed: map[string]uint64{}}
}

func newModel(seed uint64, tracing bool) *mModel {
	rng := rand.New(rand.NewPCG(seed, 0x7475726e7374696c))
	m := &mModel{seed: seed, rng: rng, t0: mT0, now: mT0, version: "v2", tracing: tracing, mutant: *mFlagMutant,
		stamps: map[string]map[string]any{}, stats: newMStats()}
	p := &m.p
	p.slots = []int{1, 1, 1, 2, 2, 3}[rng.IntN(6)]
	p.requests = 2 + rng.IntN(4)
	switch rng.IntN(10) {
	case 0, 1, 2:
		p.approval = []int{1}
	case 3:
		p.approval = []int{1, 2}
	}
	p.wait, p.gateNew, p.unstamped = rng.IntN(10) >= 3, rng.IntN(2) == 0, rng.IntN(8) == 0
	p.rounds, p.rate = 20+rng.IntN(60), 0.02+0.1*rng.Float64()
	if rng.IntN(2) == 0 {
		p.grace = mGrace
	}
	// From the seed, not the random stream: every schedule draws what it drew before the soak.
	if seed%3 == 0 {
		p.waveSoak = mWaveSoak
	}
	if seed%4 == 1 && p.slots > 1 {
		p.waveSlots = map[int]int{0: 1} // the canary wave one at a time
	}
	m.store = newMStore(mPromise, p.slots, func() time.Time { return m.now })
	m.prev = make([]*coordinationv1.Lease, p.slots)
	m.op = mTurnstile(m.store, mL, &mClock{now: &m.now})
	for i := range p.requests {
		r := &mReq{name: "r" + strconv.Itoa(i), exists: true, installed: true, app: "v1", agentSkew: m.dur(-mSkew, mSkew),
			st: rollout.Status{Phase: rollout.PhaseUpgraded, Version: "v1", Since: m.now}}
		r.req, r.ticket = mRequest(r.name, 0, rng.IntN(3)), TicketName(mPromise, mRequest(r.name, 0, 0))
		m.reqs = append(m.reqs, r)
		m.schedule(r, m.newProc(r, stAcquire, m.version, m.dur(0, 3*time.Second)))
	}
	m.tracef("seed %d: %d slot(s), requests %s, approval %v, wait %v, grace %s, wave soak %s, wave slots %v, gateNew %v, unstamped %v, %d rounds of trouble",
		seed, p.slots, m.roster(), p.approval, p.wait, p.grace, p.waveSoak, p.waveSlots, p.gateNew, p.unstamped, p.rounds)
	return m
}

func mRequest(name string, inc, wave int) Request {
	return Request{GroupVersionResource: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "databases"},
		Kind: "Database", Namespace: "default", Name: name, UID: types.UID(name + "-" + strconv.Itoa(inc)), Wave: wave}
}

// run plays the schedule to its end, or to its first violation.
func (m *mModel) run() {
	drainAt := 0
	for round := 0; m.fail == ""; round++ {
		if !m.drain && round >= m.p.rounds {
			m.drain, drainAt = true, round
			m.tracef("#%d t=%s drain: no more trouble; the operator resolves what is left", m.steps, m.ts(m.now))
			m.resolve(true)
		}
		if m.drain {
			if m.ended() {
				break
			}
			if round-drainAt > mDrainRounds {
				m.violate(5, "the drain did not end after %d rounds: %s", mDrainRounds, m.unended())
				break
			}
			m.resolve(false)
		}
		m.now = m.now.Add(m.dur(0, mMaxDt))
		m.world()
		for _, i := range m.rng.Perm(len(m.reqs)) {
			if m.fail != "" {
				break
			}
			if !m.drain && m.rng.Float64() < m.p.rate {
				m.steps++
				m.event()
				m.check()
			}
			r := m.reqs[i]
			if p := r.proc; p != nil && !m.now.Before(p.frozenUntil) {
				m.steps++
				if m.tracing {
					m.tracef("#%d t=%s %s (%s, wave %d) %s, skew %s:", m.steps, m.ts(m.now), r.name, r.req.UID, r.req.Wave, mStageNames[p.stage], p.clk.skew)
				}
				m.step(r)
				m.check()
			}
		}
	}
	if m.fail == "" {
		rl := m.store.rollout()
		for _, r := range m.reqs {
			m.stats.ends[m.end(r, rl)]++
		}
	}
	m.stats.schedules, m.stats.steps, m.stats.modelTime = 1, m.steps, m.now.Sub(m.t0)
	m.stats.writes, m.stats.lost = m.store.writes, m.store.lost
}

func (m *mModel) violate(inv int, format string, args ...any) {
	if m.fail == "" {
		m.fail = fmt.Sprintf("invariant %d at step %d (t=%s): ", inv, m.steps, m.ts(m.now)) + fmt.Sprintf(format, args...)
	}
}

func (m *mModel) tracef(format string, args ...any) {
	if m.tracing {
		m.trace = append(m.trace, fmt.Sprintf(format, args...))
	}
}

func (m *mModel) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(m.rng.Int64N(int64((hi-lo)/time.Millisecond)+1))*time.Millisecond
}

func (m *mModel) ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%.3fs", t.Sub(m.t0).Seconds())
}

func (m *mModel) roster() string {
	var s []string
	for _, r := range m.reqs {
		s = append(s, fmt.Sprintf("%s:w%d", r.name, r.req.Wave))
	}
	return strings.Join(s, " ")
}

func mErrKind(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// mReplay runs a schedule with its trace and returns the trace's last n lines (all, n <= 0).
func mReplay(seed uint64, n int) string {
	m := newModel(seed, true)
	m.run()
	lines := m.trace
	if n > 0 && len(lines) > n {
		lines = append([]string{lines[0], fmt.Sprintf("… (%d lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	out := strings.Join(lines, "\n") + "\nstore: " + m.store.describe(m.now)
	if m.fail != "" {
		out += fmt.Sprintf("\nVIOLATION %s\nreplay: %s", m.fail, mReplayCommand(seed))
	}
	return out
}

func TestModel(t *testing.T) {
	if *mFlagSeed != 0 {
		out := mReplay(*mFlagSeed, 0)
		t.Log("\n" + out)
		if strings.Contains(out, "\nVIOLATION ") {
			t.Fail()
		}
		return
	}
	if _, ok := mMutants[*mFlagMutant]; *mFlagMutant != "" && !ok {
		t.Fatalf("-model.mutant=%s: no such mutant", *mFlagMutant)
	}
	seeds, _ := mRegressionSeeds(t)
	n := *mFlagSchedules
	if testing.Short() {
		n = min(n, 1000)
	}
	for i := range n {
		seeds = append(seeds, *mFlagFirst+uint64(i))
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400)) // many small schedules: collect less often
	workers := *mFlagWorkers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	total, failures := newMStats(), []mFailure{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan uint64)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				m := newModel(seed, false)
				m.run()
				mu.Lock()
				total.add(m.stats)
				if m.fail != "" {
					failures = append(failures, mFailure{seed, m.fail})
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range seeds {
		next <- s
	}
	close(next)
	wg.Wait()
	total.report(t, time.Since(start))
	// Every failing seed in one line each; the traces of the first three.
	slices.SortFunc(failures, func(a, b mFailure) int { return cmp.Compare(a.seed, b.seed) })
	for _, f := range failures {
		t.Errorf("seed %d: %s\n\treplay: %s", f.seed, f.fail, mReplayCommand(f.seed))
	}
	for _, f := range failures[:min(len(failures), 3)] {
		t.Logf("failing schedule:\n%s", mReplay(f.seed, 40))
	}
}

func mReplayCommand(seed uint64) string {
	mutant := ""
	if *mFlagMutant != "" {
		mutant = " -model.mutant=" + *mFlagMutant
	}
	return fmt.Sprintf("go test ./pkg/turnstile -run 'TestModel$' -model.seed=%d%s -v", seed, mutant)
}

type mFailure struct {
	seed uint64
	fail string
}

// TestModelDeterministic: a seed replays the same schedule, or a replayed trace would not be
// the schedule that failed.
func TestModelDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		a, b := newModel(seed, true), newModel(seed, true)
		a.run()
		b.run()
		if !slices.Equal(a.trace, b.trace) || a.store.head() != b.store.head() {
			t.Fatalf("seed %d: two runs differ (%d and %d trace lines)", seed, len(a.trace), len(b.trace))
		}
	}
}

// mRegressionSeeds reads testdata/model-seeds.txt: one seed a line, # comments; notes[i] is
// the comment on seeds[i]'s line.
func mRegressionSeeds(t *testing.T) (seeds []uint64, notes []string) {
	f, err := os.Open("testdata/model-seeds.txt")
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, note, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			s, err := strconv.ParseUint(line, 10, 64)
			if err != nil {
				t.Fatalf("testdata/model-seeds.txt: %v", err)
			}
			seeds, notes = append(seeds, s), append(notes, strings.TrimSpace(note))
		}
	}
	return seeds, notes
}

func (s *mStats) add(o *mStats) {
	s.schedules += o.schedules
	s.steps += o.steps
	s.takes += o.takes
	s.reclaims += o.reclaims
	s.lagPasses += o.lagPasses
	s.requeuePasses += o.requeuePasses
	s.stalls += o.stalls
	s.deadStalls += o.deadStalls
	s.oldAppReleases += o.oldAppReleases
	s.writes += o.writes
	s.lost += o.lost
	s.modelTime += o.modelTime
	s.maxConcurrent, s.maxOver = max(s.maxConcurrent, o.maxConcurrent), max(s.maxOver, o.maxOver)
	if o.maxOver > 0 {
		s.overs++
	}
	s.maxStallSteps, s.maxDeadStallSteps = max(s.maxStallSteps, o.maxStallSteps), max(s.maxDeadStallSteps, o.maxDeadStallSteps)
	s.maxLagAge, s.maxStall, s.maxDeadStall = max(s.maxLagAge, o.maxLagAge), max(s.maxStall, o.maxStall), max(s.maxDeadStall, o.maxDeadStall)
	if o.reclaims > 0 && (s.minReclaimGap == 0 || o.minReclaimGap < s.minReclaimGap) {
		s.minReclaimGap = o.minReclaimGap
	}
	for k, v := range o.errors {
		s.errors[k] += v
		if seed, ok := s.errorSeed[k]; !ok || o.errorSeed[k] < seed {
			s.errorSeed[k] = o.errorSeed[k]
		}
	}
	for k, v := range o.ends {
		s.ends[k] += v
	}
}

func (s *mStats) report(t *testing.T, took time.Duration) {
	t.Logf("%d schedules in %s: %.0f schedules/s, %d steps (%.0f a schedule, %.0f steps/s), %s of model time a schedule",
		s.schedules, took.Round(time.Millisecond), float64(s.schedules)/took.Seconds(), s.steps,
		float64(s.steps)/float64(max(s.schedules, 1)), float64(s.steps)/took.Seconds(), (s.modelTime / time.Duration(max(s.schedules, 1))).Round(time.Second))
	t.Logf("takes %d; lease writes %d, lost races %d; most upgrades at once (with reclaimed and skipped) %d",
		s.takes, s.writes, s.lost, s.maxConcurrent)
	t.Logf("slots reclaimed by expiry from live requests: %d, after at least %s without renewal (lease %s, skew ±%s); "+
		"upgrades beyond N at once because of it: up to %d, in %d schedule(s)", s.reclaims, s.minReclaimGap, mL, mSkew, s.maxOver, s.overs)
	t.Logf("stalls (slot free, waiter eligible) ended by a take: %d, longest %s / %d steps; with a stuck ticket queued: %d, longest %s / %d steps (bound %s)",
		s.stalls, s.maxStall, s.maxStallSteps, s.deadStalls, s.maxDeadStall, s.maxDeadStallSteps, mStallBound)
	t.Logf("takes past a lower-wave waiter whose ticket (or its renewal) the taker's watch did not show yet: %d, written at most %s before (watch delay ≤ %s)",
		s.lagPasses, s.maxLagAge, mLag)
	t.Logf("takes past a lower-wave waiter whose ticket in the view still named the aborted version, before its acquire re-queued it: %d", s.requeuePasses)
	t.Logf("releases on an unversioned reading of the old app (known limit): %d", s.oldAppReleases)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range s.ends {
			if !yield(k) {
				return
			}
		}
	})
	var ends []string
	for _, k := range keys {
		ends = append(ends, fmt.Sprintf("%s %d", k, s.ends[k]))
	}
	t.Logf("requests at the end: %s", strings.Join(ends, ", "))
	for k, v := range s.errors {
		t.Logf("stage error %q: %d (first seed %d)", k, v, s.errorSeed[k])
	}
}
