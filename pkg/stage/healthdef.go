package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

// DefinitionFile is the output file the health-definition stage writes, as Kratix's docs name it.
const DefinitionFile = "health-definition.yaml"

type healthDefFlags struct {
	source    checkSource
	target    string
	schedule  string
	namespace string
	directory string
	selectors map[string]string
}

func newHealthDefinitionCommand() *command {
	f := &healthDefFlags{}
	cmd := newCommand("health-definition", "Emit a HealthDefinition so the request's health is checked in its Destination",
		`health-definition runs in the Promise's configure pipeline. It renders a HealthDefinition
(SKE's schema) for the request, from a Checks document or a single check given by flags, and
writes it to /kratix/output/health-definition.yaml, for Kratix to schedule to the request's
Destination, where a health agent runs the checks and reports HealthRecords. The definition is
named <promise>-<namespace>-<name>, refers to the request and its generation, and carries the
rollout's target version, so its records can be matched to the upgrade. With --directory it goes
into that output sub-directory instead, scheduled by --destination-selector.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runHealthDefinition(ctx, cmd, out, f) }
	fs := cmd.flags
	f.source.register(fs)
	fs.StringVar(&f.target, "target-version", "", "the version being rolled out (default: the Promise's kratix.io/promise-version label, else a hash of its spec)")
	fs.StringVar(&f.schedule, "schedule", "@every 30s", "when the checks run: cron, or a macro such as @every 30s")
	fs.StringVar(&f.namespace, "definition-namespace", "default", "namespace of the HealthDefinition in the Destination (it must exist there)")
	fs.StringVar(&f.directory, "directory", "", "write into this top-level output sub-directory, scheduled by --destination-selector")
	fs.StringToStringVar(&f.selectors, "destination-selector", nil, "with --directory: labels of the Destinations that get the definition (k=v,...)")
	return cmd
}

func (f *healthDefFlags) validate() error {
	if _, err := checks.ParseSchedule(f.schedule); err != nil {
		return fmt.Errorf("--schedule: %w", err)
	}
	if err := f.source.validateFlags(); err != nil {
		return err
	}
	switch {
	case f.directory != "" && (strings.ContainsAny(f.directory, `/\`) || f.directory == "." || f.directory == ".."):
		return fmt.Errorf("--directory %q: Kratix takes a top-level directory name only", f.directory)
	case f.directory != "" && len(f.selectors) == 0:
		return errors.New("--directory needs --destination-selector: Kratix schedules a sub-directory by its labels")
	case f.directory == "" && len(f.selectors) > 0:
		return errors.New("--destination-selector goes with --directory")
	}
	return nil
}

func runHealthDefinition(ctx context.Context, cmd *command, out io.Writer, f *healthDefFlags) error {
	noWave := 0
	r, err := setup(cmd.flags, out, "health-definition", nil, f.validate, &noWave)
	if err != nil {
		return err
	}
	if r.env.Action == "delete" {
		r.out.printf("nothing to define in a delete workflow: Kratix removes the request's outputs")
		return nil
	}
	doc, version, err := f.source.document(ctx, r, f.target)
	if err != nil {
		return err
	}
	input, err := doc.Marshal()
	if err != nil {
		return fmt.Errorf("writing the checks document: %w", err)
	}
	ref := health.ResourceRef{Name: r.request.Name, Namespace: r.request.Namespace, Generation: r.object.Generation}
	def, err := health.NewDefinition(f.namespace, r.env.Promise, ref, f.schedule, string(input), version)
	if err != nil {
		return err
	}
	if def.Annotations == nil {
		def.Annotations = map[string]string{}
	}
	def.Annotations[health.RequestUIDAnnotation] = string(r.request.UID)
	data, err := render(def, len(doc.Checks))
	if err != nil {
		return err
	}
	path := filepath.Join(f.directory, DefinitionFile)
	if err := r.pipe.WriteOutput(path, data); err != nil {
		return err
	}
	if f.directory != "" {
		if err := r.pipe.AddDestinationSelector(f.directory, f.selectors); err != nil {
			return err
		}
	}
	var names []string
	for _, c := range doc.Checks {
		names = append(names, c.Name)
	}
	r.out.printf("wrote %s: HealthDefinition %s/%s for %s (%s) checking %s, %s",
		path, def.Namespace, def.Name, r.request, version, strings.Join(names, ", "), f.schedule)
	return nil
}

// maxDefinitionBytes bounds a serialized HealthDefinition. Past about 1.5 MiB (etcd's request
// limit) the apiserver refuses it, but only in the Destination, after Kratix has put it into
// Works and a state store, where it fails again on every sync. So it is refused here, before
// anything is written, as is a definition of more checks than the agent runs in one round.
const maxDefinitionBytes = 1 << 20

// render writes the definition as YAML, or says why it is too large to apply.
func render(def *health.HealthDefinition, count int) ([]byte, error) {
	name := def.Namespace + "/" + def.Name
	if count > checks.MaxChecks {
		return nil, fmt.Errorf("HealthDefinition %s has %d checks, over the limit of %d", name, count, checks.MaxChecks)
	}
	data, err := yaml.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("writing the health definition: %w", err)
	}
	raw, err := json.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("writing the health definition: %w", err)
	}
	if size := max(len(data), len(raw)); size > maxDefinitionBytes {
		return nil, fmt.Errorf("HealthDefinition %s is %d bytes serialized, over the limit of %d (1 MiB): shorten its checks document", name, size, maxDefinitionBytes)
	}
	return data, nil
}
