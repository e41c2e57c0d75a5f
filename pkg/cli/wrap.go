package cli

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/version"
	"github.com/kratix-turnstile/turnstile/workflows"
)

type wrapFlags struct {
	image         string
	slots         stageflags.Count // the root's --slots
	slotNamespace string           // the root's --slot-namespace
	wait          time.Duration
}

// templateSoak is await's --min-healthy in the template.
const templateSoak = 30 * time.Second

// The pipelines wrap adds, by the names the template gives them.
const (
	acquirePipeline = "turnstile-acquire"
	awaitPipeline   = "turnstile-await"
	releasePipeline = "turnstile-release"
)

func newWrapCommand(e *env) *cobra.Command {
	f := &wrapFlags{}
	cmd := &cobra.Command{
		Use:   "wrap PROMISE.yaml",
		Short: "Print the Promise with Turnstile's pipelines around its resource configure workflow",
		Long: `wrap reads a Promise (a file, or - for stdin) and prints it with turnstile-acquire before its
resource configure pipelines, turnstile-await after them, and turnstile-release first in its
delete workflow, each with the RBAC its stage needs for the Promise's own API (group and plural
from spec.api). It talks to no cluster. Wrapping a wrapped Promise changes nothing. The health
of each request still needs checking: add a health-definition container to your configure
pipeline (see the README), or run checks with the agent.

  kubectl turnstile wrap promise.yaml --slots 2 > wrapped.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.slots, f.slotNamespace = e.slots, e.slotNamespace
			return runWrap(args[0], f, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.image, "stage-image", "ghcr.io/kratix-turnstile/stage:"+version.Version, "the Turnstile stage image the pipelines run")
	cmd.Flags().DurationVar(&f.wait, "wait", time.Minute, "how long a stage waits before handing back to Kratix (retryAfter); 0 for a Kratix without workflow-control")
	return cmd
}

func runWrap(path string, f *wrapFlags, stdin io.Reader, out, errOut io.Writer) error {
	// await refuses a wait no longer than its soak (the template's 30s), and any over 24h.
	if f.wait != 0 && (f.wait <= templateSoak || f.wait > 24*time.Hour) {
		return fmt.Errorf("--wait must be 0 (a Kratix without workflow-control), or over await's %s soak and at most 24h, got %s", templateSoak, f.wait)
	}
	if f.image == "" || strings.ContainsAny(f.image, " \t\n") {
		return fmt.Errorf("--stage-image %q: want an image reference", f.image)
	}
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("reading the Promise: %w", err)
	}
	wrapped, already, err := wrap(raw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if already {
		fmt.Fprintf(errOut, "%s is wrapped already: printed as it is\n", path)
	}
	_, err = out.Write(wrapped)
	return err
}

// wrap is the Promise in raw with Turnstile's pipelines added, and whether it had them already.
func wrap(raw []byte, f *wrapFlags) ([]byte, bool, error) {
	if f.slotNamespace == "" {
		f.slotNamespace = turnstile.DefaultNamespace
	}
	if n := documents(raw); n > 1 {
		return nil, false, fmt.Errorf("holds %d YAML documents: wrap takes the Promise alone", n)
	}
	p := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(raw, &p.Object); err != nil {
		return nil, false, fmt.Errorf("not YAML: %w", err)
	}
	if p.Object == nil || p.GetKind() != "Promise" || !strings.HasPrefix(p.GetAPIVersion(), "platform.kratix.io/") {
		return nil, false, fmt.Errorf("not a Kratix Promise (kind %q, apiVersion %q)", p.GetKind(), p.GetAPIVersion())
	}
	gvr, _, err := report.API(p)
	if err != nil {
		return nil, false, err
	}
	configure, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "configure")
	if len(configure) == 0 {
		return nil, false, fmt.Errorf("the Promise %s has no resource configure workflow (spec.workflows.resource.configure): nothing to gate", p.GetName())
	}
	names := pipelineNames(configure)
	switch has := slices.Contains(names, acquirePipeline); {
	case has && slices.Contains(names, awaitPipeline):
		return raw, true, nil
	case has || slices.Contains(names, awaitPipeline):
		return nil, false, fmt.Errorf("the Promise %s has only one of %s and %s: remove it, then wrap again", p.GetName(), acquirePipeline, awaitPipeline)
	}

	template := strings.NewReplacer("${PROMISE_GROUP}", gvr.Group, "${PROMISE_PLURAL}", gvr.Resource, "${STAGE_IMAGE}", f.image,
		"resourceNamespace: "+turnstile.DefaultNamespace, "resourceNamespace: "+f.slotNamespace).Replace(workflows.Resource)
	var ours struct {
		Configure []map[string]any `json:"configure"`
		Delete    []map[string]any `json:"delete"`
	}
	if err := yaml.Unmarshal([]byte(template), &ours); err != nil {
		return nil, false, fmt.Errorf("reading the built-in workflows template (a bug in this plugin): %w", err)
	}
	if len(ours.Configure) != 2 || len(ours.Delete) != 1 {
		return nil, false, fmt.Errorf("the built-in workflows template has %d configure and %d delete pipelines, want 2 and 1: a bug in this plugin", len(ours.Configure), len(ours.Delete))
	}
	for _, pl := range ours.Configure {
		setEnv(pl, "TURNSTILE_WAIT", f.wait.String())
	}
	if f.slotNamespace != turnstile.DefaultNamespace {
		for _, pl := range append(ours.Configure, ours.Delete...) {
			setEnv(pl, "TURNSTILE_SLOT_NAMESPACE", f.slotNamespace)
		}
	}
	setEnv(ours.Configure[0], "TURNSTILE_SLOTS", f.slots.String())

	withOurs := append([]any{ours.Configure[0]}, configure...)
	withOurs = append(withOurs, ours.Configure[1])
	if err := unstructured.SetNestedSlice(p.Object, withOurs, "spec", "workflows", "resource", "configure"); err != nil {
		return nil, false, err
	}
	del, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "delete")
	switch {
	case len(del) == 0:
		del = []any{ours.Delete[0]}
	default:
		// Kratix runs only the first delete pipeline: the release goes into it, first.
		first, ok := del[0].(map[string]any)
		if !ok {
			return nil, false, fmt.Errorf("the Promise %s has a delete workflow that is not a Pipeline", p.GetName())
		}
		if err := joinPipeline(first, ours.Delete[0]); err != nil {
			return nil, false, fmt.Errorf("the Promise %s: %w", p.GetName(), err)
		}
	}
	if err := unstructured.SetNestedSlice(p.Object, del, "spec", "workflows", "resource", "delete"); err != nil {
		return nil, false, err
	}
	out, err := yaml.Marshal(p.Object)
	return out, false, err
}

// joinPipeline puts ours's containers first in pipeline, and its permissions with pipeline's.
func joinPipeline(pipeline, ours map[string]any) error {
	theirs, _, err := unstructured.NestedSlice(pipeline, "spec", "containers")
	if err != nil {
		return fmt.Errorf("its delete pipeline's containers: %w", err)
	}
	added, _, _ := unstructured.NestedSlice(ours, "spec", "containers")
	if err := unstructured.SetNestedSlice(pipeline, append(added, theirs...), "spec", "containers"); err != nil {
		return err
	}
	perms, _, err := unstructured.NestedSlice(pipeline, "spec", "rbac", "permissions")
	if err != nil {
		return fmt.Errorf("its delete pipeline's permissions: %w", err)
	}
	more, _, _ := unstructured.NestedSlice(ours, "spec", "rbac", "permissions")
	return unstructured.SetNestedSlice(pipeline, append(perms, more...), "spec", "rbac", "permissions")
}

// documents counts the YAML documents in raw that hold anything.
func documents(raw []byte) int {
	n := 0
	for _, doc := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(raw), -1) {
		for _, line := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				n++
				break
			}
		}
	}
	return n
}

func pipelineNames(pipelines []any) []string {
	var names []string
	for _, pl := range pipelines {
		u := unstructured.Unstructured{}
		if m, ok := pl.(map[string]any); ok {
			u.Object = m
		}
		names = append(names, u.GetName())
	}
	return names
}

// setEnv sets an environment variable of the pipeline's first container.
func setEnv(pipeline map[string]any, name, value string) {
	containers, _, _ := unstructured.NestedSlice(pipeline, "spec", "containers")
	if len(containers) == 0 {
		return
	}
	c := containers[0].(map[string]any)
	env, _ := c["env"].([]any)
	for _, e := range env {
		if m, _ := e.(map[string]any); m["name"] == name {
			m["value"] = value
			_ = unstructured.SetNestedSlice(pipeline, containers, "spec", "containers")
			return
		}
	}
	c["env"] = append(env, map[string]any{"name": name, "value": value})
	_ = unstructured.SetNestedSlice(pipeline, containers, "spec", "containers")
}
