package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	kratix "github.com/syntasso/kratix-go"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
)

// Dirs are the directories Kratix mounts into a pipeline container.
type Dirs struct {
	Input, Output, Metadata string
}

// DirsUnder is the input, output and metadata directories under root ("/kratix" in a pod).
func DirsUnder(root string) Dirs {
	return Dirs{Input: filepath.Join(root, "input"), Output: filepath.Join(root, "output"), Metadata: filepath.Join(root, "metadata")}
}

// Pipeline reads and writes one pipeline container's /kratix files.
type Pipeline struct {
	dirs Dirs
	sdk  *kratix.KratixSDK
}

// New is a Pipeline over these directories.
func New(dirs Dirs) *Pipeline {
	return &Pipeline{dirs: dirs, sdk: kratix.New(
		kratix.WithInputDir(dirs.Input), kratix.WithOutputDir(dirs.Output), kratix.WithMetadataDir(dirs.Metadata))}
}

// Dirs are the directories this Pipeline reads and writes.
func (p *Pipeline) Dirs() Dirs { return p.dirs }

// Object is the resource request as /kratix/input/object.yaml shows it: the whole object,
// status included, as it was when the pipeline's Job started.
type Object struct {
	kratix.Resource
	UID        types.UID
	Generation int64
}

// ReadObject reads object.yaml and checks it is the request the environment names.
func (p *Pipeline) ReadObject(env Env) (*Object, error) {
	path := filepath.Join(p.dirs.Input, "object.yaml")
	res, err := p.sdk.ReadResourceInput()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	u := res.ToUnstructured()
	switch {
	case u.GetName() == "":
		return nil, fmt.Errorf("reading %s: no metadata.name: not a Kubernetes object", path)
	case u.GetUID() == "":
		return nil, fmt.Errorf("reading %s: no metadata.uid: Kratix writes the live object, with its uid", path)
	case u.GetName() != env.Name || u.GetNamespace() != env.Namespace:
		return nil, fmt.Errorf("reading %s: it holds %s/%s but KRATIX_OBJECT_NAMESPACE/KRATIX_OBJECT_NAME say %s/%s",
			path, u.GetNamespace(), u.GetName(), env.Namespace, env.Name)
	}
	// The YAML decode leaves generation a float64, which unstructured's typed getter refuses.
	return &Object{Resource: res, UID: u.GetUID(), Generation: apiclient.NestedInt64(u.Object, "metadata", "generation")}, nil
}

// Label is a label's or, failing that, an annotation's value on the object.
func (o *Object) Label(key string) (string, bool) {
	if v, ok := o.GetLabels()[key]; ok {
		return v, true
	}
	v, ok := o.GetAnnotations()[key]
	return v, ok
}

// StatusField is a field under the object's status, or nil.
func (o *Object) StatusField(path ...string) any {
	u := o.ToUnstructured()
	v, _, _ := unstructured.NestedFieldNoCopy(u.Object, append([]string{"status"}, path...)...)
	return v
}

// WriteStatusKey sets one top-level key of status.yaml, keeping whatever else an earlier
// container of the same pipeline wrote there. Kratix merges status.yaml into the object's status
// key by key, so a stage owns its key whole.
// CheckStatus reports whether status.yaml, if an earlier container left one, can be merged into:
// a stage checks it before it takes anything that a failed write would leave held.
func (p *Pipeline) CheckStatus() error {
	if _, err := p.sdk.ReadStatus(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading the status.yaml an earlier container left: %w", err)
	}
	return nil
}

func (p *Pipeline) WriteStatusKey(key string, value any) error {
	if key == "kratix" {
		return errors.New("writing status.yaml: the top-level key kratix is Kratix's own")
	}
	st, err := p.sdk.ReadStatus()
	if errors.Is(err, fs.ErrNotExist) {
		st = kratix.NewStatus()
	} else if err != nil {
		return fmt.Errorf("writing status.yaml: %w", err)
	}
	data := st.ToMap()
	if data == nil {
		data = map[string]any{}
	}
	data[key] = value
	return p.atomically("status.yaml", func(staged *kratix.KratixSDK) error {
		return staged.WriteStatus(kratix.NewStatusFromMap(data))
	})
}

// WriteRetryAfter asks Kratix to run this pipeline again after d, with message shown in the
// object's status. Kratix versions without workflow-control ignore it.
func (p *Pipeline) WriteRetryAfter(d time.Duration, message string) error {
	return p.atomically("workflow-control.yaml", func(staged *kratix.KratixSDK) error {
		return staged.WriteRetryAfter(d.String(), message)
	})
}

// WriteOutput writes a file under /kratix/output, which Kratix schedules to Destinations. It is
// written beside its place and renamed into it, so Kratix never packs half a file.
func (p *Pipeline) WriteOutput(rel string, data []byte) error {
	dest := filepath.Join(p.dirs.Output, rel)
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	staging, err := os.MkdirTemp(filepath.Dir(dest), ".turnstile-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	defer os.RemoveAll(staging)
	if err := kratix.New(kratix.WithOutputDir(staging)).WriteOutput(filepath.Base(rel), data); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	if err := os.Rename(filepath.Join(staging, filepath.Base(rel)), dest); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	return nil
}

// AddDestinationSelector schedules the output directory dir to Destinations with these labels,
// in destination-selectors.yaml, keeping the other entries there.
func (p *Pipeline) AddDestinationSelector(dir string, matchLabels map[string]string) error {
	selectors, err := p.sdk.ReadDestinationSelectors()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing destination-selectors.yaml: %w", err)
	}
	selectors = slices.DeleteFunc(selectors, func(s kratix.DestinationSelector) bool { return s.Directory == dir })
	selectors = append(selectors, kratix.DestinationSelector{Directory: dir, MatchLabels: matchLabels})
	return p.atomically("destination-selectors.yaml", func(staged *kratix.KratixSDK) error {
		return staged.WriteDestinationSelectors(selectors)
	})
}

// atomically lets kratix-go write a metadata file into a private directory beside the real one,
// then renames it into place, so a reader never sees half a file.
func (p *Pipeline) atomically(name string, write func(*kratix.KratixSDK) error) error {
	staging, err := os.MkdirTemp(p.dirs.Metadata, ".turnstile-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	defer os.RemoveAll(staging)
	if err := write(kratix.New(kratix.WithMetadataDir(staging))); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.Rename(filepath.Join(staging, name), filepath.Join(p.dirs.Metadata, name)); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
