package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
)

func TestWrapPutsTheTurnstileAroundTheConfigureWorkflowOnce(t *testing.T) {
	raw, err := os.ReadFile("testdata/redis-promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := &wrapFlags{image: "example.com/stage:v1", slots: stageflags.Count{N: 3}, wait: 0}
	once, already, err := wrap(raw, f)
	if err != nil || already {
		t.Fatalf("wrap = %v, already %v", err, already)
	}
	p := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(once, &p.Object); err != nil {
		t.Fatal(err)
	}
	configure, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "configure")
	del, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "delete")
	if got := strings.Join(pipelineNames(configure), ","); got != "turnstile-acquire,instance-configure,turnstile-await" {
		t.Errorf("configure pipelines = %s", got)
	}
	if got := strings.Join(pipelineNames(del), ","); got != "turnstile-release" {
		t.Errorf("delete pipelines = %s", got)
	}
	acquire := configure[0].(map[string]any)
	container := acquire["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if container["image"] != "example.com/stage:v1" {
		t.Errorf("acquire runs %v", container["image"])
	}
	env := map[string]any{}
	for _, e := range container["env"].([]any) {
		env[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
	}
	if env["TURNSTILE_SLOTS"] != "3" || env["TURNSTILE_WAIT"] != "0s" {
		t.Errorf("acquire's env = %v", env)
	}
	var own bool
	permissions, _, _ := unstructured.NestedSlice(acquire, "spec", "rbac", "permissions")
	for _, perm := range permissions {
		m := perm.(map[string]any)
		if groups, _ := m["apiGroups"].([]any); len(groups) == 1 && groups[0] == "marketplace.kratix.io" && m["resources"].([]any)[0] == "redis" {
			own = true
		}
	}
	if !own {
		t.Errorf("acquire cannot read the Promise's own requests: %v", permissions)
	}
	if strings.Contains(string(once), "${") {
		t.Errorf("a placeholder is left:\n%s", once)
	}
	twice, already, err := wrap(once, f)
	if err != nil || !already || !bytes.Equal(twice, once) {
		t.Errorf("wrapping twice changed it (already %v, err %v)", already, err)
	}
}

func TestWrapRefusesWhatItCannotWrapInOneLine(t *testing.T) {
	raw, err := os.ReadFile("testdata/redis-promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	half := strings.Replace(string(raw), "name: instance-configure", "name: turnstile-acquire", 1)
	tests := []struct {
		name, input, want string
	}{
		{"not YAML", "{", "not YAML"},
		{"not a Promise", "apiVersion: v1\nkind: ConfigMap\n", `not a Kratix Promise (kind "ConfigMap", apiVersion "v1")`},
		{"no API", "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\nmetadata: {name: infra}\n", "the Promise infra has no API (spec.api)"},
		{"no configure workflow", strings.Split(string(raw), "  workflows:")[0], "the Promise redis has no resource configure workflow"},
		{"half wrapped", half, "has only one of turnstile-acquire and turnstile-await"},
		{"more than the Promise", string(raw) + "---\napiVersion: v1\nkind: ConfigMap\n", "holds 2 YAML documents: wrap takes the Promise alone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runWrap("-", &wrapFlags{image: "x/stage:v1", slots: stageflags.Count{N: 1}, wait: time.Minute}, strings.NewReader(tt.input), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || out.Len() > 0 {
				t.Errorf("wrap = %v (printed %d bytes), want one line containing %q and nothing printed", err, out.Len(), tt.want)
			}
		})
	}
}

func TestWrapRefusesAWaitAwaitWouldRefuse(t *testing.T) {
	err := runWrap("-", &wrapFlags{image: "x/stage:v1", slots: stageflags.Count{N: 1}, wait: 20 * time.Second}, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--wait must be 0 (a Kratix without workflow-control), or over await's 30s soak") {
		t.Errorf("wrap --wait 20s = %v", err)
	}
}

func TestWrapPutsTheReleaseInTheDeletePipelineKratixRuns(t *testing.T) {
	raw, err := os.ReadFile("testdata/redis-promise.yaml")
	if err != nil {
		t.Fatal(err)
	}
	withDelete := string(raw) + `      delete:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata:
            name: instance-delete
          spec:
            containers:
              - name: cleanup
                image: example.com/cleanup:v1
`
	out, _, err := wrap([]byte(withDelete), &wrapFlags{image: "x/stage:v1", slots: stageflags.Count{N: 1}, slotNamespace: "turnstile-system"})
	if err != nil {
		t.Fatal(err)
	}
	p := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(out, &p.Object); err != nil {
		t.Fatal(err)
	}
	del, _, _ := unstructured.NestedSlice(p.Object, "spec", "workflows", "resource", "delete")
	if len(del) != 1 || pipelineNames(del)[0] != "instance-delete" {
		t.Fatalf("delete pipelines = %v: Kratix runs only the first", pipelineNames(del))
	}
	containers, _, _ := unstructured.NestedSlice(del[0].(map[string]any), "spec", "containers")
	var names []string
	for _, c := range containers {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "release,cleanup" {
		t.Errorf("delete containers = %v, want the release first", names)
	}
	if !strings.Contains(string(out), "resourceNamespace: turnstile-system") || strings.Contains(string(out), "kratix-platform-system") ||
		!strings.Contains(string(out), "TURNSTILE_SLOT_NAMESPACE") {
		t.Errorf("the slot namespace did not reach the pipelines:\n%s", out)
	}
}
