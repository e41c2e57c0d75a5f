package window

import (
	"strings"
	"testing"
	"time"
)

func must(t *testing.T, specs ...string) []Window {
	t.Helper()
	ws, err := ParseAll(specs)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestParseRefusesBadWindowsInOneLine(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"0 2 * * 1-5", `want "CRON for DURATION [in ZONE]"`},
		{"0 2 * * 1-5 for 4h in Mars/Olympus", `time zone "Mars/Olympus": want an IANA name`},
		{"0 2 * * 1-9 for 4h", `cron "0 2 * * 1-9"`},
		{"0 2 * * * for forever", `duration "forever": want a positive duration up to 168h`},
		{"0 2 * * * for 200h", `duration "200h"`},
		{"CRON_TZ=UTC 0 2 * * * for 1h", "give the time zone with \"in ZONE\""},
		{"@every 24h for 1h", "want five cron fields"},
		{"0 2 * * * for 1h in Local", `time zone "Local"`},
		{"0 0 30 2 * for 1h", "never fires"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line containing %q", tt.spec, err, tt.want)
		}
	}
	w, err := Parse(" 0 2 * * 1-5   for 4h  in  Europe/Berlin ")
	if err != nil || w.String() != "0 2 * * 1-5 for 4h in Europe/Berlin" {
		t.Errorf("Parse = %v, %v", w, err)
	}
}

func TestCalendarAt(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// Wednesday 2 December 2026, 22:48 in Berlin (21:48 UTC).
	now := time.Date(2026, 12, 2, 21, 48, 0, 0, time.UTC)
	tests := []struct {
		name   string
		cal    Calendar
		open   bool
		opens  time.Time
		reason string
	}{
		{name: "no windows: always open", cal: Calendar{}, open: true},
		{name: "inside a nightly allow window", cal: Calendar{Allow: must(t, "0 22 * * * for 2h in Europe/Berlin")}, open: true},
		{name: "before a weekday allow window: opens at its start, in its zone",
			cal: Calendar{Allow: must(t, "0 2 * * 1-5 for 4h in Europe/Berlin")}, opens: time.Date(2026, 12, 3, 2, 0, 0, 0, berlin),
			reason: "waiting for the allow window: opens Thu 3 Dec 02:00 Europe/Berlin"},
		{name: "deny wins over allow, and opens when the freeze ends",
			cal:   Calendar{Allow: must(t, "0 0 * * * for 24h"), Deny: must(t, "0 20 2 12 * for 3h")},
			opens: time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC), reason: "in a deny window: opens Wed 2 Dec 23:00 UTC"},
		{name: "a freeze that ends inside no allow window waits for the next one",
			cal:   Calendar{Allow: must(t, "0 8 * * * for 1h"), Deny: must(t, "0 20 2 12 * for 3h")},
			opens: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), reason: "in a deny window: opens Thu 3 Dec 08:00 UTC"},
		{name: "a scheduled start", cal: Calendar{NotBefore: now.Add(90 * time.Minute)},
			opens: now.Add(90 * time.Minute), reason: "scheduled to start at 2026-12-02 23:18 UTC: opens Wed 2 Dec 23:18 UTC"},
		{name: "a scheduled start past is no gate", cal: Calendar{NotBefore: now.Add(-time.Minute)}, open: true},
		{name: "an allow window shut by a freeze for over a year", cal: Calendar{Allow: must(t, "0 0 * * * for 1h"), Deny: must(t, "0 0 * * * for 24h")},
			reason: "in a deny window: no opening within a year"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.cal.At(now)
			if v.Open != tt.open || !v.Opens.Equal(tt.opens) || v.Reason != tt.reason {
				t.Errorf("At = {open %v, opens %v, %q}\nwant {open %v, opens %v, %q}", v.Open, v.Opens, v.Reason, tt.open, tt.opens, tt.reason)
			}
		})
	}
}

func TestBothOpensWhenEveryCalendarDoes(t *testing.T) {
	now := time.Date(2026, 12, 23, 12, 0, 0, 0, time.UTC)
	promise := Calendar{Allow: must(t, "0 2 * * * for 4h")}
	operator := Calendar{Deny: must(t, "0 0 24 12 * for 72h")}
	v := Both(now, promise, operator)
	if want := time.Date(2026, 12, 27, 2, 0, 0, 0, time.UTC); v.Open || !v.Opens.Equal(want) {
		t.Errorf("Both = %+v, want shut until %v (the first allow window after the freeze)", v, want)
	}
	if !strings.HasPrefix(v.Reason, "waiting for the allow window: opens Sun 27 Dec 02:00") {
		t.Errorf("reason %q", v.Reason)
	}
	if v := Both(now.Add(15*time.Hour), promise); !v.Open {
		t.Errorf("inside the allow window: %+v", v)
	}
}
