// Command turnstile-agent is Turnstile's health agent for Destination clusters.
package main

import (
	"github.com/kratix-turnstile/turnstile/pkg/agent"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() { program.Run(agent.Main) }
