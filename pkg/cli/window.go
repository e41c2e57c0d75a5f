package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/window"
)

type windowFlags struct {
	allow, deny []string
	notBefore   string
	clear       bool
}

func newWindowCommand(e *env) *cobra.Command {
	f := &windowFlags{}
	cmd := action(e, "window PROMISE [--allow W]... [--deny W]... [--not-before TIME] [--clear]",
		"Show or set when the Promise's upgrades may start: allow and deny windows, a scheduled start",
		`window shows the operator's windows for a Promise's rollout and whether an upgrade may start
now, or replaces them. A window is "CRON for DURATION [in ZONE]", e.g.
  --allow "0 2 * * 1-5 for 4h in Europe/Berlin"   weeknights from 02:00 Berlin time
  --deny  "0 0 24 12 * for 48h"                    a Christmas freeze (UTC)
Deny wins over allow; a window gates only the start of an upgrade and never cuts one short.
--not-before holds every upgrade until a time (RFC 3339). These apply on top of the windows the
Promise's acquire stage sets (--allow-window, --deny-window, --not-before); a waiting request's
status says when it may go, and with workflow-control it comes back then rather than polling.`,
		cobra.ExactArgs(1),
		func(ctx context.Context, _ *clients, ts *turnstile.Turnstile, args []string, who string) (string, error) {
			given := len(f.allow) > 0 || len(f.deny) > 0 || f.notBefore != ""
			if f.clear && given {
				return "", fmt.Errorf("--clear removes every window: give it alone")
			}
			if f.clear || given {
				// Only the kinds given are replaced: setting a scheduled start keeps a freeze.
				w := turnstile.Windows{Allow: orNone(f.allow), Deny: orNone(f.deny), SetAllow: f.clear || len(f.allow) > 0,
					SetDeny: f.clear || len(f.deny) > 0, SetNot: f.clear || f.notBefore != ""}
				if f.notBefore != "" && f.notBefore != "none" {
					t, err := time.Parse(time.RFC3339, f.notBefore)
					if err != nil {
						return "", fmt.Errorf("--not-before %q: want an RFC 3339 time, e.g. 2026-12-24T02:00:00Z", f.notBefore)
					}
					w.NotBefore = t
				}
				if err := ts.SetWindows(ctx, w, who); err != nil {
					return "", err
				}
			}
			view, err := ts.Inspect(ctx)
			if err != nil {
				return "", err
			}
			return describeWindows(args[0], view.Rollout, e.clock.Now()), nil
		})
	cmd.Flags().StringArrayVar(&f.allow, "allow", nil, "an allow window (repeatable); replaces the allow windows set before, keeps the rest; none removes them")
	cmd.Flags().StringArrayVar(&f.deny, "deny", nil, "a deny window, a freeze (repeatable); replaces the deny windows set before, keeps the rest; none lifts them")
	cmd.Flags().StringVar(&f.notBefore, "not-before", "", "no upgrade starts before this time (RFC 3339); none removes it")
	cmd.Flags().BoolVar(&f.clear, "clear", false, "remove the operator's windows and scheduled start")
	return cmd
}

// orNone is the windows given, none for a lone "none" (which removes that kind).
func orNone(specs []string) []string {
	if len(specs) == 1 && specs[0] == "none" {
		return nil
	}
	return specs
}

// describeWindows is the operator's windows of a rollout and what they mean now.
func describeWindows(promise string, r turnstile.Rollout, now time.Time) string {
	if r.WindowsErr != nil {
		return fmt.Sprintf("the windows of %s cannot be read (%v): set them again", promise, r.WindowsErr)
	}
	list := func(ws []window.Window) string {
		if len(ws) == 0 {
			return "none"
		}
		var out []string
		for _, w := range ws {
			out = append(out, w.String())
		}
		return strings.Join(out, "; ")
	}
	notBefore := "-"
	if !r.Windows.NotBefore.IsZero() {
		notBefore = r.Windows.NotBefore.UTC().Format(time.RFC3339)
	}
	state := "upgrades may start now"
	if v := r.Windows.At(now); !v.Open {
		state = v.Reason
	}
	return fmt.Sprintf("Windows of %s (the operator's; the Promise's acquire stage may set more):\n  allow:      %s\n  deny:       %s\n  not before: %s\nNow: %s",
		promise, list(r.Windows.Allow), list(r.Windows.Deny), notBefore, state)
}
