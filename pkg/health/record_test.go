package health

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// memRecords is a namespace's HealthRecords in memory, with the apiserver's compare-and-swap
// on resourceVersion, and its refusals of a create that names one and an update that does not. interfere, when set, runs before each call (get, create, update) and may
// change the store, as another writer would, or answer the call with an error.
type memRecords struct {
	objs      map[string]*unstructured.Unstructured
	rv        int
	calls     []string
	interfere func(m *memRecords, call string) error
}

var recordsGR = schema.GroupResource{Group: GroupVersion.Group, Resource: "healthrecords"}

func (m *memRecords) enter(call string) error {
	m.calls = append(m.calls, call)
	if m.interfere != nil {
		return m.interfere(m, call)
	}
	return nil
}

func (m *memRecords) put(obj *unstructured.Unstructured) *unstructured.Unstructured {
	m.rv++
	obj = obj.DeepCopy()
	obj.SetResourceVersion(strconv.Itoa(m.rv))
	m.objs[obj.GetName()] = obj
	return obj.DeepCopy()
}

func (m *memRecords) Get(_ context.Context, name string, _ metav1.GetOptions, _ ...string) (*unstructured.Unstructured, error) {
	if err := m.enter("get"); err != nil {
		return nil, err
	}
	if obj, ok := m.objs[name]; ok {
		return obj.DeepCopy(), nil
	}
	return nil, apierrors.NewNotFound(recordsGR, name)
}

func (m *memRecords) Create(_ context.Context, obj *unstructured.Unstructured, _ metav1.CreateOptions, _ ...string) (*unstructured.Unstructured, error) {
	if err := m.enter("create"); err != nil {
		return nil, err
	}
	if obj.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if _, ok := m.objs[obj.GetName()]; ok {
		return nil, apierrors.NewAlreadyExists(recordsGR, obj.GetName())
	}
	return m.put(obj), nil
}

func (m *memRecords) Update(_ context.Context, obj *unstructured.Unstructured, _ metav1.UpdateOptions, _ ...string) (*unstructured.Unstructured, error) {
	if err := m.enter("update"); err != nil {
		return nil, err
	}
	if obj.GetResourceVersion() == "" {
		return nil, apierrors.NewBadRequest("metadata.resourceVersion must be specified for an update")
	}
	current, ok := m.objs[obj.GetName()]
	if !ok {
		return nil, apierrors.NewNotFound(recordsGR, obj.GetName())
	}
	if obj.GetResourceVersion() != current.GetResourceVersion() {
		return nil, apierrors.NewConflict(recordsGR, obj.GetName(), errors.New("the object has been modified"))
	}
	return m.put(obj), nil
}

func TestWriteRecord(t *testing.T) {
	ref := ResourceRef{Namespace: "team-a", Name: "web"}
	record := func(state string, lastRun int64) *HealthRecord {
		return NewRecord("webapp", ref, state, lastRun, map[string]any{"checks": map[string]any{}})
	}
	// stored writes a record into the store as another writer would, returning it as written.
	stored := func(m *memRecords, rec *HealthRecord) *HealthRecord {
		obj, err := plain(rec)
		if err != nil {
			t.Fatal(err)
		}
		written, err := FromUnstructured[HealthRecord](m.put(obj))
		if err != nil {
			t.Fatal(err)
		}
		return written
	}
	// once interferes with the first call named: another writer's write before it, or an error.
	once := func(call string, do func(m *memRecords) error) func(*memRecords, string) error {
		done := false
		return func(m *memRecords, c string) error {
			if c != call || done {
				return nil
			}
			done = true
			return do(m)
		}
	}
	tests := []struct {
		name string
		// setup fills the store and returns the record as last written by this writer, if any.
		setup     func(m *memRecords) *HealthRecord
		interfere func(m *memRecords, call string) error
		calls     []string
		wantErr   string
	}{
		{name: "the first record is created",
			calls: []string{"get", "create"}},
		{name: "a record there and none written yet: read, then updated",
			setup: func(m *memRecords) *HealthRecord { stored(m, record(StateUnhealthy, 1)); return nil },
			calls: []string{"get", "update"}},
		{name: "the record as last written: updated in one request",
			setup: func(m *memRecords) *HealthRecord { return stored(m, record(StateUnhealthy, 1)) },
			calls: []string{"update"}},
		{name: "another writer's since: the conflict reads it, then updates",
			setup: func(m *memRecords) *HealthRecord {
				prev := stored(m, record(StateUnhealthy, 1))
				stored(m, record(StateUnknown, 2))
				return prev
			},
			calls: []string{"update", "get", "update"}},
		{name: "deleted since it was last written: created again",
			setup: func(m *memRecords) *HealthRecord {
				prev := stored(m, record(StateUnhealthy, 1))
				delete(m.objs, prev.Name)
				return prev
			},
			calls: []string{"update", "get", "create"}},
		{name: "created by another writer between the read and the create: read again, updated",
			interfere: once("create", func(m *memRecords) error { stored(m, record(StateUnknown, 2)); return nil }),
			calls:     []string{"get", "create", "get", "update"}},
		{name: "a conflict on every write: tried twice, then the error",
			setup: func(m *memRecords) *HealthRecord { stored(m, record(StateUnhealthy, 1)); return nil },
			interfere: func(m *memRecords, call string) error {
				if call == "update" {
					return apierrors.NewConflict(recordsGR, "web", errors.New("the object has been modified"))
				}
				return nil
			},
			calls: []string{"get", "update", "get", "update"}, wantErr: "writing HealthRecord team-a/"},
		{name: "refused: no second try",
			setup: func(m *memRecords) *HealthRecord { return stored(m, record(StateUnhealthy, 1)) },
			interfere: once("update", func(*memRecords) error {
				return apierrors.NewForbidden(recordsGR, "web", errors.New("no update on healthrecords"))
			}),
			calls: []string{"update"}, wantErr: "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &memRecords{objs: map[string]*unstructured.Unstructured{}}
			var prev *HealthRecord
			if tt.setup != nil {
				prev = tt.setup(m)
			}
			m.interfere = tt.interfere
			rec := record(StateHealthy, 3)
			got, err := WriteRecord(context.Background(), m, rec, prev)
			if !slices.Equal(m.calls, tt.calls) {
				t.Errorf("calls = %v, want %v", m.calls, tt.calls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WriteRecord() error = %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("WriteRecord() error = %v", err)
			}
			held, _ := FromUnstructured[HealthRecord](m.objs[rec.Name])
			if held == nil || held.Data.State != StateHealthy || held.Data.LastRun != 3 {
				t.Errorf("stored record = %+v, want healthy at 3", held)
			}
			if got.ResourceVersion != held.ResourceVersion {
				t.Errorf("returned version %s, stored %s: the next write would conflict", got.ResourceVersion, held.ResourceVersion)
			}
		})
	}
}
