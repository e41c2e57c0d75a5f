// Package testbin builds this repository's binaries for tests that run them as real processes.
package testbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kratix-turnstile/turnstile/pkg/image"
)

// Module is this repository's module path.
const Module = "github.com/kratix-turnstile/turnstile"

// Version is stamped into the binaries the tests build.
const Version = "v0.0.0-test"

// Build compiles the main package pkg (an import path in this module) into dir and returns the
// binary's path. A binary that ships in an image is built as its image builds it (same flags),
// so that it costs one link once `make test` has built the images: compiling the packages
// twice, with two sets of flags, is the slowest thing a cold test run could do.
func Build(dir, pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	specs, err := image.LoadSpecs(image.SpecDirsUnder(root)...)
	if err != nil {
		return "", err
	}
	spec := image.Spec{Main: "./" + strings.TrimPrefix(strings.TrimPrefix(pkg, Module), "/")}
	for _, s := range specs {
		if s.Main == spec.Main {
			spec = s
		}
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if err := image.Compile(context.Background(), root, spec, p, Version, out); err != nil {
		return "", fmt.Errorf("building %s: %w", pkg, err)
	}
	return out, nil
}

// moduleRoot is the repository's root, where go.mod is: tests run inside the module.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil {
		return "", fmt.Errorf("finding the module root with go env GOMOD: %w", err)
	}
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding the module root: go env GOMOD says %q, not in a module", gomod)
	}
	return filepath.Dir(gomod), nil
}
