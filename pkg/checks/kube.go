package checks

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
)

// rolloutKinds have a built-in readiness: fully rolled out at their current generation.
var rolloutKinds = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true}

func (r *Runner) runKube(ctx context.Context, k *Kube) Result {
	if r.Kube == nil || r.Mapper == nil {
		return Result{Unknown: true, Err: "no access to the cluster for kube checks"}
	}
	gv, err := schema.ParseGroupVersion(k.APIVersion)
	if err != nil {
		return failed("kube.apiVersion %q: %v", k.APIVersion, err)
	}
	mapping, err := r.Mapper.RESTMapping(gv.WithKind(k.Kind).GroupKind(), gv.Version)
	if err != nil {
		r.Mapper.Reset() // the kind may have been installed since discovery was cached
		return failed("finding the resource of %s %s: %v", k.APIVersion, k.Kind, err)
	}
	obj, err := r.Kube.Resource(mapping.Resource).Namespace(k.Namespace).Get(ctx, k.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return failed("%s %s/%s does not exist", k.Kind, k.Namespace, k.Name)
	}
	if err != nil {
		return failed("reading %s %s/%s: %v", k.Kind, k.Namespace, k.Name, err)
	}
	return fieldEquals(k, obj, Ready(k, obj))
}

// Ready judges an object's readiness the way the check declares it.
func Ready(k *Kube, obj *unstructured.Unstructured) Result {
	if k.Condition != "" {
		return conditionReady(k, obj)
	}
	num := func(path ...string) int64 { return apiclient.NestedInt64(obj.Object, path...) }
	generation, observed := obj.GetGeneration(), num("status", "observedGeneration")
	res := Result{Observed: map[string]any{"generation": generation, "observedGeneration": observed}}
	if observed < generation {
		res.Err = fmt.Sprintf("the controller has not seen generation %d yet (observed %d)", generation, observed)
		return res
	}
	var want, updated, available int64
	switch k.Kind {
	case "Deployment", "StatefulSet":
		want = 1
		if _, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "replicas"); found {
			want = num("spec", "replicas")
		}
		updated, available = num("status", "updatedReplicas"), num("status", "availableReplicas")
		if k.Kind == "StatefulSet" {
			available = num("status", "readyReplicas")
		}
		if total := num("status", "replicas"); total > want {
			res.Err = fmt.Sprintf("%d old replica(s) are still terminating", total-updated)
		}
	case "DaemonSet":
		want = num("status", "desiredNumberScheduled")
		updated, available = num("status", "updatedNumberScheduled"), num("status", "numberAvailable")
	}
	res.Observed["replicas"], res.Observed["updated"], res.Observed["available"] = want, updated, available
	switch {
	case res.Err != "":
	case updated < want:
		res.Err = fmt.Sprintf("%d of %d replicas updated", updated, want)
	case available < want:
		res.Err = fmt.Sprintf("%d of %d replicas available", available, want)
	default:
		res.Pass = true
	}
	return res
}

func conditionReady(k *Kube, obj *unstructured.Unstructured) Result {
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != k.Condition {
			continue
		}
		res := Result{Observed: map[string]any{"condition": k.Condition, "status": m["status"], "reason": m["reason"]}}
		if m["status"] != k.Status {
			res.Err = fmt.Sprintf("condition %s is %v, want %s: %v", k.Condition, m["status"], k.Status, m["message"])
			return res
		}
		res.Pass = true
		return res
	}
	return failed("%s %s/%s has no %s condition yet", k.Kind, k.Namespace, k.Name, k.Condition)
}
