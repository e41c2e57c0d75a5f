package bindings

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// binding is a ResourceBinding labelled as Kratix labels it: a request name longer than a label
// value allows is replaced by a hash (here a stand-in: the selection must not depend on it).
func binding(name, promise, request, version string) *unstructured.Unstructured {
	label := request
	if len(label) > 63 {
		label = request[:56] + "-1a2b3"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "platform.kratix.io/v1alpha1", "kind": "ResourceBinding",
		"metadata": map[string]any{"name": name, "namespace": "default",
			"labels": map[string]any{"kratix.io/promise-name": promise, "kratix.io/resource-name": label}},
		"spec": map[string]any{"version": version, "promiseRef": map[string]any{"name": promise},
			"resourceRef": map[string]any{"name": request, "namespace": "default"}},
	}}
}

func TestVersionFindsTheRequestsBinding(t *testing.T) {
	long := strings.Repeat("a-very-long-request-name-", 4) // 100 characters
	objects := []runtime.Object{
		binding("shop-webapp-1", "webapp", "shop", "v1"),
		binding("blog-webapp-2", "webapp", "blog", Latest),
		binding("shop-cache-3", "cache", "shop", "v7"),
		binding("long-webapp-4", "webapp", long, "v2"),
		binding("long-cache-5", "cache", long, "v9"),
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "ResourceBindingList"}, objects...)
	tests := []struct {
		promise, request string
		want             string
		wantOK           bool
	}{
		{"webapp", "shop", "v1", true},
		{"cache", "shop", "v7", true},
		{"webapp", "blog", "", false},
		{"webapp", "mail", "", false},
		{"webapp", long, "v2", true},
		{"cache", long, "v9", true},
		{"webapp", long[:63], "", false},
	}
	for _, tt := range tests {
		got, ok, err := Version(context.Background(), client, tt.promise, "default", tt.request)
		if err != nil || got != tt.want || ok != tt.wantOK {
			t.Errorf("Version(%s, %.20s…) = %q, %v, %v; want %q, %v", tt.promise, tt.request, got, ok, err, tt.want, tt.wantOK)
		}
	}
	list, _, err := List(context.Background(), client, "webapp", "default", "")
	if err != nil {
		t.Fatal(err)
	}
	var requests []string
	for _, b := range list {
		requests = append(requests, b.Request)
	}
	if !strings.Contains(strings.Join(requests, ","), long) {
		t.Errorf("List names the requests %v; want the long name whole, not its label's hash", requests)
	}
}

func TestNeedsRelease(t *testing.T) {
	tests := []struct {
		name    string
		b       Binding
		promise string
		want    bool
	}{
		{"a rollback to v1, the Promise still at the version rolled back from", Binding{Version: "v1", RolledBackFrom: "v2"}, "v2", false},
		{"a rollback to v1, the Promise itself moved back to v1", Binding{Version: "v1", RolledBackFrom: "v2"}, "v1", false},
		{"a rollback to v1, then a new release v3", Binding{Version: "v1", RolledBackFrom: "v2"}, "v3", true},
		{"pinned by someone else", Binding{Version: "v1"}, "v3", false},
		{"following latest", Binding{Version: Latest}, "v3", false},
		{"a Promise with no version label", Binding{Version: "v1", RolledBackFrom: "v2"}, "", false},
	}
	for _, tt := range tests {
		if got := tt.b.NeedsRelease(tt.promise); got != tt.want {
			t.Errorf("%s: NeedsRelease(%q) = %v, want %v", tt.name, tt.promise, got, tt.want)
		}
	}
}
