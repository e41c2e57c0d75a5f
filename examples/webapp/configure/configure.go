// Package configure is the example Promise's own configure step, as a Promise author would write
// it: it reads the WebApp request and renders the app's Deployment and Service for the
// Destination. The demo breaks one request's upgrade on purpose: a request whose spec.brokenIn
// names the version being rolled out comes up with a failing /healthz.
package configure

import (
	"context"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/kratix-turnstile/turnstile/pkg/pipeline"
	"github.com/kratix-turnstile/turnstile/pkg/program"
)

// Manifests are the app's Deployment and Service for a request, as YAML documents.
func Manifests(name, namespace, image, version, message string, healthy bool) ([]byte, error) {
	labels := map[string]any{"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "webapp"}
	deployment := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
		"spec": map[string]any{
			"replicas": 1,
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "app", "image": image,
					"ports": []any{map[string]any{"containerPort": 8080, "name": "http"}},
					"env": []any{
						map[string]any{"name": "APP_VERSION", "value": version},
						map[string]any{"name": "APP_MESSAGE", "value": message},
						map[string]any{"name": "APP_HEALTHY", "value": fmt.Sprint(healthy)},
					},
				}}},
			},
		},
	}
	service := map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": namespace, "labels": labels},
		"spec":     map[string]any{"selector": labels, "ports": []any{map[string]any{"port": 80, "targetPort": "http", "name": "http"}}},
	}
	var out []byte
	for i, doc := range []any{deployment, service} {
		data, err := yaml.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("rendering the app's manifests: %w", err)
		}
		if i > 0 {
			out = append(out, []byte("---\n")...)
		}
		out = append(out, data...)
	}
	return out, nil
}

// Main renders the request's app into /kratix/output/webapp.yaml. The Promise sets
// WEBAPP_VERSION (the app version this Promise version deploys) and APP_IMAGE.
func Main(_ context.Context, _ []string, stdout, stderr io.Writer) int {
	return program.Exit(stderr, "webapp-configure", run(stdout))
}

func run(stdout io.Writer) error {
	env, err := pipeline.ResourceEnv(os.Getenv)
	if err != nil {
		return err
	}
	if env.Action == pipeline.ActionDelete {
		fmt.Fprintf(stdout, "webapp %s/%s is being deleted: nothing to render\n", env.Namespace, env.Name)
		return nil
	}
	version, image := os.Getenv("WEBAPP_VERSION"), os.Getenv("APP_IMAGE")
	if version == "" || image == "" {
		return fmt.Errorf("WEBAPP_VERSION and APP_IMAGE must be set on the configure container")
	}
	root := os.Getenv("TURNSTILE_KRATIX_DIR")
	if root == "" {
		root = "/kratix"
	}
	p := pipeline.New(pipeline.DirsUnder(root))
	obj, err := p.ReadObject(env)
	if err != nil {
		return err
	}
	message, _ := obj.GetValue("spec.message")
	brokenIn, _ := obj.GetValue("spec.brokenIn")
	healthy := fmt.Sprint(brokenIn) != version
	manifests, err := Manifests(env.Name, env.Namespace, image, version, fmt.Sprint(orDefault(message, "hello")), healthy)
	if err != nil {
		return err
	}
	if err := p.WriteOutput("webapp.yaml", manifests); err != nil {
		return err
	}
	state := "healthy"
	if !healthy {
		state = "broken on purpose (spec.brokenIn)"
	}
	msg := fmt.Sprintf("webapp %s at %s, %s", env.Name, version, state)
	fmt.Fprintln(stdout, msg)
	return p.WriteStatusKey("message", msg)
}

func orDefault(v any, d string) any {
	if v == nil || v == "" {
		return d
	}
	return v
}
