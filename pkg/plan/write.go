package plan

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
)

// Write prints the plan for people.
func (p Plan) Write(w io.Writer) error {
	from := ""
	switch {
	case p.Started:
		from = " (under way)"
	case p.From != "":
		from = " (from " + p.From + ")"
	}
	fmt.Fprintf(w, "Plan for %s: roll out %s%s. Nothing was written.\n", p.Promise, p.Target, from)
	slots := fmt.Sprintf("%d (%s)", p.Slots, p.SlotsFrom)
	for _, wv := range p.Waves {
		if wv.Slots < p.Slots {
			slots += fmt.Sprintf("; while wave %d has requests upgrading or in line, %d at a time", wv.Wave, wv.Slots)
		}
	}
	fmt.Fprintf(w, "Slots:     %s\n", slots)
	fmt.Fprintf(w, "Starts:    %s\n", p.Start)
	list(w, "Windows:", p.Windows)
	list(w, "Gates:", p.Gates)
	fmt.Fprintf(w, "Estimate:  about %s: %s\n\n", stageflags.FmtDuration(p.Estimate.Round(time.Minute)), p.EstimateHow)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tWAVE\tREQUEST\tNOW\tNOTE")
	n := 0
	for _, wv := range p.Waves {
		for _, r := range wv.Requests {
			n++
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\n", n, r.Wave, r.Request, standing(r), r.Note)
		}
	}
	if n == 0 {
		fmt.Fprintln(tw, "-\t-\t(no request to upgrade)\t-\t-")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the plan: %w", err)
	}
	fmt.Fprintf(w, "\nNot gated: %s\n", names(p.FirstInstalls, "first install"))
	fmt.Fprintf(w, "On %s already: %s\n", p.Target, names(p.OnTarget, ""))
	fmt.Fprintf(w, "Being deleted: %s\n", names(p.Deleting, ""))
	return nil
}

func list(w io.Writer, title string, items []string) {
	if len(items) == 0 {
		fmt.Fprintf(w, "%-10s none\n", title)
		return
	}
	for i, s := range items {
		if i > 0 {
			title = ""
		}
		fmt.Fprintf(w, "%-10s %s\n", title, s)
	}
}

func standing(r Row) string {
	switch {
	case r.Phase == "" && r.Version == "":
		return "-"
	case r.Version == "":
		return r.Phase
	}
	return r.Phase + " " + r.Version
}

func names(rows []Row, what string) string {
	if len(rows) == 0 {
		return "none"
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Request + " (wave " + strconv.Itoa(r.Wave) + ")"
	}
	s := strings.Join(out, ", ")
	if what != "" {
		s += ": " + what + "s go straight through"
	}
	return s
}
