package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kratix-turnstile/turnstile/pkg/report"
)

func TestWatchWithoutATerminalPrintsOnlyChanges(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	waiting := report.Row{Namespace: "default", Name: "blog", Wave: 1, Phase: "Waiting", Position: 1, Health: "-"}
	upgrading := report.Row{Namespace: "default", Name: "shop", Wave: 0, Phase: "Upgrading", Slot: "turnstile-webapp-slot-0", Health: "healthy", Message: "upgrading to v2"}
	first := report.Report{Promise: "webapp", Target: "v2", Slots: 1, Total: 2, Waiting: 1, Rows: []report.Row{upgrading, waiting}}
	done := upgrading
	done.Phase, done.Slot, done.Message = "Upgraded", "", "upgraded to v2"
	second := first
	second.Upgraded, second.Rows = 1, []report.Row{done, waiting}

	var out bytes.Buffer
	show := newDisplay(&out, "table", true, 0)
	show(first, now)
	table := out.String()
	if !strings.Contains(table, "NAMESPACE") || !strings.Contains(table, "Waiting (#1)") {
		t.Fatalf("the first report is not the whole table:\n%s", table)
	}
	show(first, now) // nothing changed: nothing printed
	if out.String() != table {
		t.Fatalf("an unchanged report printed:\n%s", strings.TrimPrefix(out.String(), table))
	}
	show(second, now.Add(time.Minute))
	got := strings.TrimPrefix(out.String(), table)
	want := "10:01:00 Progress: [##########----------] 1/2 upgraded, 0 failed, 1 waiting\n" +
		"10:01:00 default/shop: Upgraded, health healthy (stale): upgraded to v2\n"
	if got != want {
		t.Errorf("changes printed:\n%s\nwant:\n%s", got, want)
	}
}

func TestScreenRows(t *testing.T) {
	tests := []struct {
		text  string
		width int
		want  int
	}{
		{"a\nb\n", 80, 2},
		{strings.Repeat("x", 150) + "\nb\n", 80, 3},
		{strings.Repeat("x", 160) + "\n", 80, 2},
		{"\n\n", 80, 2},
		{"a\n", 0, 1},
	}
	for _, tt := range tests {
		if got := screenRows(tt.text, tt.width); got != tt.want {
			t.Errorf("screenRows(%q, %d) = %d, want %d", tt.text, tt.width, got, tt.want)
		}
	}
}

func TestWatchWithoutATerminalSaysWhereItStandsAfterAQuietSpell(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	upgrading := report.Row{Namespace: "default", Name: "shop", Phase: "Upgrading", Slot: "turnstile-webapp-slot-0", Since: t0, Health: "healthy"}
	waiting := report.Row{Namespace: "default", Name: "blog", Wave: 1, Phase: "Waiting", Position: 1, Health: "-"}
	rep := report.Report{Promise: "webapp", Target: "v2", Slots: 1, Total: 2, Waiting: 1, Rows: []report.Row{upgrading, waiting}}
	moved := rep
	moved.Rows = []report.Row{upgrading, {Namespace: "default", Name: "blog", Wave: 1, Phase: "Waiting", Position: 1, Health: "healthy"}}
	still := func(at string, since string) string {
		return at + " still " + rep.State() + ", 0/2 upgraded, 0 failed, 1 waiting; default/shop Upgrading for " + since + "\n"
	}
	type show struct {
		after time.Duration
		rep   report.Report
	}
	tests := []struct {
		name      string
		heartbeat time.Duration
		shows     []show
		want      string
	}{
		{name: "quiet for the heartbeat: one line, then quiet again", heartbeat: 5 * time.Second,
			shows: []show{{3 * time.Second, rep}, {5 * time.Second, rep}, {7 * time.Second, rep}, {10 * time.Second, rep}},
			want:  still("10:00:05", "5s") + still("10:00:10", "10s")},
		{name: "a change restarts the quiet spell", heartbeat: 5 * time.Second,
			shows: []show{{4 * time.Second, moved}, {8 * time.Second, moved}, {9 * time.Second, moved}},
			want:  "10:00:04 default/blog: Waiting (#1), health healthy (stale)\n" + still("10:00:09", "9s")},
		{name: "no heartbeat: changes only", shows: []show{{time.Hour, rep}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			display := newDisplay(&out, "table", true, tt.heartbeat)
			display(rep, t0)
			table := out.String()
			for _, s := range tt.shows {
				display(s.rep, t0.Add(s.after))
			}
			if got := strings.TrimPrefix(out.String(), table); got != tt.want {
				t.Errorf("printed after the table:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
