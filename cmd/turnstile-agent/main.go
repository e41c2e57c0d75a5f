// Command turnstile-agent is Turnstile's health agent for Destination clusters.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kratix-turnstile/turnstile/pkg/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := agent.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
