package stage

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

// The listing is pure filtering over what the apiserver returns: the fake client stands in for
// the list only (the permissions spec runs acquire's real list against a real apiserver).
func TestExpectedBefore(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "databases"}
	request := func(name, wave string, status map[string]any, deleting bool) runtime.Object {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Database"}}
		u.SetNamespace("shop")
		u.SetName(name)
		u.SetUID(types.UID("uid-" + name))
		if wave != "" {
			u.SetLabels(map[string]string{turnstile.WaveKey: wave})
		}
		if deleting {
			u.SetFinalizers([]string{"kratix.io/delete-workflows"})
			u.Object["metadata"].(map[string]any)["deletionTimestamp"] = "2026-12-02T00:00:00Z"
		}
		if status != nil {
			u.Object["status"] = status
		}
		return u
	}
	configured := map[string]any{"lastSuccessfulConfigureWorkflowTime": "2026-12-01T00:00:00Z"}
	began := map[string]any{"turnstile": map[string]any{"phase": "Upgraded", "version": "v2"}}
	waiting := map[string]any{"turnstile": map[string]any{"phase": "Waiting", "version": "v2"}}
	onOld := map[string]any{"turnstile": map[string]any{"phase": "Upgraded", "version": "v1"}}
	cases := []struct {
		name    string
		myWave  int
		objects []runtime.Object
		gateNew bool
		want    []string
	}{
		{"an earlier wave not yet begun is expected", 1, []runtime.Object{request("canary", "0", onOld, false)}, false, []string{"shop/canary"}},
		{"one that began is not", 1, []runtime.Object{request("canary", "0", began, false)}, false, nil},
		{"one waiting for the target has not begun: its ticket will show it arrived", 1, []runtime.Object{request("canary", "0", waiting, false)}, false, []string{"shop/canary"}},
		{"the same wave is not", 1, []runtime.Object{request("peer", "", configured, false)}, false, nil},
		{"a later wave is not", 1, []runtime.Object{request("late", "2", configured, false)}, false, nil},
		{"a request being deleted is not", 1, []runtime.Object{request("canary", "0", configured, true)}, false, nil},
		{"a new request goes straight through: not", 1, []runtime.Object{request("canary", "0", nil, false)}, false, nil},
		{"a new request is gated with --gate-new-requests", 1, []runtime.Object{request("canary", "0", nil, false)}, true, []string{"shop/canary"}},
		{"wave 0 waits for nobody", 0, []runtime.Object{request("other", "0", onOld, false)}, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{gvr: "DatabaseList"}, c.objects...)
			r := &run{dynamic: client, request: turnstile.Request{GroupVersionResource: gvr, Namespace: "shop", Name: "me", UID: "uid-me", Wave: c.myWave}}
			got, err := r.expectedBefore(context.Background(), "v2", 1, c.gateNew)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range got {
				names = append(names, e.Request)
			}
			if !slices.Equal(names, c.want) {
				t.Errorf("expected = %v, want %v", names, c.want)
			}
		})
	}
}
