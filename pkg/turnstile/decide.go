package turnstile

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/window"
)

// HolderStatus is what a waiter has learned about the request holding a slot.
type HolderStatus struct {
	// Gone: the request was deleted, or replaced by one with another uid.
	Gone bool
	// Deleting: the request is being deleted; its delete workflow will free what it holds.
	Deleting bool
	// WorkflowFailed is why the request's Kratix configure workflow failed, if it did: its
	// upgrade failed even though no await stage ran to say so. FailedAt is when.
	WorkflowFailed string
	FailedAt       time.Time
}

// failedDuring reports whether the holder's workflow failed during its current attempt, not in
// an earlier one.
func (h HolderStatus) failedDuring(s Slot) bool {
	return h.WorkflowFailed != "" && !h.FailedAt.Before(s.AcquireTime.Truncate(time.Second))
}

type action int

const (
	actWait action = iota
	actReenter
	actTake
)

// decision is what a waiter should do next, given what it sees.
type decision struct {
	action action
	slot   Slot
	// wait describes the waiter's place while it waits.
	wait Wait
	// recheck is when the view changes by itself (a slot or ticket expiring); zero for never.
	recheck time.Time
	// unmarked are held slots whose holder's workflow failed and that do not say so yet.
	unmarked []Slot
	// limit is how many of the slots the waiter may take from (--slots, capped per wave); 0
	// when decide stopped before working it out.
	limit int
}

// Wait is a waiter's place in the queue and what holds it back.
type Wait struct {
	// Position counts the requests that will be served before this one.
	Position int
	// Queue is how many requests are waiting as far as the waiter watches, this one included:
	// near the front it watches only those ahead of it.
	Queue int
	// Holders are the slots in use, with their holders.
	Holders []Slot
	// Blocked is set when something other than the queue holds this request back: a pause, an
	// abort, an approval not given yet, or an earlier wave yet to arrive. Reason says which.
	Blocked bool
	Reason  string
	// Aborted: what blocks it is the abort of the version it waits for; it will never go.
	Aborted bool
	// Arrival is when this request joined the queue.
	Arrival time.Time
	// Until is when what blocks it lifts by itself (a window opening); zero if it does not.
	Until time.Time
}

// Message is the one line a waiting stage prints and reports.
func (w Wait) Message() string {
	if w.Blocked {
		return "waiting: " + w.Reason
	}
	var held []string
	for _, s := range w.Holders {
		h := s.Request
		if s.Phase == PhaseFailed {
			h += " (upgrade failed)"
		}
		held = append(held, h)
	}
	msg := fmt.Sprintf("waiting for a rollout slot: %s in queue", Ordinal(w.Position+1))
	switch len(held) {
	case 0:
	case 1:
		msg += "; slot held by " + held[0]
	default:
		msg += "; slots held by " + strings.Join(held, ", ")
	}
	return msg
}

// Worth says whether w is worth publishing to the request's status, the last published being
// last: what holds it back changed (blocked or not, the reason, a holder's upgrade failing or
// recovering), or its place moved past a power of two (1st, 2nd, 4th, 8th, ...). A waiter that
// arrives at place p so writes its status about log2(p) times however many handoffs pass it,
// rather than once a handoff (with N waiters, N² writes a rollout, each waking Kratix's
// reconciler), while its status still says roughly where it stands. Its log has every change.
func (w Wait) Worth(last Wait) bool {
	if w.Blocked != last.Blocked || w.Reason != last.Reason || w.stuck() != last.stuck() {
		return true
	}
	// Forward past the 1st, 2nd, 4th, 8th place; back only past twice as far as last said (a
	// burst of arrivals sorts itself out in the first second, and is not worth a write each).
	mark, lastMark := bits.Len(uint(w.Position)), bits.Len(uint(last.Position))
	return mark < lastMark || mark > lastMark+1
}

// stuck says whether a holder's upgrade failed: the rollout is paused on it.
func (w Wait) stuck() bool {
	return slices.ContainsFunc(w.Holders, func(s Slot) bool { return s.Phase == PhaseFailed })
}

// Expected is a request of the Promise that has not begun its upgrade to the target yet, as
// acquire listed them: Kratix re-runs every request after a Promise upgrade, in an order of its
// own, so the canary may not have arrived when a later wave's request does.
type Expected struct {
	Request string // namespace/name
	Wave    int
}

type decideInput struct {
	promise string
	view    View
	me      Request
	target  string
	slots   int
	now     time.Time
	holders map[types.UID]HolderStatus
	// following: the holders are being followed, so one missing from holders has not been
	// heard from yet.
	following bool
	// expected are requests of earlier waves than me that have not arrived for the target.
	expected []Expected
	// grace is how long after the rollout started a request waits for earlier waves' requests
	// to arrive; 0 orders only the waiters present.
	grace time.Duration
	// calendar is when upgrades may start, as the Promise's stage sets it.
	calendar window.Calendar
	// waveSoak is how long a wave waits after the waves before it are done; 0 for no barrier.
	waveSoak time.Duration
}

