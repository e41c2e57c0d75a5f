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
func (s *Soak) Restore(failures int, lastKey string) {
	s.failures, s.lastKey = failures, lastKey
}

// Failures is the count of bad readings in a row, and the last reading's key, to carry over.
func (s *Soak) Failures() (int, string) { return s.failures, s.lastKey }

// Observe takes one reading at now.
func (s *Soak) Observe(now time.Time, o Observation) Verdict {
	repeated := o.Key != "" && o.Key == s.lastKey
	s.lastKey = o.Key
	switch {
	case o.Good:
		s.failures = 0
		if s.healthySince.IsZero() {
			s.healthySince = now
		}
	case o.Bad:
		s.healthySince = time.Time{}
		if !repeated {
			s.failures++
		}
	default:
		s.healthySince = time.Time{}
	}
	return s.verdict(now, o)
}

// At re-judges the last reading at a later time: the soak may have completed, or the deadline
// passed.
func (s *Soak) At(now time.Time, last Observation) Verdict { return s.verdict(now, last) }

func (s *Soak) verdict(now time.Time, o Observation) Verdict {
	if !s.healthySince.IsZero() {
		passAt := s.healthySince.Add(s.MinHealthy)
		if !now.Before(passAt) {
			return Verdict{Passed: true, Message: fmt.Sprintf("healthy for %s: %s", s.MinHealthy, o.Summary)}
		}
		// A soak under way is not failed by the deadline: it is about to pass.
		return Verdict{PassAt: passAt, Message: fmt.Sprintf("healthy for %s of %s: %s",
			now.Sub(s.healthySince).Round(time.Second), s.MinHealthy, o.Summary)}
	}
	if s.FailureThreshold > 0 && s.failures >= s.FailureThreshold {
		if s.failures == 1 {
			return Verdict{Failed: true, Message: "unhealthy: " + o.Summary}
		}
		return Verdict{Failed: true, Message: fmt.Sprintf("unhealthy %d times in a row: %s", s.failures, o.Summary)}
	}
	if s.pastDeadline(now) {
		return Verdict{Failed: true, Message: "no healthy reading before the progress deadline: " + o.Summary}
	}
	msg := o.Summary
	if s.failures > 0 {
		msg = fmt.Sprintf("%s (%d of %d failures)", msg, s.failures, s.FailureThreshold)
	}
	return Verdict{Message: msg}
}

func (s *Soak) pastDeadline(now time.Time) bool {
	return !s.Deadline.IsZero() && !now.Before(s.Deadline)
}
