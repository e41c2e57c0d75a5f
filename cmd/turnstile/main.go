// Command turnstile is Turnstile's pipeline-stage binary: acquire and await.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kratix-turnstile/turnstile/pkg/stage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := stage.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
