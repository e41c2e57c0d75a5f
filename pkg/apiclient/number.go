package apiclient

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// NestedInt64 reads a whole number from an object decoded from JSON or YAML, where it may be an
// int64 or a float64; 0 when absent.
func NestedInt64(obj map[string]any, path ...string) int64 {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
