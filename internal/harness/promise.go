package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
)

var (
	// Promises are Kratix's Promises.
	Promises = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "promises"}
	// WebApps are the example Promise's requests.
	WebApps = schema.GroupVersionResource{Group: "example.turnstile.kratix.io", Version: "v1alpha1", Resource: "webapps"}
)

// fieldManager owns what the harness applies.
const fieldManager = "turnstile-harness"

// PromiseName is the example Promise's name.
const PromiseName = "webapp"

// RenderPromise is the example Promise at an app version, rendered for this harness: the images
// it built, and the stages in the mode this Kratix supports.
func (h *Harness) RenderPromise(version string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(h.module, "promises", "webapp", "promise.yaml"))
	if err != nil {
		return nil, fmt.Errorf("reading the example Promise: %w", err)
	}
	return []byte(strings.NewReplacer(
		"__IMAGE_REPO__", h.ImageRepo,
		"__IMAGE_TAG__", h.ImageTag,
		"__WEBAPP_VERSION__", version,
		"__TURNSTILE_WAIT__", h.StageWait(),
	).Replace(string(data))), nil
}

// StageWait is how long a stage waits before handing back with retryAfter: with workflow-control
// a short wait (longer than the example's 10s soak, which must fit in one run), so that waiting
// requests do hand back and are re-run; without it 0, blocking,
// since that Kratix would carry on past a stage that handed back.
func (h *Harness) StageWait() string {
	if h.Kratix.WorkflowControl() {
		return "20s"
	}
	return "0"
}

// ApplyPromise applies the example Promise at an app version and waits until Kratix reports it
// Available (the condition: status.status runs ahead of it).
func (h *Harness) ApplyPromise(ctx context.Context, version string) error {
	return h.ApplyPromiseAs(ctx, version, Variant{})
}

// ApplyRequests applies the example Promise's five requests.
func (h *Harness) ApplyRequests(ctx context.Context) error {
	data, err := os.ReadFile(filepath.Join(h.module, "promises", "webapp", "requests.yaml"))
	if err != nil {
		return fmt.Errorf("reading the example requests: %w", err)
	}
	return h.Apply(ctx, data)
}

// Apply server-side-applies YAML documents of the Promise and request kinds to the platform.
func (h *Harness) Apply(ctx context.Context, data []byte) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading manifests: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		var res schema.GroupVersionResource
		switch u.GroupVersionKind().Kind {
		case "Promise":
			res = Promises
		case "WebApp":
			res = WebApps
		case "WebAppB":
			res = SecondWebApps
		default:
			return fmt.Errorf("applying %s %s: the harness applies Promises and their requests only", u.GetKind(), u.GetName())
		}
		body, err := u.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = h.Dynamic.Resource(res).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)})
		if err != nil {
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

// WaitForRequests waits until every named request (namespace default) satisfies ok.
func (h *Harness) WaitForRequests(ctx context.Context, timeout time.Duration, ok func(*unstructured.Unstructured) bool, names ...string) error {
	return h.WaitFor(ctx, WebApps, timeout, ok, names...)
}

// WaitFor is WaitForRequests for the requests of another API.
func (h *Harness) WaitFor(ctx context.Context, api schema.GroupVersionResource, timeout time.Duration, ok func(*unstructured.Unstructured) bool, names ...string) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		for _, n := range names {
			u, err := h.Dynamic.Resource(api).Namespace("default").Get(ctx, n, metav1.GetOptions{})
			if err != nil || !ok(u) {
				return false, nil
			}
		}
		return true, nil
	})
}

func conditionTrue(u *unstructured.Unstructured, condition string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == condition {
			return m["status"] == "True"
		}
	}
	return false
}

// Requests are the example requests' names (promises/webapp/requests.yaml), in namespace default.
var Requests = []string{"shop", "blog", "chat", "mail", "wiki"}

// Canary is the example's wave-0 request: it upgrades before every other, whatever order
// Kratix re-runs them in.
const Canary = "shop"

// AtPhase is whether a request's status.turnstile is at a phase of the upgrade to version.
func AtPhase(version, phase string) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		p, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "phase")
		v, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "version")
		return p == phase && v == version
	}
}

// AppVersions is the version each app at the Destination runs, by name.
func (h *Harness) AppVersions() map[string]string {
	out := map[string]string{}
	for _, a := range h.Apps.List() {
		out[a.Name] = a.Config.Version
	}
	return out
}
