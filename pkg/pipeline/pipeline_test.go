package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func env(overrides map[string]string) func(string) string {
	vars := map[string]string{
		"KRATIX_WORKFLOW_ACTION": "configure", "KRATIX_WORKFLOW_TYPE": "resource", "KRATIX_PROMISE_NAME": "database",
		"KRATIX_PIPELINE_NAME": "p", "KRATIX_OBJECT_GROUP": "example.com", "KRATIX_OBJECT_VERSION": "v1",
		"KRATIX_OBJECT_KIND": "Database", "KRATIX_OBJECT_NAME": "db", "KRATIX_OBJECT_NAMESPACE": "default",
		"KRATIX_CRD_PLURAL": "databases",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

func TestResourceEnv(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		want      string // error substring; "" for none
	}{
		{"complete", nil, ""},
		{"cluster-scoped needs no namespace", map[string]string{"KRATIX_OBJECT_NAMESPACE": "", "KRATIX_CLUSTER_SCOPED": "true"}, ""},
		{"missing several", map[string]string{"KRATIX_PROMISE_NAME": "", "KRATIX_OBJECT_NAMESPACE": ""},
			"missing environment variable KRATIX_PROMISE_NAME, KRATIX_OBJECT_NAMESPACE"},
		{"a promise workflow", map[string]string{"KRATIX_WORKFLOW_TYPE": "promise"}, `KRATIX_WORKFLOW_TYPE="promise"`},
		{"an unknown action", map[string]string{"KRATIX_WORKFLOW_ACTION": "heal"}, `KRATIX_WORKFLOW_ACTION="heal"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ResourceEnv(env(tt.overrides))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("ResourceEnv() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func newPipeline(t *testing.T, object string) *Pipeline {
	t.Helper()
	dirs := DirsUnder(t.TempDir())
	for _, d := range []string{dirs.Input, dirs.Output, dirs.Metadata} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if object != "" {
		if err := os.WriteFile(filepath.Join(dirs.Input, "object.yaml"), []byte(object), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return New(dirs)
}

func TestReadObject(t *testing.T) {
	e, _ := ResourceEnv(env(nil))
	tests := []struct {
		name, object, want string
	}{
		{"the request", "metadata: {name: db, namespace: default, uid: u1, generation: 3, labels: {a: b}}", ""},
		{"missing", "", "no such file or directory"},
		{"not YAML", "metadata: [", "unmarshal object"},
		{"not an object", "hello: world", "no metadata.name"},
		{"no uid", "metadata: {name: db, namespace: default}", "no metadata.uid"},
		{"another request", "metadata: {name: other, namespace: default, uid: u1}", "it holds default/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := newPipeline(t, tt.object).ReadObject(e)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if obj.UID != "u1" || obj.Generation != 3 {
					t.Errorf("object = uid %q generation %d", obj.UID, obj.Generation)
				}
				if v, ok := obj.Label("a"); !ok || v != "b" {
					t.Errorf("Label(a) = %q, %v", v, ok)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "object.yaml") {
				t.Fatalf("ReadObject() error = %v, want it to name object.yaml and contain %q", err, tt.want)
			}
		})
	}
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteStatusKeyKeepsOtherKeysAndIsAtomic(t *testing.T) {
	p := newPipeline(t, "")
	status := filepath.Join(p.Dirs().Metadata, "status.yaml")
	if err := os.WriteFile(status, []byte("endpoint: db.example.com\nturnstile: {phase: Old}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteStatusKey("turnstile", map[string]any{"phase": "Upgrading"}); err != nil {
		t.Fatal(err)
	}
	got := readYAML(t, status)
	if got["endpoint"] != "db.example.com" || got["turnstile"].(map[string]any)["phase"] != "Upgrading" {
		t.Errorf("status.yaml = %v", got)
	}
	entries, _ := os.ReadDir(p.Dirs().Metadata)
	if len(entries) != 1 {
		t.Errorf("metadata holds %d entries, want only status.yaml", len(entries))
	}
	if err := p.WriteStatusKey("kratix", map[string]any{}); err == nil {
		t.Error("WriteStatusKey(kratix) succeeded; the key is Kratix's own")
	}
}

func TestCheckStatus(t *testing.T) {
	cases := []struct {
		name    string
		content string // "" for no status.yaml
		wantErr bool
	}{
		{"none yet", "", false},
		{"one to merge into", "endpoint: db.example.com\n", false},
		{"garbage", "endpoint: [unclosed\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPipeline(t, "")
			if c.content != "" {
				if err := os.WriteFile(filepath.Join(p.Dirs().Metadata, "status.yaml"), []byte(c.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.CheckStatus(); (err != nil) != c.wantErr {
				t.Errorf("CheckStatus() = %v, want an error: %v", err, c.wantErr)
			}
		})
	}
}

func TestWriteRetryAfter(t *testing.T) {
	p := newPipeline(t, "")
	if err := p.WriteRetryAfter(90*time.Second, "waiting"); err != nil {
		t.Fatal(err)
	}
	got := readYAML(t, filepath.Join(p.Dirs().Metadata, "workflow-control.yaml"))
	if got["retryAfter"] != "1m30s" || got["message"] != "waiting" {
		t.Errorf("workflow-control.yaml = %v", got)
	}
}
