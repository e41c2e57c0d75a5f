// Command webapp-configure is the example Promise's own configure step: it renders the app.
package main

import (
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/webapp"
)

func main() { program.Run(webapp.Main) }
