package configure

import (
	"strings"
	"testing"
)

func TestManifests(t *testing.T) {
	tests := []struct {
		name    string
		healthy bool
		want    []string
	}{
		{"healthy", true, []string{"kind: Deployment", "kind: Service", "image: demo-app:v2", "value: v2", "value: \"true\"", "name: shop"}},
		{"broken on purpose", false, []string{"value: \"false\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Manifests("shop", "team-a", "demo-app:v2", "v2", "hello", tt.healthy)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("manifests lack %q:\n%s", want, out)
				}
			}
		})
	}
}
