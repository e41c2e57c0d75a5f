// Command webapp-configure is the example Promise's own configure step: it renders the app.
package main

import (
	"github.com/kratix-turnstile/turnstile/examples/webapp/configure"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() { program.Run(configure.Main) }
