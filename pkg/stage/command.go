// Package stage holds Turnstile's pipeline stages, the subcommands of the turnstile binary that
// run inside Kratix pipeline containers: acquire, await, health-definition and check. Each prints short progress lines
// (pod logs are the pipeline's UI), reports into status.yaml under the turnstile key, and fails
// with one line naming what was wrong.
package stage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/version"
)

// command is one subcommand of the turnstile binary. The binary is small on purpose: it is
// plain pflag, not a command framework, so that the stage image stays under 10 MB.
type command struct {
	name, short, long string
	flags             *pflag.FlagSet
	run               func(ctx context.Context, out io.Writer) error
}

func newCommand(name, short, long string) *command {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &command{name: name, short: short, long: long, flags: fs}
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: turnstile %s [flags]\n\n%s\n\nFlags (each also settable as TURNSTILE_<FLAG>):\n%s", c.name, c.long, c.flags.FlagUsages())
}

// Main runs the turnstile binary with args and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	versionCmd := newCommand("version", "Print the version", "Print the version.")
	versionCmd.run = func(_ context.Context, out io.Writer) error {
		_, err := fmt.Fprintln(out, version.Version)
		return err
	}
	commands := []*command{newAcquireCommand(), newAwaitCommand(), newHealthDefinitionCommand(), newCheckCommand(), versionCmd}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, "Usage: turnstile <command> [flags]\n\nHealth-gated, progressive upgrades for Kratix resource requests.\n\nCommands:")
		for _, c := range commands {
			fmt.Fprintf(stdout, "  %-18s %s\n", c.name, c.short)
		}
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.flags.Parse(args[1:])
		switch {
		case errors.Is(err, pflag.ErrHelp):
			c.usage(stdout)
			return 0
		case err == nil && c.flags.NArg() > 0:
			err = fmt.Errorf("unexpected argument %q: turnstile %s takes flags only", c.flags.Arg(0), c.name)
		}
		if err == nil {
			err = c.run(ctx, stdout)
		}
		if err != nil {
			err = explain(err)
		}
		return program.Exit(stderr, "turnstile "+c.name, err)
	}
	fmt.Fprintf(stderr, "turnstile: unknown command %q: want acquire, await, health-definition, check or version\n", args[0])
	return 1
}

// printer writes a stage's progress lines.
type printer struct {
	w     io.Writer
	stage string
}

func (p printer) printf(format string, args ...any) {
	fmt.Fprintf(p.w, p.stage+": "+format+"\n", args...)
}
