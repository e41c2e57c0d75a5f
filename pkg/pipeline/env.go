// Package pipeline is the Kratix pipeline contract as Turnstile's stages see it: the KRATIX_*
// environment, /kratix/input/object.yaml, and the status.yaml and workflow-control.yaml files in
// /kratix/metadata. Every read and write of /kratix goes through kratix-go; writes are atomic.
package pipeline

import (
	"fmt"
	"strings"
)

// Env is what Kratix tells a pipeline container through its environment.
type Env struct {
	Action        string // KRATIX_WORKFLOW_ACTION: configure or delete
	Type          string // KRATIX_WORKFLOW_TYPE: resource or promise
	Promise       string // KRATIX_PROMISE_NAME
	Pipeline      string // KRATIX_PIPELINE_NAME
	Group         string // KRATIX_OBJECT_GROUP
	Version       string // KRATIX_OBJECT_VERSION
	Kind          string // KRATIX_OBJECT_KIND
	Name          string // KRATIX_OBJECT_NAME
	Namespace     string // KRATIX_OBJECT_NAMESPACE
	Plural        string // KRATIX_CRD_PLURAL
	ClusterScoped bool   // KRATIX_CLUSTER_SCOPED
	DryRun        bool   // KRATIX_DRY_RUN
}

// Workflow actions.
const (
	ActionConfigure = "configure"
	ActionDelete    = "delete"
)

// ResourceEnv reads the environment of a resource workflow and names every variable that is
// missing or wrong.
func ResourceEnv(getenv func(string) string) (Env, error) {
	e := Env{
		Action: getenv("KRATIX_WORKFLOW_ACTION"), Type: getenv("KRATIX_WORKFLOW_TYPE"),
		Promise: getenv("KRATIX_PROMISE_NAME"), Pipeline: getenv("KRATIX_PIPELINE_NAME"),
		Group: getenv("KRATIX_OBJECT_GROUP"), Version: getenv("KRATIX_OBJECT_VERSION"),
		Kind: getenv("KRATIX_OBJECT_KIND"), Name: getenv("KRATIX_OBJECT_NAME"),
		Namespace: getenv("KRATIX_OBJECT_NAMESPACE"), Plural: getenv("KRATIX_CRD_PLURAL"),
		ClusterScoped: getenv("KRATIX_CLUSTER_SCOPED") == "true", DryRun: getenv("KRATIX_DRY_RUN") == "true",
	}
	var missing []string
	for _, v := range []struct{ name, value string }{
		{"KRATIX_WORKFLOW_ACTION", e.Action}, {"KRATIX_WORKFLOW_TYPE", e.Type},
		{"KRATIX_PROMISE_NAME", e.Promise}, {"KRATIX_OBJECT_GROUP", e.Group},
		{"KRATIX_OBJECT_VERSION", e.Version}, {"KRATIX_OBJECT_KIND", e.Kind},
		{"KRATIX_OBJECT_NAME", e.Name}, {"KRATIX_CRD_PLURAL", e.Plural},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	if e.Namespace == "" && !e.ClusterScoped {
		missing = append(missing, "KRATIX_OBJECT_NAMESPACE")
	}
	if len(missing) > 0 {
		return e, fmt.Errorf("missing environment variable %s: run this stage in a Kratix resource workflow", strings.Join(missing, ", "))
	}
	if e.Type != "resource" {
		return e, fmt.Errorf("KRATIX_WORKFLOW_TYPE=%q: Turnstile's stages gate resource requests and run in resource workflows only", e.Type)
	}
	if e.Action != ActionConfigure && e.Action != ActionDelete {
		return e, fmt.Errorf("KRATIX_WORKFLOW_ACTION=%q: want configure or delete", e.Action)
	}
	return e, nil
}
