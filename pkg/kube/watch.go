// Package kube holds small Kubernetes client helpers shared by Turnstile's packages.
package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// WatchObject watches one object by name from resourceVersion on, re-establishing the watch
// when the connection drops. It needs only get and watch on the kind, not list. The watch ends
// when ctx does, or when the apiserver no longer has history from the last version seen (the
// caller then reads the object afresh).
func WatchObject(ctx context.Context, objects dynamic.ResourceInterface, name, resourceVersion string) (watch.Interface, error) {
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		opts.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		return objects.Watch(ctx, opts)
	}}
	w, err := watchtools.NewRetryWatcherWithContext(ctx, resourceVersion, lw)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", name, err)
	}
	return w, nil
}

// NestedInt64 reads a whole number from an object decoded from JSON or YAML, where it may be an
// int64 or a float64; 0 when absent.
func NestedInt64(obj map[string]any, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
