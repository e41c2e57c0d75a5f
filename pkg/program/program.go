// Package program is what every Turnstile binary's main does: run until done or interrupted,
// and end on one line saying what went wrong.
package program

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
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

// Exit is a binary's exit code for err: 0 for none, or for a request for help (the flag set has
// printed it); else 1, with err written to stderr on one line after prefix.
func Exit(stderr io.Writer, prefix string, err error) int {
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %s\n", prefix, OneLine(err.Error()))
	return 1
}

// OneLine folds a message onto one line, so that a log line or status message is one line
// whatever the error wrapped.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
