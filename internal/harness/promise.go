package harness

import (
	"bytes"
	"cmp"
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

	"github.com/kratix-turnstile/turnstile/pkg/program"
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

// WaitForRequests waits until every named request (namespace default) satisfies ok, for as
// long as they move: see WaitFor.
func (h *Harness) WaitForRequests(ctx context.Context, stall time.Duration, ok func(*unstructured.Unstructured) bool, names ...string) error {
	return h.WaitFor(ctx, WebApps, stall, ok, names...)
}

// WaitFor is WaitForRequests for the requests of another API. It gives up when none of the
// requests has moved (a phase or version of status.turnstile changed) for stall: a rollout of
// several requests through one slot takes as long as the machine makes it, and a loaded one
// is slow, not stuck. The spec's own timeout bounds the whole; so does, for callers without one,
// ten times stall. Its error says where each request not yet there stands.
func (h *Harness) WaitFor(ctx context.Context, api schema.GroupVersionResource, stall time.Duration, ok func(*unstructured.Unstructured) bool, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*stall)
	defer cancel()
	var (
		last  string
		moved = time.Now()
		// late is where the requests not there stood at the last look that read them all: a
		// look cut short by the end of ctx would say only that.
		late []string
	)
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var where, behind []string
		for _, n := range names {
			u, err := h.Dynamic.Resource(api).Namespace("default").Get(ctx, n, metav1.GetOptions{})
			switch {
			case ctx.Err() != nil:
				return false, nil
			case err != nil:
				where = append(where, n+": "+err.Error())
				behind = append(behind, n+" ("+program.OneLine(err.Error())+")")
			case !ok(u):
				where = append(where, n+": "+standing(u))
				behind = append(behind, n+" ("+standing(u)+": "+Message(u)+")")
			default:
				where = append(where, n+": "+standing(u))
			}
		}
		late = behind
		if now := strings.Join(where, "; "); now != last {
			last, moved = now, time.Now()
		}
		if len(late) > 0 && time.Since(moved) > stall {
			return false, fmt.Errorf("no move for %s", stall)
		}
		return len(late) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s %s: %w; not there: %s", api.Resource, strings.Join(names, ", "), err, strings.Join(late, "; "))
	}
	return nil
}

// standing is a request's phase and version as its status.turnstile says.
func standing(u *unstructured.Unstructured) string {
	p, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "phase")
	v, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "version")
	return cmp.Or(p, "no phase") + " " + cmp.Or(v, "no version")
}

// Message is a request's status.turnstile.message.
func Message(u *unstructured.Unstructured) string {
	m, _, _ := unstructured.NestedString(u.Object, "status", "turnstile", "message")
	return m
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
