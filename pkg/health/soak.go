package health

import (
	"fmt"
	"time"
)

// Soak decides, reading by reading, when an upgrade has proved healthy or has failed.
//
//   - It passes once readings have been Good without a break for MinHealthy (a soak, like a
//     Deployment's minReadySeconds). Any other reading restarts the soak.
//   - It fails after FailureThreshold Bad readings in a row, counting each distinct reading once,
//     or when nothing has passed by Deadline.
//
// A Soak that failed can still pass later: a request that recovers is let through.
type Soak struct {
	MinHealthy       time.Duration
	FailureThreshold int
	Deadline         time.Time

	healthySince time.Time
	failures     int
	lastKey      string
}

// Verdict is the Soak's state after a reading.
type Verdict struct {
	Passed bool
	Failed bool
	// PassAt is when the soak completes if readings stay Good; zero when not soaking.
	PassAt time.Time
	// Message says where the gate stands, in one line.
	Message string
}

// Restore carries the failure count and the last reading over from an earlier run of the
// same upgrade, so that readings in a row span runs. The soak is not carried over: what
// happened between runs was not watched.
func (g *Soak) Restore(failures int, lastKey string) {
	g.failures, g.lastKey = failures, lastKey
}

// Failures is the count of bad readings in a row, and the last reading's key, to carry over.
func (g *Soak) Failures() (int, string) { return g.failures, g.lastKey }

// Observe takes one reading at now.
func (g *Soak) Observe(now time.Time, o Observation) Verdict {
	repeated := o.Key != "" && o.Key == g.lastKey
	g.lastKey = o.Key
	switch {
	case o.Good:
		g.failures = 0
		if g.healthySince.IsZero() {
			g.healthySince = now
		}
	case o.Bad:
		g.healthySince = time.Time{}
		if !repeated {
			g.failures++
		}
	default:
		g.healthySince = time.Time{}
	}
	return g.verdict(now, o)
}

// At re-judges the last reading at a later time: the soak may have completed, or the deadline
// passed.
func (g *Soak) At(now time.Time, last Observation) Verdict { return g.verdict(now, last) }

func (g *Soak) verdict(now time.Time, o Observation) Verdict {
	if !g.healthySince.IsZero() {
		passAt := g.healthySince.Add(g.MinHealthy)
		if !now.Before(passAt) {
			return Verdict{Passed: true, Message: fmt.Sprintf("healthy for %s: %s", g.MinHealthy, o.Summary)}
		}
		// A soak under way is not failed by the deadline: it is about to pass.
		return Verdict{PassAt: passAt, Message: fmt.Sprintf("healthy for %s of %s: %s",
			now.Sub(g.healthySince).Round(time.Second), g.MinHealthy, o.Summary)}
	}
	if g.FailureThreshold > 0 && g.failures >= g.FailureThreshold {
		if g.failures == 1 {
			return Verdict{Failed: true, Message: "unhealthy: " + o.Summary}
		}
		return Verdict{Failed: true, Message: fmt.Sprintf("unhealthy %d times in a row: %s", g.failures, o.Summary)}
	}
	if g.pastDeadline(now) {
		return Verdict{Failed: true, Message: "no healthy reading before the progress deadline: " + o.Summary}
	}
	msg := o.Summary
	if g.failures > 0 {
		msg = fmt.Sprintf("%s (%d of %d failures)", msg, g.failures, g.FailureThreshold)
	}
	return Verdict{Message: msg}
}

func (g *Soak) pastDeadline(now time.Time) bool {
	return !g.Deadline.IsZero() && !now.Before(g.Deadline)
}
