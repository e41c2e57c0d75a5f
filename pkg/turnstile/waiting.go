package turnstile

// How any waiter paces itself, near the front or far back: how long changes gather before it
// looks again, and how long a slot may stand open before it suspects a dead request ahead.

import (
	"context"
	"time"
)

// pace holds back a waiter far from the front before it looks again, so the changes meanwhile
// are taken in one turn: with N waiters every handoff changes the view of all of them, and
// deciding on each change costs the fleet N turns a handoff. The pause grows with the places
// ahead of it beyond the slots (PacePerPlace each, at most MaxPace), so it has still looked
// again before it can be next; the waiters next in line never pause. Only how soon a waiter
// sees the queue move changes, never what it may take.
func (t *Turnstile) pace(ctx context.Context, ahead int) error {
	if ahead <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.cfg.Clock.After(min(MaxPace, time.Duration(ahead)*PacePerPlace)):
		return nil
	}
}

// PacePerPlace and MaxPace bound how long a waiter far from the front lets changes gather
// before it looks again (see pace). 10 ms a place: a handoff is rarely faster than that, so a
// waiter has looked again before the places between it and the front are gone.
const (
	PacePerPlace = 10 * time.Millisecond
	MaxPace      = time.Second
)

// StallGrace is how long a slot may stand open before every waiter near the front follows the
// requests ahead of it: a freed slot is normally taken within milliseconds, so one still open after a second
// may have dead tickets, or a dead holder, in front of it.
const StallGrace = time.Second

// openSlots remembers since when each slot, as last written, has been seen open (free or
// expired). A slot is keyed by its Lease's version too: one taken and freed again between two
// looks is a new opening, not a long one.
type openSlots map[string]time.Time

// see notes the slots among the first limit open in view at now (beyond it none is anyone's to
// take), and returns since when the longest-open one has been (zero if none is).
func (o openSlots) see(view View, now time.Time, limit int) time.Time {
	seen := map[string]bool{}
	var oldest time.Time
	for _, s := range view.Slots {
		if s.Index >= limit || s.Held() && !s.Expired(now) {
			continue
		}
		key := s.Name
		if s.Lease != nil {
			key += "@" + s.Lease.ResourceVersion
		}
		seen[key] = true
		since, ok := o[key]
		if !ok {
			since, o[key] = now, now
		}
		if oldest.IsZero() || since.Before(oldest) {
			oldest = since
		}
	}
	for k := range o {
		if !seen[k] {
			delete(o, k)
		}
	}
	return oldest
}
