package turnstile

// Mutants of the model-based test (model_test.go). Each puts back, by what it hands Acquire's
// turn, a defect the turn has been fixed of. The regression seeds of testdata/model-seeds.txt
// that name a mutant are the schedules that showed its defect: TestModelMutants checks that
// with the defect put back they still fail, that is, that they still reach the situation the
// fix is for (a change to the model or to the code may steer a seed away from it; then find
// another seed with -model.mutant).
//
//	go test ./pkg/turnstile -run 'TestModel$' -model.mutant=NAME               # which seeds fail
//	go test ./pkg/turnstile -run 'TestModel$' -model.mutant=NAME -model.seed=N -v

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

var mFlagMutant = flag.String("model.mutant", "", "TestModel: put a fixed defect back (one of mMutants)")

var mMutants = map[string]string{
	"unknown-failed-holder": "decide as if the holders were not followed: an expired slot whose holder has not been " +
		"heard from is free, even if the holder's workflow failed",
	"aborted-version-ticket": "keep the request's ticket as the watch shows it, still naming another (an aborted) " +
		"version, until its renewal L/3 later",
	"wave-cap-own-wave": "apply --wave-slots to the waiter's own wave only: a later wave starts beside a capped " +
		"earlier one still upgrading",
	"first-look-take": "decide a take on a first look, which shows no ticket but the waiter's own: a re-run whose " +
		"ticket is still queued passes everyone ahead of it",
}

// mutate is the mutant's change to a turn's view, and whether the holders are followed; skip
// is true when the mutant's Acquire would not decide in this turn at all.
func (m *mModel) mutate(p *mProc, view View) (_ View, following, skip bool) {
	a := p.acq
	switch m.mutant {
	case "unknown-failed-holder":
		return view, false, false
	case "wave-cap-own-wave":
		if c, ok := view.Rollout.WaveSlots[a.req.Wave]; ok {
			view.Rollout.WaveSlots = map[int]int{a.req.Wave: c}
		} else {
			view.Rollout.WaveSlots = nil
		}
	case "aborted-version-ticket":
		if i := slices.IndexFunc(view.Tickets, func(t Ticket) bool { return t.Name == TicketName(mPromise, a.req) }); i >= 0 &&
			view.Tickets[i].UID == a.req.UID && view.Tickets[i].Version != p.target {
			view.Tickets = slices.Clone(view.Tickets)
			view.Tickets[i].Version = p.target
		}
	}
	return view, true, false
}

// TestModelMutants: each regression seed that names a mutant fails with its defect put back.
func TestModelMutants(t *testing.T) {
	seeds, notes := mRegressionSeeds(t)
	shown := map[string]bool{}
	for i, seed := range seeds {
		name, _, _ := strings.Cut(notes[i], ":")
		if _, ok := mMutants[name]; !ok {
			continue
		}
		shown[name] = true
		m := newModel(seed, false)
		m.mutant = name
		m.run()
		if m.fail == "" {
			t.Errorf("seed %d no longer shows %s with that defect put back: find another with -model.mutant=%s", seed, name, name)
		} else {
			t.Logf("seed %d, mutant %s: %s", seed, name, m.fail)
		}
	}
	for name := range mMutants {
		if !shown[name] {
			t.Errorf("mutant %s has no regression seed in testdata/model-seeds.txt", name)
		}
	}
}