// decide is the whole queueing policy: re-enter a held slot, take a free one, or wait.
func decide(in decideInput) decision {
	if s, ok := in.view.HeldBy(in.me); ok {
		return decision{action: actReenter, slot: s}
	}
	d := decision{}
	var free []Slot
	for _, s := range in.view.Slots {
		st, known := in.holders[s.HolderUID]
		open := false
		switch {
		case !s.Held() || st.Gone:
			open = true
		case st.failedDuring(s) && s.Phase != PhaseFailed:
			d.unmarked = append(d.unmarked, s)
		case s.Phase == PhaseFailed:
		case s.Expired(in.now) && in.following && s.HolderUID != "" && !known:
			// Its holder's workflow may have failed, which keeps the slot: wait for its watch
			// to say before reclaiming it (the report wakes the waiter).
		case s.Expired(in.now):
			open = true
		default:
			d.recheck = earliest(d.recheck, s.RenewTime.Add(s.Duration))
		}
		switch {
		case !open:
			// Held, inside the slots in force or beyond them: an upgrade still under way
			// beyond them (begun under a larger count) is one of the N all the same.
			d.wait.Holders = append(d.wait.Holders, s)
		case s.Index < in.slots:
			free = append(free, s)
		}
	}

	me := Ticket{Holder: in.me.Identity(), UID: in.me.UID, Wave: in.me.Wave, Arrival: in.now}
	if t, ok := in.view.TicketOf(in.promise, in.me); ok && t.UID == in.me.UID {
		me.Arrival = t.Arrival
	}
	// Tickets for a version whose rollout was aborted are never served, and those of requests
	// deleted or being deleted never will be: they keep no place.
	aborted := in.view.Rollout.AbortedVersion
	queue := slices.DeleteFunc(in.view.Queue(in.now), func(t Ticket) bool {
		st := in.holders[t.UID]
		return t.Holder == me.Holder || (aborted != "" && t.Version == aborted) || st.Gone || st.Deleting
	})
	position, _ := slices.BinarySearchFunc(queue, me, func(a, b Ticket) int {
		if ticketLess(a, b) {
			return -1
		}
		return 1
	})
	for _, t := range queue[:position] {
		d.recheck = earliest(d.recheck, t.RenewTime.Add(t.Duration))
	}
	d.wait.Position, d.wait.Queue, d.wait.Arrival = position, len(queue)+1, me.Arrival

	r := in.view.Rollout
	switch h := in.view.Hold; {
	case r.AbortedVersion != "" && r.AbortedVersion == in.target:
		// First: the verdict on the version outlasts any hold, and spaces out its retries.
		d.wait.Blocked, d.wait.Aborted = true, true
		d.wait.Reason = fmt.Sprintf("rollout of %s aborted; a new version starts a new rollout", in.target)
		return d
	case h.Active:
		d.wait.Blocked, d.wait.Reason = true, "platform-wide hold"
		if h.Reason != "" {
			d.wait.Reason += ": " + h.Reason
		}
		d.wait.Reason += " (kubectl turnstile resume --all lifts it)"
		return d
	case r.Paused:
		d.wait.Blocked, d.wait.Reason = true, "rollout paused"
		if r.PauseReason != "" {
			d.wait.Reason += ": " + r.PauseReason
		}
		return d
	case r.TermsErr != nil:
		d.wait.Blocked, d.wait.Reason = true, fmt.Sprintf("the rollout's recorded slots cannot be read (%v): correct or remove them on Lease %s", r.TermsErr, RolloutName(in.promise))
		return d
	case r.WindowsErr != nil:
		d.wait.Blocked, d.wait.Reason = true, fmt.Sprintf("the rollout's windows cannot be read (%v): kubectl turnstile window %s sets them again", r.WindowsErr, in.promise)
		return d
	}
	// The Promise's windows and the operator's each gate the start: an operator narrows what
	// the Promise allows, never widens it.
	if v := window.Both(in.now, in.calendar, r.Windows); !v.Open {
		d.wait.Blocked, d.wait.Reason, d.wait.Until = true, v.Reason, v.Opens
		if !v.Opens.IsZero() {
			d.recheck = earliest(d.recheck, v.Opens)
		}
		return d
	}
	if w, ok := r.NeedsApproval(in.me.Wave); ok {
		d.wait.Blocked, d.wait.Reason = true, fmt.Sprintf("wave %d waits for approval: kubectl turnstile approve %s %d", w, in.promise, w)
		return d
	}
	if reason, until, ok := waveSoaking(in, queue); ok {
		d.wait.Blocked, d.wait.Reason, d.wait.Until = true, reason, until
		if !until.IsZero() {
			d.recheck = earliest(d.recheck, until)
		}
		return d
	}
	if until := r.Started.Add(in.grace); in.grace > 0 && !r.Started.IsZero() && in.now.Before(until) {
		if e, ok := earliestWave(in.expected, in.me.Wave); ok {
			d.wait.Blocked = true
			d.wait.Reason = fmt.Sprintf("wave %d goes first: %s has not started its upgrade to %s yet (waiting for it until %s)",
				e.Wave, e.Request, in.target, until.UTC().Format(time.TimeOnly))
			d.recheck = earliest(d.recheck, until)
			return d
		}
	}
	d.limit = waveLimit(in, queue, d.wait.Holders)
	free = slices.DeleteFunc(free, func(s Slot) bool { return s.Index >= d.limit })
	if position >= len(free) {
		return d
	}
	// Slots are counted by index: an upgrade under way at or beyond the limit (begun under a
	// larger count, or before a capped wave's requests arrived) finishes before anyone takes
	// one, or more than the limit would be upgrading.
	for _, s := range d.wait.Holders {
		if s.Index < d.limit {
			continue
		}
		d.wait.Blocked = true
		if s.Phase == PhaseFailed || slices.ContainsFunc(d.unmarked, func(u Slot) bool { return u.Name == s.Name }) {
			d.wait.Reason = fmt.Sprintf("%s's upgrade failed in %s, beyond the %d slot(s) open to wave %d now: nothing starts until it recovers or is skipped (kubectl turnstile skip %s %s)",
				s.Request, s.Name, d.limit, in.me.Wave, in.promise, s.Request)
		} else {
			d.wait.Reason = fmt.Sprintf("%s is upgrading in %s, beyond the %d slot(s) open to wave %d now: it finishes first", s.Request, s.Name, d.limit, in.me.Wave)
		}
		return d
	}
	d.action, d.slot = actTake, free[position]
	return d
}

