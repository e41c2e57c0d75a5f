package kratix

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kratix-turnstile/turnstile/test/controlplane"
)

// Version is a Kratix the harness can run. Both are built by hack/provision-control-plane.sh.
type Version string

const (
	// Pinned is the 2025 Kratix that kratix-go pins, from the Go module proxy: it ignores
	// workflow-control.yaml and has no PromiseRevisions or ResourceBindings.
	Pinned Version = "pinned"
	// Current is the Kratix at hack/versions.sh's KRATIX_CURRENT_COMMIT, built from its source:
	// workflow-control (retryAfter), PromiseRevisions, ResourceBindings.
	Current Version = "current"
)

// ParseVersion reads a Version by name; "" is Current, what users run.
func ParseVersion(s string) (Version, error) {
	switch Version(s) {
	case "", Current:
		return Current, nil
	case Pinned:
		return Pinned, nil
	}
	return "", fmt.Errorf("kratix version %q: want %q or %q", s, Current, Pinned)
}

// WorkflowControl says whether this Kratix honours workflow-control.yaml, so a stage can hand
// back with retryAfter instead of blocking its pod.
func (v Version) WorkflowControl() bool { return v == Current }

// Bindings says whether this Kratix has PromiseRevisions and ResourceBindings.
func (v Version) Bindings() bool { return v == Current }

// Describe names the version for logs: which Kratix a run was on.
func (v Version) Describe() string {
	if v == Current {
		commit, err := currentCommit()
		if err != nil {
			return "current Kratix (commit unknown: " + err.Error() + ")"
		}
		return "current Kratix " + commit[:12]
	}
	return "2025 Kratix (" + controlplane.KratixModule + ", as kratix-go pins it)"
}

// Dir is where this version's manager and pipeline adapter are, under the control plane's
// assets directory.
func (v Version) Dir(assets string) (string, error) {
	if v != Current {
		return assets, nil
	}
	commit, err := currentCommit()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(assets, "kratix-"+commit[:12])
	if _, err := os.Stat(filepath.Join(dir, "kratix-manager")); err != nil {
		return "", fmt.Errorf("finding current Kratix: %w (run 'make control-plane')", err)
	}
	return dir, nil
}

// CRDs are this version's own CRDs.
func (v Version) CRDs(assets string) (controlplane.CRDSet, error) {
	if v != Current {
		return controlplane.KratixCRDs, nil
	}
	dir, err := v.Dir(assets)
	if err != nil {
		return controlplane.CRDSet{}, err
	}
	return controlplane.CRDDir("current kratix", filepath.Join(dir, "crds")), nil
}

// currentCommit reads KRATIX_CURRENT_COMMIT from hack/versions.sh, its one owner.
func currentCommit() (string, error) {
	root, err := controlplane.ModuleDir("")
	if err != nil {
		return "", err
	}
	path := filepath.Join(root, "hack", "versions.sh")
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading the current Kratix commit: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if commit, ok := strings.CutPrefix(s.Text(), "KRATIX_CURRENT_COMMIT="); ok && len(commit) >= 12 {
			return commit, nil
		}
	}
	return "", fmt.Errorf("reading the current Kratix commit: no KRATIX_CURRENT_COMMIT in %s", path)
}
