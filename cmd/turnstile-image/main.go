// Command turnstile-image builds Turnstile's container images with go-containerregistry, no Docker needed: make images.
package main

import (
	"github.com/kratix-turnstile/turnstile/pkg/image"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

func main() { program.Run(image.Main) }
