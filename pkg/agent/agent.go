// Package agent is turnstile-agent, the health agent that runs in a Destination and turns
// HealthDefinitions into HealthRecords. Only its command line exists so far: the checks and the
// record writer are the health issue's work.
package agent

import (
	"context"
	"fmt"
	"io"

	"github.com/kratix-turnstile/turnstile/pkg/version"
)

// Main runs turnstile-agent and returns its exit code.
func Main(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(stdout, version.Version)
		return 0
	}
	fmt.Fprintln(stderr, "turnstile-agent: the health agent is not built yet; only 'version' works in this release")
	return 1
}
