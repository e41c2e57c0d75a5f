package checks

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/jsonpath"
)

// VersionVar, as an expected value, stands for the document's version. The stages substitute it
// when they render a document; a document handed to the agent as is gets it substituted at run
// time.
const VersionVar = "${version}"

// withVersion is the check with VersionVar in its expectations replaced by version. Without a
// version it is left as written, so that it can never pass as "anything non-empty".
func (c Check) withVersion(version string) Check {
	if version == "" {
		return c
	}
	sub := func(s string) string { return strings.ReplaceAll(s, VersionVar, version) }
	if c.HTTP != nil && (strings.Contains(c.HTTP.Equals, VersionVar) || strings.Contains(c.HTTP.BodyContains, VersionVar)) {
		h := *c.HTTP
		h.Equals, h.BodyContains = sub(h.Equals), sub(h.BodyContains)
		c.HTTP = &h
	}
	if c.Kube != nil && strings.Contains(c.Kube.Equals, VersionVar) {
		k := *c.Kube
		k.Equals = sub(k.Equals)
		c.Kube = &k
	}
	return c
}

// assertsVersion reports whether passing the check proves that the version itself answered:
// exactly the version from the JSON body, or a field of a workload that rolled out at its
// generation. Status codes, open ports and a substring of the body do not: v1.2.10 contains
// v1.2.1. Nor does a field beside a status condition, which may still be the old version's.
func (c Check) assertsVersion(version string) bool {
	if version == "" {
		return false
	}
	switch {
	case c.HTTP != nil:
		return c.HTTP.JSONPath != "" && c.HTTP.Equals == version
	case c.Kube != nil:
		return c.Kube.Field != "" && c.Kube.Equals == version && c.Kube.Condition == ""
	}
	return false
}

// versionProven reports whether a round proved the version: some check asserts it, and every
// check that does passed. checks are as written, results as run (withVersion).
func versionProven(checks []Check, results []Result, version string) bool {
	asserted := false
	for i, c := range checks {
		if !c.withVersion(version).assertsVersion(version) {
			continue
		}
		if !results[i].Pass {
			return false
		}
		asserted = true
	}
	return asserted
}

func (k *Kube) validateField() error {
	if k.Field == "" {
		if k.Equals != "" {
			return fmt.Errorf("kube.equals %q needs kube.field, the JSONPath it compares", k.Equals)
		}
		return nil
	}
	if err := jsonpath.New("check").Parse(k.Field); err != nil {
		return fmt.Errorf("kube.field %q: %w", k.Field, err)
	}
	return nil
}

// fieldEquals applies a kube check's field expectation to an object the readiness passed.
func fieldEquals(k *Kube, obj *unstructured.Unstructured, res Result) Result {
	if k.Field == "" || !res.Pass {
		return res
	}
	jp := jsonpath.New("check").AllowMissingKeys(true)
	var out strings.Builder
	if err := jp.Parse(k.Field); err != nil {
		return failed("kube.field %q: %v", k.Field, err)
	}
	if err := jp.Execute(&out, obj.Object); err != nil {
		return failed("kube.field %q on %s %s/%s: %v", k.Field, k.Kind, k.Namespace, k.Name, err)
	}
	got := out.String()
	if res.Observed == nil {
		res.Observed = map[string]any{}
	}
	res.Observed["field"] = got
	if (k.Equals == "" && got == "") || (k.Equals != "" && got != k.Equals) {
		res.Pass = false
		res.Err = fmt.Sprintf("%s is %q, want %q", k.Field, got, orNonEmpty(k.Equals))
	}
	return res
}
