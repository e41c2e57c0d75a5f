// Command turnstile-image builds Turnstile's container images with go-containerregistry, no
// Docker needed: `make images`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kratix-turnstile/turnstile/pkg/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := image.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
