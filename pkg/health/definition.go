package health

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
)

// The group and version of HealthDefinition (SKE's schema) and HealthRecord (Kratix's).
var (
	GroupVersion      = schema.GroupVersion{Group: "platform.kratix.io", Version: "v1alpha1"}
	HealthDefinitions = GroupVersion.WithResource("healthdefinitions")
	HealthRecords     = GroupVersion.WithResource("healthrecords")
)

// Annotations of a HealthDefinition that its records' stamps are made from: the rollout's
// target version, and the uid of the request it checks, which tells this request's records from
// those of an earlier request of the same name.
const (
	VersionAnnotation    = "turnstile.kratix.io/version"
	RequestUIDAnnotation = "turnstile.kratix.io/request-uid"
)

// PromiseRef names a Promise.
type PromiseRef struct {
	Name string `json:"name"`
}

// ResourceRef names a resource request, with the generation the definition was rendered for.
type ResourceRef struct {
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	Generation int64  `json:"generation,omitempty"`
}

// HealthDefinition says how one request's health is checked in its Destination.
type HealthDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              DefinitionSpec `json:"spec"`
}

// DefinitionSpec is SKE's HealthDefinition spec.
type DefinitionSpec struct {
	PromiseRef  PromiseRef     `json:"promiseRef"`
	ResourceRef *ResourceRef   `json:"resourceRef,omitempty"`
	Schedule    string         `json:"schedule"`
	Input       string         `json:"input,omitempty"`
	Workflow    map[string]any `json:"workflow,omitempty"`
}

// HealthRecord is one report of a request's health, which Kratix aggregates into its status.
type HealthRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Data              RecordData `json:"data"`
}

// RecordData is Kratix's HealthRecord payload.
type RecordData struct {
	PromiseRef  PromiseRef     `json:"promiseRef"`
	ResourceRef *ResourceRef   `json:"resourceRef,omitempty"`
	State       string         `json:"state"`
	LastRun     int64          `json:"lastRun,omitempty"`
	Details     map[string]any `json:"details,omitempty"`
}

// DefinitionName is the name of a request's HealthDefinition and HealthRecord:
// <promise>-<namespace>-<name>, unique across the Destinations' requests.
func DefinitionName(promise, namespace, name string) string {
	return promise + "-" + namespace + "-" + name
}

// NewDefinition builds a request's HealthDefinition, checking the schedule and the name.
func NewDefinition(namespace string, promise string, ref ResourceRef, schedule, input, version string) (*HealthDefinition, error) {
	if _, err := checks.ParseSchedule(schedule); err != nil {
		return nil, err
	}
	name := DefinitionName(promise, ref.Namespace, ref.Name)
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return nil, fmt.Errorf("health definition name %q: %s", name, errs[0])
	}
	d := &HealthDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "HealthDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"kratix.io/promise-name": promise}},
		Spec:       DefinitionSpec{PromiseRef: PromiseRef{Name: promise}, ResourceRef: &ref, Schedule: schedule, Input: input},
	}
	if version != "" {
		d.Annotations = map[string]string{VersionAnnotation: version}
	}
	return d, nil
}

// FromUnstructured converts an object read with the dynamic client.
func FromUnstructured[T any](u *unstructured.Unstructured) (*T, error) {
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return &out, nil
}

// ToUnstructured converts an object for the dynamic client.
func ToUnstructured(obj any) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
