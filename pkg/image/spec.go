// Package image builds Turnstile's container images without Docker, the way ko does: it
// cross-compiles a static Go binary per platform and assembles each image from an empty base with
// go-containerregistry. An image holds the binary, a CA bundle, /etc/passwd and /etc/group with
// a nonroot user, and nothing else: no shell. The same inputs give the same digests.
//
// What goes into each image is declared in images/<name>.yaml.
package image

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Spec declares one image.
type Spec struct {
	// Name is the image's name under the repository, e.g. "stage".
	Name string `json:"name"`
	// Main is the Go main package to build, relative to the module root, e.g. "./cmd/turnstile".
	Main string `json:"main"`
	// Binary is the file name of the binary in /usr/local/bin, and the entrypoint.
	Binary string `json:"binary"`
	// Title and Description become OCI labels.
	Title       string `json:"title"`
	Description string `json:"description"`
	// GCFlags are passed to `go build -gcflags`.
	GCFlags string `json:"gcflags,omitempty"`
}

// LoadSpecs reads every *.yaml in the directories, sorted by name; two images of one name are
// refused.
func LoadSpecs(dirs ...string) ([]Spec, error) {
	var specs []Spec
	for _, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("listing image specs in %s: %w", dir, err)
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("listing image specs: no *.yaml in %s", dir)
		}
		for _, p := range paths {
			s, err := loadSpec(p)
			if err != nil {
				return nil, err
			}
			specs = append(specs, s)
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	for i := 1; i < len(specs); i++ {
		if specs[i].Name == specs[i-1].Name {
			return nil, fmt.Errorf("listing image specs: two images are named %s in %v", specs[i].Name, dirs)
		}
	}
	return specs, nil
}

func loadSpec(path string) (Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("reading image spec: %w", err)
	}
	var s Spec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return Spec{}, fmt.Errorf("reading image spec %s: %w", path, err)
	}
	switch {
	case len(validation.IsDNS1123Label(s.Name)) > 0:
		return Spec{}, fmt.Errorf("image spec %s: name %q must be a DNS label", path, s.Name)
	case !strings.HasPrefix(s.Main, "./"):
		return Spec{}, fmt.Errorf("image spec %s: main %q must be a package path starting with ./", path, s.Main)
	case s.Binary == "" || strings.Contains(s.Binary, "/"):
		return Spec{}, fmt.Errorf("image spec %s: binary %q must be a plain file name", path, s.Binary)
	}
	return s, nil
}

// Entrypoint is where the binary lives in the image.
func (s Spec) Entrypoint() string { return "/usr/local/bin/" + s.Binary }
