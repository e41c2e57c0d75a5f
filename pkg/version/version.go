// Package version holds the version of Turnstile's binaries, stamped in at build time with
// -ldflags "-X github.com/kratix-turnstile/turnstile/pkg/version.Version=v1.2.3".
package version

// Version is the binaries' version; "dev" when built without one.
var Version = "dev"
