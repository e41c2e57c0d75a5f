package program

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines is a writer that hands each line written to a channel as well.
type lines struct {
	mu   sync.Mutex
	all  bytes.Buffer
	each chan string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.each <- string(p):
	default:
	}
	return l.all.Write(p)
}

func TestDuringSaysItIsStillAtWorkUntilTheStepEnds(t *testing.T) {
	out := &lines{each: make(chan string, 16)}
	failed := errors.New("compile error")
	err := during(out, "turnstile-image", "building stage", time.Millisecond, func() error {
		// The step lasts until it has been said twice that it is still going, however slow
		// the machine.
		for still := 0; still < 2; {
			if strings.Contains(<-out.each, "still building stage (") {
				still++
			}
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("During() = %v, want the step's own error", err)
	}
	out.mu.Lock()
	said := out.all.String()
	out.mu.Unlock()
	if !strings.HasPrefix(said, "turnstile-image: building stage\nturnstile-image: still building stage (") {
		t.Errorf("said %q, want what the step is, then that it is still at it", said)
	}
	time.Sleep(10 * time.Millisecond)
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.all.String() != said {
		t.Errorf("said %q after the step ended", strings.TrimPrefix(out.all.String(), said))
	}
}
