// Package bindings reads and moves Kratix's ResourceBindings, which pin a resource request to a
// Promise version in Kratix releases that have PromiseRevisions. Older Kratix has none; every
// function here treats that as "no binding".
package bindings

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
)

// GVR is Kratix's ResourceBinding resource.
var GVR = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "resourcebindings"}

// Latest is the binding version that follows the Promise's newest revision.
const Latest = "latest"

// Binding is one request's ResourceBinding.
type Binding struct {
	Namespace, Name string
	// Request is the name of the request it binds (spec.resourceRef.name).
	Request string
	// Version is spec.version: a Promise version, or "latest".
	Version string
	// RolledBackFrom is the version a Turnstile rollback moved it back from; "" when no
	// rollback pinned it (a pin of anyone else's is never released by Turnstile).
	RolledBackFrom string
}

// AnnotationRolledBackFrom marks a binding pinned by `kubectl turnstile rollback`.
const AnnotationRolledBackFrom = "turnstile.kratix.io/rolled-back-from"

// List reads the bindings of a Promise's requests in namespace ("" for all), or of one request.
// ok is false when this Kratix has no ResourceBindings.
func List(ctx context.Context, client dynamic.Interface, promise, namespace string, request string) (out []Binding, ok bool, err error) {
	set := labels.Set{"kratix.io/promise-name": promise}
	// Kratix labels a binding with its request's name only when the name fits a label value;
	// a longer one it replaces with a hash, so those are found by spec.resourceRef alone.
	if request != "" && len(request) <= validation.LabelValueMaxLength {
		set["kratix.io/resource-name"] = request
	}
	list, err := client.Resource(GVR).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: set.String()})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the ResourceBindings of %s: %w", promise, err)
	}
	for _, u := range list.Items {
		if b := from(u); request == "" || b.Request == request {
			out = append(out, b)
		}
	}
	return out, true, nil
}

func from(u unstructured.Unstructured) Binding {
	v, _, _ := unstructured.NestedString(u.Object, "spec", "version")
	request, _, _ := unstructured.NestedString(u.Object, "spec", "resourceRef", "name")
	return Binding{Namespace: u.GetNamespace(), Name: u.GetName(), Request: request, Version: v,
		RolledBackFrom: u.GetAnnotations()[AnnotationRolledBackFrom]}
}

// Version is the Promise version one request's binding pins it to; ok is false when the request
// has no binding, or follows the latest version.
func Version(ctx context.Context, client dynamic.Interface, promise, namespace, request string) (string, bool, error) {
	list, _, err := List(ctx, client, promise, namespace, request)
	if err != nil || len(list) == 0 || list[0].Version == "" || list[0].Version == Latest {
		return "", false, err
	}
	return list[0].Version, true, nil
}

// RollBack pins a binding to version, marked as a rollback from another; Kratix then re-runs
// the request at that version.
func RollBack(ctx context.Context, client dynamic.Interface, b Binding, version, from string) error {
	return patch(ctx, client, b, version, from, "moving ResourceBinding %s/%s back to %s")
}

// Release sets a binding a rollback pinned back to "latest", so the request follows the
// Promise's newest version again; Kratix then re-runs it at that version.
func Release(ctx context.Context, client dynamic.Interface, b Binding) error {
	return patch(ctx, client, b, Latest, "", "releasing ResourceBinding %s/%s to %s")
}

// NeedsRelease says whether a binding pinned by a rollback should follow the Promise again: the
// Promise has moved on to a version that is neither the one rolled back to nor the one rolled
// back from, so the rollback has been superseded by a new release.
func (b Binding) NeedsRelease(promiseVersion string) bool {
	return b.RolledBackFrom != "" && promiseVersion != "" && promiseVersion != b.Version && promiseVersion != b.RolledBackFrom
}

// patch sets spec.version and the rollback annotation ("" removes it) in one write.
func patch(ctx context.Context, client dynamic.Interface, b Binding, version, from, what string) error {
	var annotation any
	if from != "" {
		annotation = from
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationRolledBackFrom: annotation}},
		"spec":     map[string]any{"version": version},
	})
	if err != nil {
		return err
	}
	if _, err := client.Resource(GVR).Namespace(b.Namespace).Patch(ctx, b.Name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf(what+": %w", b.Namespace, b.Name, version, err)
	}
	return nil
}
