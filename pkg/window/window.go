// Package window is when upgrades may start: allow windows, deny windows (freezes) and a
// scheduled start, as SKE's resourceUpgradeWindows has them. A window gates only the start of an
// upgrade, never cuts one short, and deny wins over allow.
package window

import (
	"fmt"
	"strings"
	"time"
	// The stage and agent images have no zoneinfo: the binary carries its own (about 450 kB),
	// so "in Europe/Berlin" means the same in a pod as on an operator's laptop.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Window opens at each activation of a cron schedule, in a time zone, and stays open for a
// while. It is written "CRON for DURATION [in ZONE]", e.g. "0 2 * * 1-5 for 4h in Europe/Berlin".
type Window struct {
	Cron     string
	Duration time.Duration
	Zone     *time.Location
	schedule cron.Schedule
}

// MaxDuration bounds a window: a week, the longest stretch a weekly schedule can mean.
const MaxDuration = 7 * 24 * time.Hour

// Parse reads a window written "CRON for DURATION [in ZONE]" (five cron fields, as crontab;
// ZONE an IANA name, UTC when left out).
func Parse(s string) (Window, error) {
	spec, rest, ok := strings.Cut(strings.TrimSpace(s), " for ")
	if !ok {
		return Window{}, fmt.Errorf("window %q: want \"CRON for DURATION [in ZONE]\", e.g. \"0 2 * * 1-5 for 4h in Europe/Berlin\"", s)
	}
	dur, zone, _ := strings.Cut(strings.TrimSpace(rest), " in ")
	w := Window{Cron: strings.TrimSpace(spec), Zone: time.UTC}
	var err error
	if strings.HasPrefix(w.Cron, "CRON_TZ=") || strings.HasPrefix(w.Cron, "TZ=") {
		return Window{}, fmt.Errorf("window %q: give the time zone with \"in ZONE\", not in the cron expression", s)
	}
	if strings.HasPrefix(w.Cron, "@") {
		// @every is anchored to whenever it is asked, which makes no window at all.
		return Window{}, fmt.Errorf("window %q: want five cron fields (minute hour day month weekday), not a descriptor", s)
	}
	if w.schedule, err = cron.ParseStandard(w.Cron); err != nil {
		return Window{}, fmt.Errorf("window %q: cron %q: %w", s, w.Cron, err)
	}
	if w.Duration, err = time.ParseDuration(strings.TrimSpace(dur)); err != nil || w.Duration <= 0 || w.Duration > MaxDuration {
		return Window{}, fmt.Errorf("window %q: duration %q: want a positive duration up to 168h, e.g. 4h", s, strings.TrimSpace(dur))
	}
	if zone = strings.TrimSpace(zone); zone != "" {
		// Local would mean the node's zone in a stage and the laptop's in the CLI.
		if w.Zone, err = time.LoadLocation(zone); err != nil || zone == "Local" {
			return Window{}, fmt.Errorf("window %q: time zone %q: want an IANA name such as Europe/Berlin", s, zone)
		}
	}
	if w.schedule.Next(time.Now().In(w.Zone)).IsZero() {
		return Window{}, fmt.Errorf("window %q: cron %q never fires", s, w.Cron)
	}
	return w, nil
}

// ParseAll parses each window, naming the first that is wrong.
func ParseAll(specs []string) ([]Window, error) {
	out := make([]Window, 0, len(specs))
	for _, s := range specs {
		w, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func (w Window) String() string {
	return fmt.Sprintf("%s for %s in %s", w.Cron, Human(w.Duration), w.Zone)
}

// around is the opening of the window that holds t, and whether one does. A window that opened
// within Duration before t holds it.
func (w Window) around(t time.Time) (time.Time, bool) {
	start := w.schedule.Next(t.In(w.Zone).Add(-w.Duration))
	return start, !start.IsZero() && !start.After(t)
}

// Calendar is every window that gates the start of a Promise's upgrades.
type Calendar struct {
	Allow     []Window
	Deny      []Window
	NotBefore time.Time
}

// Empty reports whether the calendar gates nothing.
func (c Calendar) Empty() bool {
	return len(c.Allow) == 0 && len(c.Deny) == 0 && c.NotBefore.IsZero()
}

// Verdict says whether an upgrade may start now; if not, why, and when it may.
type Verdict struct {
	Open bool
	// Opens is when the calendar next lets an upgrade start; zero when not within a year.
	Opens  time.Time
	Reason string
}

// horizon bounds the search for the next opening: a calendar shut for longer is shut.
const horizon = 366 * 24 * time.Hour

// At judges the calendar at now.
func (c Calendar) At(now time.Time) Verdict { return Both(now, c) }

// Both judges calendars that each gate the start at now: an upgrade may start only when every
// one allows it, and opens at the first moment they all do.
func Both(now time.Time, cals ...Calendar) Verdict {
	c := calendars(cals)
	why, _ := c.closed(now)
	if why == "" {
		return Verdict{Open: true}
	}
	at := now
	zone := time.UTC
	for i := 0; i < 10000 && at.Before(now.Add(horizon)); i++ {
		reason, next := c.closed(at)
		if reason == "" {
			// The opening, not a countdown: a waiter's status is written when its reason
			// changes, and a countdown would change it every minute.
			when := at.In(zone).Format("Mon 2 Jan 15:04 MST")
			if zone != time.UTC {
				when = at.In(zone).Format("Mon 2 Jan 15:04") + " " + zone.String()
			}
			return Verdict{Opens: at, Reason: fmt.Sprintf("%s: opens %s", why, when)}
		}
		at, zone = next.t, next.zone
	}
	return Verdict{Reason: why + ": no opening within a year"}
}

type calendars []Calendar

// closed is the first calendar's reason to be shut at t, and the moment it may open.
func (cs calendars) closed(t time.Time) (string, moment) {
	for _, c := range cs {
		if why, next := c.closed(t); why != "" {
			return why, next
		}
	}
	return "", moment{}
}

type moment struct {
	t    time.Time
	zone *time.Location
}

// closed says why an upgrade may not start at t ("" if it may), and the next moment worth
// looking at when it may not.
func (c Calendar) closed(t time.Time) (string, moment) {
	if t.Before(c.NotBefore) {
		return fmt.Sprintf("scheduled to start at %s", c.NotBefore.UTC().Format("2006-01-02 15:04 MST")), moment{c.NotBefore, time.UTC}
	}
	var end moment
	for _, w := range c.Deny {
		if start, in := w.around(t); in && start.Add(w.Duration).After(end.t) {
			end = moment{start.Add(w.Duration), w.Zone}
		}
	}
	if !end.t.IsZero() {
		return "in a deny window", end
	}
	if len(c.Allow) == 0 {
		return "", moment{}
	}
	var next moment
	for _, w := range c.Allow {
		if _, in := w.around(t); in {
			return "", moment{}
		}
		if s := w.schedule.Next(t.In(w.Zone)); !s.IsZero() && (next.t.IsZero() || s.Before(next.t)) {
			next = moment{s, w.Zone}
		}
	}
	if next.t.IsZero() { // cron finds no activation in the next five years
		next.t = t.Add(horizon)
	}
	return "waiting for the allow window", next
}

// Human is d for people, to the minute: 3h12m, 45m, 2d4h.
func Human(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case d < time.Minute:
		return "under a minute"
	case m < 60:
		return fmt.Sprintf("%dm", m)
	case m < 48*60 && m%60 == 0:
		return fmt.Sprintf("%dh", m/60)
	case m < 48*60:
		return fmt.Sprintf("%dh%dm", m/60, m%60)
	case (m/60)%24 == 0:
		return fmt.Sprintf("%dd", m/60/24)
	}
	return fmt.Sprintf("%dd%dh", m/60/24, (m/60)%24)
}
