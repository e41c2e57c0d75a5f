// Command turnstile is Turnstile's pipeline-stage binary: acquire, await, health-definition and check.
package main

import (
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/stage"
)

func main() { program.Run(stage.Main) }
