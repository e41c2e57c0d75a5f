// Package stage holds Turnstile's pipeline stages, the subcommands of the turnstile binary that
// run inside Kratix pipeline containers: acquire and await. Each prints short progress lines
// (pod logs are the pipeline's UI), reports into status.yaml under the turnstile key, and fails
// with one line naming what was wrong.
package stage

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is the binary's version, set at build time with -ldflags -X.
var Version = "dev"

// Main runs the turnstile binary with args and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "turnstile",
		Short:         "Health-gated, progressive upgrades for Kratix resource requests",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newAcquireCommand(), newAwaitCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), Version) },
	})
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		name := "turnstile"
		if cmd != nil && cmd != root {
			name += " " + cmd.Name()
		}
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(explain(err).Error()))
		return 1
	}
	return 0
}

// envPrefix prefixes the environment variables that stand in for flags, so a Promise author can
// configure a stage with the pipeline container's env as well as its args.
const envPrefix = "TURNSTILE_"

// EnvName is the environment variable that sets a flag: --slot-namespace is
// TURNSTILE_SLOT_NAMESPACE.
func EnvName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its environment variable.
func applyEnv(flags *pflag.FlagSet, getenv func(string) string) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if setErr := flags.Set(f.Name, v); setErr != nil {
				err = fmt.Errorf("invalid %s=%q: %w", EnvName(f.Name), v, setErr)
			}
		}
	})
	return err
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// printer writes a stage's progress lines.
type printer struct {
	w     io.Writer
	stage string
}

func (p printer) printf(format string, args ...any) {
	fmt.Fprintf(p.w, p.stage+": "+format+"\n", args...)
}
