// Command demo-app is the example Promise's app: it serves its version and a /healthz that the
// demo can break.
package main

import (
	"github.com/kratix-turnstile/turnstile/examples/webapp/app"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() { program.Run(app.Main) }
