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
	"k8s.io/client-go/dynamic"
)

// GVR is Kratix's ResourceBinding resource.
var GVR = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "resourcebindings"}

// Latest is the binding version that follows the Promise's newest revision.
const Latest = "latest"

// Binding is one request's ResourceBinding.
type Binding struct {
	Namespace, Name string
	// Request is the name of the request it binds (label kratix.io/resource-name).
	Request string
	// Version is spec.version: a Promise version, or "latest".
	Version string
}

// List reads the bindings of a Promise's requests in namespace ("" for all). ok is false when
// this Kratix has no ResourceBindings.
func List(ctx context.Context, client dynamic.Interface, promise, namespace string, request string) (out []Binding, ok bool, err error) {
	set := labels.Set{"kratix.io/promise-name": promise}
	if request != "" {
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
		out = append(out, from(u))
	}
	return out, true, nil
}

func from(u unstructured.Unstructured) Binding {
	v, _, _ := unstructured.NestedString(u.Object, "spec", "version")
	return Binding{Namespace: u.GetNamespace(), Name: u.GetName(), Request: u.GetLabels()["kratix.io/resource-name"], Version: v}
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

// Move sets a binding's spec.version; Kratix then re-runs the request at that version.
func Move(ctx context.Context, client dynamic.Interface, b Binding, version string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"version": version}})
	if err != nil {
		return err
	}
	if _, err := client.Resource(GVR).Namespace(b.Namespace).Patch(ctx, b.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("moving ResourceBinding %s/%s to %s: %w", b.Namespace, b.Name, version, err)
	}
	return nil
}
