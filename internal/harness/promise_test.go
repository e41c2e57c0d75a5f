package harness

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

func webApp(name, phase, version, message string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": WebApps.GroupVersion().String(), "kind": "WebApp",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"status":   map[string]any{"turnstile": map[string]any{"phase": phase, "version": version, "message": message}},
	}}
}

// stall is the tests' bound: mail moves every look (250ms), far inside it even on a loaded machine.
const stall = 2 * time.Second

// A wait ends when every request is there, or when none has moved for its bound, saying where
// the late ones stand; it never ends on a request that is there while others still move.
func TestWaitForGivesUpOnlyWhenNothingMoves(t *testing.T) {
	cases := []struct {
		name    string
		objects []runtime.Object
		// steps are the phases mail goes through, one a look; it stays at the last.
		steps   []string
		wantErr []string
	}{
		{name: "moving for longer than the bound", objects: []runtime.Object{webApp("blog", "Upgraded", "v6", "")},
			steps: append(slices.Repeat([]string{"Waiting", "Upgrading"}, 6), "Upgraded")},
		{name: "all there", objects: []runtime.Object{webApp("blog", "Upgraded", "v6", ""), webApp("mail", "Upgraded", "v6", "")}},
		{name: "one stuck", objects: []runtime.Object{webApp("blog", "Upgraded", "v6", ""), webApp("mail", "Waiting", "v6", "waiting: rollout paused")},
			wantErr: []string{"no move for", "not there: mail (Waiting v6: waiting: rollout paused)"}},
		{name: "one missing", objects: []runtime.Object{webApp("blog", "Upgraded", "v6", "")},
			wantErr: []string{"not there: mail (", "not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{WebApps: "WebAppList"}, c.objects...)
			looks := 0
			client.PrependReactor("get", "webapps", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if len(c.steps) == 0 || a.(k8stesting.GetAction).GetName() != "mail" {
					return false, nil, nil
				}
				looks++
				return true, webApp("mail", c.steps[min(looks, len(c.steps))-1], "v6", ""), nil
			})
			h := &Harness{Dynamic: client}
			err := h.WaitForRequests(context.Background(), stall, AtPhase("v6", "Upgraded"), "blog", "mail")
			if len(c.wantErr) == 0 {
				if err != nil {
					t.Fatalf("WaitForRequests: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("WaitForRequests returned no error")
			}
			for _, want := range c.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}
