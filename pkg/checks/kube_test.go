package checks

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// stickyMapper is discovery as a cached mapper sees it: it knows the kinds it found when it
// last looked (known), and learns the cluster's (installed) only on Reset.
type stickyMapper struct {
	known, installed map[schema.GroupKind]schema.GroupVersionResource
	resets           int
}

func (m *stickyMapper) RESTMapping(gk schema.GroupKind, _ ...string) (*meta.RESTMapping, error) {
	gvr, ok := m.known[gk]
	if !ok {
		return nil, fmt.Errorf("no matches for kind %q in group %q", gk.Kind, gk.Group)
	}
	return &meta.RESTMapping{Resource: gvr, GroupVersionKind: gvr.GroupVersion().WithKind(gk.Kind), Scope: meta.RESTScopeNamespace}, nil
}

func (m *stickyMapper) Reset() {
	m.resets++
	m.known = m.installed
}

func TestKubeCheck(t *testing.T) {
	deployments := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	certificates := schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	kinds := map[schema.GroupKind]schema.GroupVersionResource{
		{Group: "apps", Kind: "Deployment"}: deployments, {Group: "cert-manager.io", Kind: "Certificate"}: certificates,
	}
	rolledOut := func(version string) *unstructured.Unstructured {
		u := object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(1)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(1), "updatedReplicas": int64(1), "availableReplicas": int64(1)}})
		u.SetNamespace("team-a")
		u.SetLabels(map[string]string{"version": version})
		return u
	}
	deploy := Kube{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "web"}
	withField := deploy
	withField.Field, withField.Equals = "{.metadata.labels.version}", "v2"
	cert := Kube{APIVersion: "cert-manager.io/v1", Kind: "Certificate", Namespace: "team-a", Name: "web", Condition: "Ready", Status: "True"}
	tests := []struct {
		name string
		kube Kube
		// noCluster: the runner has no client for the Destination.
		noCluster bool
		// known: the kinds the mapper found when it last looked; all of them when nil.
		known    map[schema.GroupKind]schema.GroupVersionResource
		objects  []runtime.Object
		pass     bool
		unknown  bool
		errHas   string
		resets   int
		thenPass bool // run again: the check passes now
	}{
		{name: "no cluster access: unknown, never failed", kube: deploy, noCluster: true, unknown: true, errHas: "no access to the cluster"},
		{name: "rolled out", kube: deploy, objects: []runtime.Object{rolledOut("v1")}, pass: true},
		{name: "not there", kube: deploy, errHas: "Deployment team-a/web does not exist"},
		{name: "the field as declared", kube: withField, objects: []runtime.Object{rolledOut("v2")}, pass: true},
		{name: "the old version's field", kube: withField, objects: []runtime.Object{rolledOut("v1")}, errHas: `is "v1", want "v2"`},
		{name: "a kind installed since discovery was read: fails once, found after a reset", kube: cert,
			known: map[schema.GroupKind]schema.GroupVersionResource{{Group: "apps", Kind: "Deployment"}: deployments},
			objects: []runtime.Object{func() *unstructured.Unstructured {
				u := object("Certificate", map[string]any{"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}})
				u.SetAPIVersion("cert-manager.io/v1")
				u.SetNamespace("team-a")
				return u
			}()},
			errHas: `finding the resource of cert-manager.io/v1 Certificate`, resets: 1, thenPass: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			known := tt.known
			if known == nil {
				known = kinds
			}
			mapper := &stickyMapper{known: known, installed: kinds}
			r := &Runner{Mapper: mapper}
			if !tt.noCluster {
				r.Kube = dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), tt.objects...)
			}
			res := r.runKube(context.Background(), &tt.kube)
			if res.Pass != tt.pass || res.Unknown != tt.unknown || !strings.Contains(res.Err, tt.errHas) {
				t.Fatalf("%+v, want pass=%v unknown=%v err containing %q", res, tt.pass, tt.unknown, tt.errHas)
			}
			if mapper.resets != tt.resets {
				t.Errorf("mapper reset %d times, want %d", mapper.resets, tt.resets)
			}
			if tt.thenPass {
				if res := r.runKube(context.Background(), &tt.kube); !res.Pass {
					t.Errorf("after the reset: %+v, want a pass", res)
				}
			}
		})
	}
}
