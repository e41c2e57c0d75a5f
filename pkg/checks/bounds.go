package checks

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// Bounds of a Checks document. A document travels in a HealthDefinition's spec.input and its
// results come back in one HealthRecord, so what it may hold is bounded by what one Kubernetes
// object may hold (etcd's 1.5 MiB), with room to spare for everything else in the record.
const (
	// MaxDocumentBytes bounds a document: a few CA bundles fit, a pasted trust store does not.
	MaxDocumentBytes = 256 << 10
	// MaxChecks bounds the checks of one document, each of which takes a share of one record.
	MaxChecks = 100
	// MaxNameLength bounds a check's name, a key of the record's details: a label's length.
	MaxNameLength = 63

	// DefaultTimeout, MinTimeout and MaxTimeout bound one run of a check. Below 100ms every
	// check across a network times out; past 5m a hung endpoint holds a round for too long.
	DefaultTimeout = 5 * time.Second
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 5 * time.Minute
	// MaxThreshold bounds successThreshold and failureThreshold: past it a check never turns.
	MaxThreshold = 100
	// MaxMinReadySeconds bounds kube.minReadySeconds: an hour's soak is already rare.
	MaxMinReadySeconds = 3600
	// MaxMinSamples bounds prometheus.minSamples.
	MaxMinSamples = 1000

	// MinInterval and MaxInterval bound how often a schedule runs the checks. Below a second
	// robfig/cron silently runs every second anyway; past a day a record can no longer say
	// anything fresh about an upgrade.
	MinInterval = time.Second
	MaxInterval = 24 * time.Hour

	// What a run puts into the record is clipped, since it comes from the checked service and
	// not from the document: a long error, a big JSON value, a query matching every series.
	MaxErrorLength     = 512
	MaxObservedLength  = 256
	MaxObservedSamples = 10
)

// ParseSchedule reads a HealthDefinition's schedule: five cron fields, or a macro such as
// @hourly or @every 30s. It must run the checks at least once a day and at most once a second.
func ParseSchedule(s string) (cron.Schedule, error) {
	if (strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=")) && !strings.Contains(s, " ") {
		// robfig/cron v3.0.1 slices past the end of a time zone with nothing after it, and panics.
		return nil, fmt.Errorf("schedule %q: want a schedule after the time zone", s)
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", s, err)
	}
	switch sc := sched.(type) {
	case cron.ConstantDelaySchedule:
		// The parsed delay has been raised to 1s and rounded down to whole seconds already:
		// judge what was written.
		_, every, _ := strings.Cut(s, "@every ")
		d, err := time.ParseDuration(strings.TrimSpace(every))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", s, err)
		}
		if d < MinInterval || d > MaxInterval {
			return nil, fmt.Errorf("schedule %q: runs every %s, want between %s and %s", s, FormatDuration(d), FormatDuration(MinInterval), FormatDuration(MaxInterval))
		}
		if d%time.Second != 0 {
			return nil, fmt.Errorf("schedule %q: want whole seconds (cron would run it every %s)", s, sc.Delay)
		}
	case *cron.SpecSchedule:
		// Every firing day has the same times of day, so the longest gap is at most a day
		// exactly when every day fires.
		if !everyDay(sc) {
			return nil, fmt.Errorf("schedule %q: runs less often than daily, want at least once a day (at most %s apart)", s, FormatDuration(MaxInterval))
		}
	}
	return sched, nil
}

// starBit is robfig/cron's mark of a field written as * or ?, which decides how day of month
// and day of week combine.
const starBit = 1 << 63

func everyDay(s *cron.SpecSchedule) bool {
	full := func(bits uint64, lo, hi int) bool {
		for i := lo; i <= hi; i++ {
			if bits&(1<<i) == 0 {
				return false
			}
		}
		return true
	}
	months, doms, dows := full(s.Month, 1, 12), full(s.Dom, 1, 31), full(s.Dow, 0, 6)
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return months && doms && dows
	}
	return months && (doms || dows)
}

// CheckURL checks the URL of an HTTP or Prometheus check: absolute http or https, and a port
// from 1 to 65535 when it names one.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%q: want an absolute http or https URL", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %s, want 1 to 65535", raw, p)
		}
	}
	return nil
}

// CheckAddress checks the host:port of a TCP check, the port from 1 to 65535.
func CheckAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %s, want 1 to 65535", addr, port)
	}
	return nil
}

// inRange is the error for an int field outside lo..hi, or nil.
func inRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s %d: want between %d and %d", field, v, lo, hi)
	}
	return nil
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// FormatDuration writes a bound the way people write it: 5m, not 5m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
