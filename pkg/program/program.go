// Package program is what every Turnstile binary's main does: run until done or interrupted.
package program

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main is a binary's body: it runs with args and returns the exit code.
type Main func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run runs main with the process's arguments, cancelling its context on SIGINT or SIGTERM,
// and exits with its code.
func Run(main Main) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
