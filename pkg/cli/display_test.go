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
	show := newDisplay(&out, "table", true)
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
