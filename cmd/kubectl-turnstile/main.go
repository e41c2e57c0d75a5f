// Command kubectl-turnstile is Turnstile's kubectl plugin: kubectl turnstile status|pause|resume|approve|skip|abort|rollback.
package main

import (
	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() { program.Run(cli.Main) }
