package controlplane

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// CRDSet names a directory of CRD manifests to install.
type CRDSet struct {
	name string
	dir  func() (string, error)
}

// KratixModule is the Kratix module that kratix-go pins; its CRDs are read from the module
// cache at test time rather than copied into this repository.
const KratixModule = "github.com/syntasso/kratix"

// KratixCRDs are Kratix's own CRDs (Promise, Work, HealthRecord, Destination, ...), from the
// pinned Kratix module's config/crd/bases.
var KratixCRDs = CRDSet{name: "kratix", dir: func() (string, error) {
	dir, err := ModuleDir(KratixModule)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "config", "crd", "bases"), nil
}}

// TurnstileCRDs are the CRDs this repository ships: HealthDefinition (the SKE schema).
var TurnstileCRDs = CRDSet{name: "turnstile", dir: func() (string, error) {
	root, err := ModuleDir("")
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "config", "crd"), nil
}}

// CRDDir is a directory of CRD manifests; a relative path is taken from the working directory
// (a test's package directory).
func CRDDir(name, dir string) CRDSet {
	return CRDSet{name: name, dir: func() (string, error) { return filepath.Abs(dir) }}
}

// ModuleDir is the directory of a module in the build graph, or of the main module for "".
func ModuleDir(module string) (string, error) {
	args := []string{"list", "-m", "-f", "{{.Dir}}"}
	if module != "" {
		args = append(args, module)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("go", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating module %q with 'go list': %w: %s", module, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("locating module %q: not downloaded (run 'go mod download')", module)
	}
	return dir, nil
}

func installCRDs(cfg *rest.Config, sets []CRDSet) error {
	for _, set := range sets {
		dir, err := set.dir()
		if err != nil {
			return fmt.Errorf("finding %s CRDs: %w", set.name, err)
		}
		_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths:              []string{dir},
			ErrorIfPathMissing: true,
			MaxTime:            30 * time.Second,
			PollInterval:       50 * time.Millisecond,
		})
		if err != nil {
			return fmt.Errorf("installing %s CRDs from %s: %w", set.name, dir, err)
		}
	}
	return nil
}
