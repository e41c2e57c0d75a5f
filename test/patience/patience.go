// Package patience sizes the bounds on the specs' waits. A bound is a guard against a hang,
// never a speed target (those live in the benchmarks): each one is generous for a loaded
// 2-core machine, and one suite-wide factor, $TURNSTILE_TEST_PATIENCE, stretches them all on a
// machine slower still.
package patience

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// Env names the factor every bound is multiplied by; 1 when unset.
const Env = "TURNSTILE_TEST_PATIENCE"

var factor = func() float64 {
	v := os.Getenv(Env)
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 1 || f > 100 {
		panic(fmt.Sprintf("%s=%q: want a number from 1 to 100", Env, v))
	}
	return f
}()

// Scale is d stretched by the suite-wide factor.
func Scale(d time.Duration) time.Duration { return time.Duration(float64(d) * factor) }

// Per is the bound for n things done one after another, each allowed each, plus a fixed
// allowance for setting up: e.g. the last of 50 waiters waits for 49 upgrades.
func Per(n int, each, setup time.Duration) time.Duration {
	return Scale(setup + time.Duration(n)*each)
}
