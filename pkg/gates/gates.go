// Package gates holds the ratio gates: the rules that pause a rollout when too many of a
// wave's upgrades went wrong, judged by await after every verdict.
package gates

import (
	"fmt"
	"math"
	"strings"
)

// Ratios pause a rollout when too many of the requests upgraded in the current wave went wrong.
// They are judged on every change, by the await stage.
type Ratios struct {
	// MaxUnhealthy is the share of upgraded requests that may be unhealthy or degraded. Default 10%.
	MaxUnhealthy float64
	// MaxFailed is the share of upgraded requests whose upgrade may fail. Default 20%.
	MaxFailed float64
	// MinSample is how many upgraded requests a wave needs before a gate judges it, so that one
	// blip among three is not a verdict. Default 5.
	MinSample int
}

// Default are the defaults: unhealthy > 10 %, failed > 20 %, at least 5 upgraded.
var Default = Ratios{MaxUnhealthy: 0.10, MaxFailed: 0.20, MinSample: 5}

// Member is one request, as the gates see it.
type Member struct {
	// Upgraded: its upgrade to the target has begun (it took a slot for it).
	Upgraded bool
	// Failed: its upgrade was marked Failed.
	Failed bool
	// Unhealthy: its health is unhealthy or degraded now.
	Unhealthy bool
	// Preexisting: it was unhealthy before its upgrade began, so how it fares says nothing of
	// the upgrade; the gates leave it out.
	Preexisting bool
}

// Verdict is what the gates make of a wave.
type Verdict struct {
	Tripped bool
	// Gate names the gate that tripped: failed-ratio or unhealthy-ratio.
	Gate string
	// Reason says what was observed, e.g. "unhealthy-ratio 2/8 = 25 % > 10 %", and whether the
	// environment rather than the upgrade seems to blame.
	Reason string
	// Environment: requests not yet upgraded are unhealthy at a similar rate, so the checker or
	// the environment is suspect, not the upgrade.
	Environment bool
}

// Judge applies the gates to the current wave's requests, against the requests of the rollout
// not yet upgraded (the baseline). The failed-ratio gate is judged first.
func (g Ratios) Judge(wave []Member, baseline []Member) Verdict {
	var upgraded, failed, unhealthy int
	for _, m := range wave {
		if !m.Upgraded || m.Preexisting {
			continue
		}
		upgraded++
		if m.Failed {
			failed++
		}
		if m.Unhealthy {
			unhealthy++
		}
	}
	if upgraded == 0 || upgraded < g.MinSample {
		return Verdict{}
	}
	v := Verdict{}
	switch {
	case ratio(failed, upgraded) > g.MaxFailed:
		v = Verdict{Tripped: true, Gate: FailedRatio, Reason: describe(FailedRatio, failed, upgraded, g.MaxFailed)}
	case ratio(unhealthy, upgraded) > g.MaxUnhealthy:
		v = Verdict{Tripped: true, Gate: UnhealthyRatio, Reason: describe(UnhealthyRatio, unhealthy, upgraded, g.MaxUnhealthy)}
	default:
		return Verdict{}
	}
	// Fail open on the upgrade: if the requests it has not touched are as unhealthy, the checks
	// or the environment are failing, and blaming the upgrade would mislead.
	var untouched, sick int
	for _, m := range baseline {
		if m.Upgraded {
			continue
		}
		untouched++
		if m.Unhealthy {
			sick++
		}
	}
	if untouched >= g.MinSample && ratio(sick, untouched) > g.MaxUnhealthy {
		v.Environment = true
		v.Reason = fmt.Sprintf("%s, but %d/%d = %s of the requests not yet upgraded are unhealthy too: suspect the checks or the environment, not the upgrade",
			v.Reason, sick, untouched, percent(ratio(sick, untouched)))
	}
	return v
}

// The gates, by the names verdicts and pause reasons give them.
const (
	FailedRatio    = "failed-ratio"
	UnhealthyRatio = "unhealthy-ratio"
)

// PauseReason is the reason a rollout is paused with when a gate trips in a wave.
func PauseReason(wave int, v Verdict) string { return fmt.Sprintf("wave %d: %s", wave, v.Reason) }

// Tripped is the gate a pause reason written by PauseReason names, or "" for a pause of
// any other kind (an operator's, say).
func Tripped(reason string) string {
	if _, after, ok := strings.Cut(reason, ": "); ok && strings.HasPrefix(reason, "wave ") {
		if f := strings.Fields(after); len(f) > 0 && (f[0] == FailedRatio || f[0] == UnhealthyRatio) {
			return f[0]
		}
	}
	return ""
}

func ratio(n, of int) float64 { return float64(n) / float64(of) }

func describe(gate string, n, of int, max float64) string {
	return fmt.Sprintf("%s %d/%d = %s > %s", gate, n, of, percent(ratio(n, of)), percent(max))
}

func percent(r float64) string {
	p := r * 100
	if p == math.Trunc(p) {
		return fmt.Sprintf("%.0f %%", p)
	}
	return fmt.Sprintf("%.1f %%", p)
}
