package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// SecondPromiseName is a second Promise made from the example, with an API of its own
// (WebAppB), for specs about more than one Promise on the platform.
const SecondPromiseName = "webapp-b"

// SecondWebApps are the second Promise's requests.
var SecondWebApps = schema.GroupVersionResource{Group: WebApps.Group, Version: WebApps.Version, Resource: "webappbs"}

// Variant is how a rendering of the example Promise differs from the example.
type Variant struct {
	// Second makes it the second Promise (SecondPromiseName, kind WebAppB).
	Second bool
	// AcquireEnv are settings added to its acquire stage (TURNSTILE_* variables).
	AcquireEnv map[string]string
}

// ApplyPromiseAs applies a variant of the example Promise at an app version and waits until
// Kratix reports it Available.
func (h *Harness) ApplyPromiseAs(ctx context.Context, version string, v Variant) error {
	data, err := h.RenderPromise(version)
	if err != nil {
		return err
	}
	name := PromiseName
	if v.Second {
		name = SecondPromiseName
		data = []byte(strings.NewReplacer("webapps", SecondWebApps.Resource, "kind: WebApp,", "kind: WebAppB,",
			"listKind: WebAppList", "listKind: WebAppBList", "singular: webapp}", "singular: webappb}",
			"\n  name: "+PromiseName+"\n", "\n  name: "+SecondPromiseName+"\n").Replace(string(data)))
	}
	if len(v.AcquireEnv) > 0 {
		if data, err = withAcquireEnv(data, v.AcquireEnv); err != nil {
			return err
		}
	}
	if err := h.Apply(ctx, data); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := h.Dynamic.Resource(Promises).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return p.GetLabels()["kratix.io/promise-version"] == version && conditionTrue(p, "Available"), nil
	})
}

// withAcquireEnv adds variables to the acquire container of the Promise's first configure pipeline.
func withAcquireEnv(data []byte, env map[string]string) ([]byte, error) {
	p := map[string]any{}
	if err := yaml.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("reading the rendered Promise: %w", err)
	}
	pipelines, _, _ := unstructured.NestedSlice(p, "spec", "workflows", "resource", "configure")
	if len(pipelines) == 0 {
		return nil, fmt.Errorf("the example Promise has no configure pipeline")
	}
	first, _ := pipelines[0].(map[string]any)
	containers, _, _ := unstructured.NestedSlice(first, "spec", "containers")
	acquire, _ := containers[0].(map[string]any)
	vars, _ := acquire["env"].([]any)
	for k, v := range env {
		vars = append(vars, map[string]any{"name": k, "value": v})
	}
	acquire["env"] = vars
	containers[0] = acquire
	if err := unstructured.SetNestedSlice(first, containers, "spec", "containers"); err != nil {
		return nil, err
	}
	pipelines[0] = first
	if err := unstructured.SetNestedSlice(p, pipelines, "spec", "workflows", "resource", "configure"); err != nil {
		return nil, err
	}
	return yaml.Marshal(p)
}
