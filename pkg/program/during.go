package program

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// StillEvery is how often a long step says it is still at work: nobody running a Turnstile
// binary, or the demo, is left staring at a silent screen for 5 seconds, however the steps and
// their tickers line up.
const StillEvery = 4 * time.Second

// During runs fn, saying on w what it does ("prefix: what") first and then every StillEvery
// until fn returns.
func During(w io.Writer, prefix, what string, fn func() error) error {
	return during(w, prefix, what, StillEvery, fn)
}

func during(w io.Writer, prefix, what string, every time.Duration, fn func() error) error {
	fmt.Fprintf(w, "%s: %s\n", prefix, what)
	done := make(chan struct{})
	var ticking sync.WaitGroup
	ticking.Add(1)
	started := time.Now()
	go func() {
		defer ticking.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprintf(w, "%s: still %s (%s)\n", prefix, what, time.Since(started).Truncate(time.Second))
			}
		}
	}()
	defer func() {
		close(done)
		ticking.Wait() // nothing is said of the step once it is over, even if it panicked
	}()
	return fn()
}
