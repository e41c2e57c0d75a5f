// turnstile-demo is `make demo`: the progressive-rollout story on real Kratix, on this machine.
package main

import (
	"os"

	"github.com/kratix-turnstile/turnstile/internal/harness/demo"
	"github.com/kratix-turnstile/turnstile/internal/harness/reexec"
	"github.com/kratix-turnstile/turnstile/internal/harness/sandbox"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() {
	if reexec.Init() {
		return
	}
	os.Exit(sandbox.Run(func() int { program.Run(demo.Main); return 0 }))
}