// waveLimit is how many of the slots this request may take from: the rollout's, capped by
// --wave-slots for every wave from the earliest with requests upgrading or in line to its own.
// A wave capped at one so goes one at a time with no later wave beside it, and a later waiter
// never has more slots to take from than one ahead of it, so order holds. A cap applies to new
// takes: requests that began before it carry on.
func waveLimit(in decideInput, queue []Ticket, holders []Slot) int {
	caps := in.view.Rollout.WaveSlots
	if len(caps) == 0 {
		return in.slots
	}
	first := in.me.Wave
	if len(queue) > 0 {
		first = min(first, queue[0].Wave) // the queue is in wave order
	}
	for _, s := range holders {
		first = min(first, s.Wave)
	}
	lim := in.slots
	for w, c := range caps {
		if w >= first && w <= in.me.Wave {
			lim = min(lim, c)
		}
	}
	return lim
}

// waveSoaking says whether a soak between waves holds this request back, why, and until when (zero
// while an earlier wave is still under way). With a soak, a wave starts only once no request of
// an earlier wave is upgrading or in line, and the last of them was released waveSoak ago: its
// upgrade was judged healthy then, and the wave is left to show what that was worth.
func waveSoaking(in decideInput, queue []Ticket) (string, time.Time, bool) {
	if in.waveSoak <= 0 {
		return "", time.Time{}, false
	}
	for _, s := range in.view.Slots {
		// A slot decide would hand on (its holder deleted, or gone quiet past its lease) is
		// no upgrade under way.
		if !s.Held() || s.Wave >= in.me.Wave || in.holders[s.HolderUID].Gone || (s.Expired(in.now) && s.Phase != PhaseFailed) {
			continue
		}
		if s.Phase == PhaseFailed {
			return fmt.Sprintf("wave %d's upgrade of %s failed: wave %d starts %s after wave %d is done (kubectl turnstile skip %s %s gives up on it)",
				s.Wave, s.Request, in.me.Wave, window.Human(in.waveSoak), s.Wave, in.promise, s.Request), time.Time{}, true
		}
		return fmt.Sprintf("wave %d is still upgrading (%s): wave %d starts %s after it is done", s.Wave, s.Request, in.me.Wave, window.Human(in.waveSoak)), time.Time{}, true
	}
	for _, t := range queue {
		if t.Wave < in.me.Wave {
			return fmt.Sprintf("wave %d has requests in line: wave %d starts %s after it is done", t.Wave, in.me.Wave, window.Human(in.waveSoak)), time.Time{}, true
		}
	}
	var last Released
	started := in.view.Rollout.Started
	for _, s := range in.view.Slots {
		// Releases of this rollout only: a rollback to a version rolled out before finds that
		// rollout's releases on the slots too.
		if r := s.Released; r.Version == in.target && r.Wave < in.me.Wave && r.At.After(last.At) && !r.At.Before(started) {
			last = r
		}
	}
	if until := last.At.Add(in.waveSoak); !last.At.IsZero() && in.now.Before(until) {
		return fmt.Sprintf("wave %d soaks for %s after its last upgrade: wave %d starts at %s UTC",
			last.Wave, window.Human(in.waveSoak), in.me.Wave, until.UTC().Format(time.TimeOnly)), until, true
	}
	return "", time.Time{}, false
}

// earliestWave is the expected request of the lowest wave below wave, if any.
func earliestWave(expected []Expected, wave int) (Expected, bool) {
	var first Expected
	found := false
	for _, e := range expected {
		if e.Wave < wave && (!found || e.Wave < first.Wave || (e.Wave == first.Wave && e.Request < first.Request)) {
			first, found = e, true
		}
	}
	return first, found
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}
