package harness

import (
	"context"
	"fmt"
	"net"

	"github.com/kratix-turnstile/turnstile/pkg/observer"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// Observe runs Turnstile's observer on the platform, as `kubectl turnstile dashboard` does, and
// serves its page and metrics on addr (127.0.0.1:0 picks a free port), or on a free port of
// 127.0.0.1 when addr is taken, until ctx ends. It returns the page's URL.
func (h *Harness) Observe(ctx context.Context, addr string) (string, error) {
	obs := observer.New(observer.Config{Dynamic: h.Dynamic, SlotNamespace: turnstile.DefaultNamespace})
	if err := obs.Run(ctx); err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", fmt.Errorf("listening for the observer: %w", err)
	}
	go func() { _ = obs.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String() + "/", nil
}
