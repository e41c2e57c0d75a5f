package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kratix-turnstile/turnstile/pkg/plan"
	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

type planFlags struct {
	to           string
	output       string
	pipelineTime time.Duration
}

func newPlanCommand(e *env) *cobra.Command {
	f := &planFlags{}
	cmd := &cobra.Command{
		Use:   "plan PROMISE",
		Short: "Preview a rollout: the requests in the order they will upgrade, by wave, its terms and gates, and how long it may take; writes nothing",
		Long: `plan reads the Promise's own turnstile stages (their args and TURNSTILE_* env), its requests
and its turnstile's Leases, and prints the rollout they make: the requests that will upgrade,
grouped by wave in the order the turnstile takes them (those holding or in line first, then the
others as Kratix re-runs them), first installs and requests already on the target, the slots
(a share of the fleet counted as it would be now), the windows, the gates and approvals on the
way, and an estimate of the duration from the slots, the soaks and --pipeline-time.`,
		Example: `  kubectl turnstile plan webapp
  kubectl turnstile plan webapp --to 1.4.0 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), e, f, args[0], cmd.Flag("slot-namespace").Changed, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&f.to, "to", "", "the version to roll out (default: as the acquire stage names it, else the Promise's version)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text or json")
	cmd.Flags().DurationVar(&f.pipelineTime, "pipeline-time", time.Minute, "how long one request's own configure pipeline takes, for the estimate")
	return cmd
}

func runPlan(ctx context.Context, e *env, f *planFlags, promise string, slotNamespaceGiven bool, out io.Writer) error {
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: want text or json", f.output)
	}
	if f.pipelineTime < 0 || f.pipelineTime > 24*time.Hour {
		return fmt.Errorf("--pipeline-time must be from 0 to 24h, got %s", f.pipelineTime)
	}
	c, err := e.clients()
	if err != nil {
		return err
	}
	p, err := c.dynamic.Resource(promisesGVR).Get(ctx, promise, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("unknown Promise %q (kubectl get promises lists them)", promise)
	}
	if err != nil {
		return fmt.Errorf("reading Promise %s: %w", promise, err)
	}
	gvr, _, err := report.API(p)
	if err != nil {
		return err
	}
	in := plan.Input{Promise: promise, Now: e.clock.Now(), PipelineTime: f.pipelineTime}
	if err := stagesOf(p, &in); err != nil {
		return err
	}
	in.Target = f.to
	if in.Target == "" {
		in.Target = in.Acquire.Target
	}
	if in.Target == "" {
		if in.Target, err = report.Version(p); err != nil {
			return err
		}
	}
	list, err := c.dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing the requests of %s: %w", promise, err)
	}
	in.Requests = list.Items
	ns := in.Acquire.Namespace // where the Promise's stages keep its turnstile, unless told otherwise
	if slotNamespaceGiven {
		ns = e.slotNamespace
	}
	leases, err := c.leases.Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: turnstile.Selector(promise).String()})
	if err != nil {
		return fmt.Errorf("reading the turnstile of %s: %w", promise, err)
	}
	ptrs := make([]*coordinationv1.Lease, len(leases.Items))
	for i := range leases.Items {
		ptrs[i] = &leases.Items[i]
	}
	in.View = turnstile.NewView(promise, in.Acquire.Slots.Default(), ptrs)
	pl := plan.Build(in)
	if f.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(pl)
	}
	return pl.Write(out)
}

// stagesOf reads the settings of the Promise's acquire and await stages from their containers in
// its resource configure workflow, as the stages would parse them.
func stagesOf(p *unstructured.Unstructured, in *plan.Input) error {
	pipelines, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "configure")
	found := false
	for _, pl := range pipelines {
		pm, _ := pl.(map[string]any)
		containers, _, _ := unstructured.NestedSlice(pm, "spec", "containers")
		for _, c := range containers {
			cm, _ := c.(map[string]any)
			stage, args := stageArgs(cm)
			var fs *pflag.FlagSet
			var validate func() error
			switch stage {
			case "acquire":
				found = true
				fs = pflag.NewFlagSet("acquire", pflag.ContinueOnError)
				in.Acquire.Register(fs)
				validate = in.Acquire.Validate
			case "await":
				in.Await = &stageflags.Await{}
				fs = pflag.NewFlagSet("await", pflag.ContinueOnError)
				in.Await.Register(fs)
				validate = in.Await.Validate
			default:
				continue
			}
			fs.SetOutput(io.Discard)
			err := fs.Parse(args)
			if err == nil {
				err = stageflags.ApplyEnv(fs, envOf(cm))
			}
			if err == nil {
				err = validate()
			}
			if err != nil {
				name, _ := cm["name"].(string)
				return fmt.Errorf("the %s stage of Promise %s (container %q): %w", stage, p.GetName(), name, err)
			}
		}
	}
	if !found {
		return fmt.Errorf("no turnstile acquire stage in the resource configure workflow of Promise %s (kubectl turnstile wrap adds one)", p.GetName())
	}
	return nil
}

// stageArgs finds a Turnstile stage in a container's command and args: the stage's name, and the
// flags after it.
func stageArgs(container map[string]any) (string, []string) {
	var words []string
	for _, key := range []string{"command", "args"} {
		list, _ := container[key].([]any)
		for _, w := range list {
			s, _ := w.(string)
			words = append(words, s)
		}
	}
	if i := slices.IndexFunc(words, func(w string) bool { return w == "acquire" || w == "await" }); i >= 0 {
		return words[i], words[i+1:]
	}
	return "", nil
}

// envOf is the container's literal environment; values from elsewhere (valueFrom) are unknown
// here, so the stage's default stands in the plan.
func envOf(container map[string]any) func(string) string {
	env := map[string]string{}
	list, _ := container["env"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if v, ok := m["value"].(string); ok && strings.HasPrefix(name, "TURNSTILE_") {
			env[name] = v
		}
	}
	return func(k string) string { return env[k] }
}
