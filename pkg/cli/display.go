package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/kratix-turnstile/turnstile/pkg/report"
)

// display shows one report of a rollout.
type display func(rep report.Report, now time.Time)

// newDisplay is how status shows each report: once; with -w on a terminal, one screen redrawn
// in place (its ages move on); with -w anywhere else (CI logs, pipes, the demo's log), the table
// once and then one line per change, so a five-request rollout takes a screenful, not hundreds
// of lines, and after heartbeat without a change (if not 0) a line that says where it stands.
func newDisplay(out io.Writer, output string, watch bool, heartbeat time.Duration) display {
	switch {
	case output == "json":
		var last string
		return func(rep report.Report, _ time.Time) {
			var b strings.Builder
			_ = rep.WriteJSON(&b)
			if s := b.String(); s != last {
				last = s
				fmt.Fprint(out, s)
			}
		}
	case !watch:
		return func(rep report.Report, now time.Time) { _ = rep.WriteTable(out, now) }
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return redraw(f)
	}
	return changes(out, heartbeat)
}

// redraw rewrites the table where it was printed: the cursor goes back up over the rows the
// last table took on the screen (a line wider than the terminal takes several) and clears
// below, so what the terminal showed before the table stays. A table taller than the screen
// cannot be reached by the cursor: then the screen is cleared and drawn from the top, only when
// the rollout changed, not each time its ages move on (that would fill the scrollback).
func redraw(f *os.File) display {
	var last, lastFacts string
	rows := 0
	return func(rep report.Report, now time.Time) {
		var b strings.Builder
		_ = rep.WriteTable(&b, now)
		s := b.String()
		if s == last {
			return
		}
		keys, facts := factsOf(rep)
		var fb strings.Builder
		for _, k := range keys {
			fb.WriteString(facts[k] + "\n")
		}
		width, height, err := term.GetSize(int(f.Fd()))
		var out strings.Builder // one write: no flicker between the clearing and the table
		switch {
		case rows > 0 && err == nil && rows < height:
			fmt.Fprintf(&out, "\x1b[%dF\x1b[J", rows)
		case rows > 0 && fb.String() == lastFacts:
			return // only its ages moved on
		case rows > 0:
			out.WriteString("\x1b[H\x1b[2J")
		}
		out.WriteString(s)
		fmt.Fprint(f, out.String())
		last, lastFacts, rows = s, fb.String(), screenRows(s, width)
	}
}

// screenRows is how many rows of a terminal width columns wide the text takes.
func screenRows(s string, width int) int {
	n := 0
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		cols := utf8.RuneCountInString(line)
		if width <= 0 || cols <= width {
			n++
			continue
		}
		n += (cols + width - 1) / width
	}
	return n
}

// changes prints the whole table first, then for each later report only the facts that changed,
// one line each, stamped with the time: the rollout's state, its progress, and each request.
// After heartbeat (if not 0) without a line, it says where the rollout stands.
func changes(out io.Writer, heartbeat time.Duration) display {
	var seen map[string]string
	var said time.Time // when the last line was printed
	say := func(now time.Time, line string) {
		fmt.Fprintf(out, "%s %s\n", now.Format("15:04:05"), line)
		said = now
	}
	return func(rep report.Report, now time.Time) {
		keys, facts := factsOf(rep)
		if seen == nil {
			_ = rep.WriteTable(out, now)
			seen, said = facts, now
			return
		}
		for _, k := range keys {
			if facts[k] != seen[k] {
				say(now, facts[k])
			}
		}
		var gone []string
		for k := range seen {
			if _, ok := facts[k]; !ok {
				gone = append(gone, k)
			}
		}
		sort.Strings(gone)
		for _, k := range gone {
			say(now, k+": gone")
		}
		if heartbeat > 0 && now.Sub(said) >= heartbeat {
			say(now, stillLine(rep, now))
		}
		seen = facts
	}
}

// stillLine is where a rollout stands when nothing has changed for a while: its state and
// progress, and how long each request in a slot has been at it.
func stillLine(rep report.Report, now time.Time) string {
	line := "still " + rep.State() + ", " + rep.Counts()
	for _, row := range rep.Rows {
		if row.Slot != "" && !row.Since.IsZero() {
			line += fmt.Sprintf("; %s/%s %s for %s", row.Namespace, row.Name, row.Phase, now.Sub(row.Since).Truncate(time.Second))
		}
	}
	return line
}

// factsOf is the report as lines keyed by what they are about, in the order to print them.
func factsOf(rep report.Report) ([]string, map[string]string) {
	keys := []string{"status", "progress"}
	facts := map[string]string{"status": "Status: " + rep.State(), "progress": "Progress: " + rep.Progress()}
	for _, row := range rep.Rows {
		k := row.Namespace + "/" + row.Name
		line := fmt.Sprintf("%s: %s", k, row.PhaseText())
		if row.Slot != "" {
			line += " on " + row.Slot
		}
		line += ", health " + row.HealthText()
		if row.Message != "" {
			line += ": " + row.Message
		}
		keys = append(keys, k)
		facts[k] = line
	}
	return keys, facts
}
