package health

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// NewRecord is the HealthRecord reporting a request's health, named like its definition.
func NewRecord(promise string, ref ResourceRef, state string, lastRun int64, details map[string]any) *HealthRecord {
	return &HealthRecord{
		TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "HealthRecord"},
		ObjectMeta: metav1.ObjectMeta{Name: DefinitionName(promise, ref.Namespace, ref.Name), Namespace: ref.Namespace,
			Labels: map[string]string{"kratix.io/promise-name": promise}},
		Data: RecordData{PromiseRef: PromiseRef{Name: promise}, ResourceRef: &ref, State: state, LastRun: lastRun, Details: details},
	}
}

// RecordStore is what writing a record needs of the platform cluster: HealthRecords read,
// created and updated by name in the record's namespace. A dynamic client's resource is one
// (Records); a test's map is another.
type RecordStore interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions, subresources ...string) (*unstructured.Unstructured, error)
	Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions, subresources ...string) (*unstructured.Unstructured, error)
	Update(ctx context.Context, obj *unstructured.Unstructured, opts metav1.UpdateOptions, subresources ...string) (*unstructured.Unstructured, error)
}

// Records is the HealthRecords of namespace, through client.
func Records(client dynamic.Interface, namespace string) RecordStore {
	return client.Resource(HealthRecords).Namespace(namespace)
}

// WriteRecord creates the record, or replaces the data of the one there, and returns it as
// written. Given the record as last written (prev), it updates that at once, in one request;
// otherwise, or on a conflict, it reads the record first. records must be the record's
// namespace's; it needs get, create and update on healthrecords there.
func WriteRecord(ctx context.Context, records RecordStore, rec *HealthRecord, prev *HealthRecord) (*HealthRecord, error) {
	obj, err := plain(rec)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Name == rec.Name && prev.Namespace == rec.Namespace {
		last, err := plain(prev)
		if err != nil {
			return nil, err
		}
		last.Object["data"] = obj.Object["data"]
		written, err := records.Update(ctx, last, metav1.UpdateOptions{})
		if err == nil {
			return FromUnstructured[HealthRecord](written)
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("writing HealthRecord %s/%s: %w", rec.Namespace, rec.Name, err)
		}
	}
	for attempt := 0; ; attempt++ {
		current, err := records.Get(ctx, rec.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			obj.SetResourceVersion("")
			current, err = records.Create(ctx, obj, metav1.CreateOptions{})
		case err == nil:
			current.Object["data"] = obj.Object["data"]
			current, err = records.Update(ctx, current, metav1.UpdateOptions{})
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("writing HealthRecord %s/%s: %w", rec.Namespace, rec.Name, err)
		}
		return FromUnstructured[HealthRecord](current)
	}
}

// plain converts a typed object into the plain maps the dynamic client sends, through JSON so
// that nested structs in details become maps too.
func plain(obj any) (*unstructured.Unstructured, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &u.Object); err != nil {
		return nil, fmt.Errorf("encoding %T: %w", obj, err)
	}
	return u, nil
}
