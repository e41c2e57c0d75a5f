package stageflags

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kratix-turnstile/turnstile/pkg/rollout"
)

// Count is --slots: a number of requests, or a share of the Promise's requests ("10%"), as SKE's
// maxConcurrent and Argo CD's maxUpdate take it.
type Count struct {
	N       int // a number of requests; 0 when Percent is set
	Percent int // a share of the Promise's requests, 1 to 100
}

// Set reads "3" or "10%".
func (c *Count) Set(s string) error {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("want a share from 1%% to 100%%, got %q", s)
		}
		*c = Count{Percent: n}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > rollout.MaxSlots {
		return fmt.Errorf("want a number of requests from 1 to %d, or a share such as 10%%, got %q", rollout.MaxSlots, s)
	}
	*c = Count{N: n}
	return nil
}

func (c *Count) String() string {
	if c.Percent > 0 {
		return strconv.Itoa(c.Percent) + "%"
	}
	return strconv.Itoa(c.N)
}

// Type names the flag's kind in help.
func (c *Count) Type() string { return "count" }

// Share says whether the count depends on the size of the fleet.
func (c Count) Share() bool { return c.Percent > 0 }

// Of is the count for a Promise with n requests: a share rounds down, to at least 1.
func (c Count) Of(n int) int {
	if c.Percent == 0 {
		return c.N
	}
	return min(max(1, n*c.Percent/100), rollout.MaxSlots)
}

// Default is the count before the fleet is known: a fixed number, or 1.
func (c Count) Default() int { return max(c.N, 1) }
