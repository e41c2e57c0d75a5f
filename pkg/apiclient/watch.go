package apiclient

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
