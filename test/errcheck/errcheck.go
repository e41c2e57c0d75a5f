// Package errcheck is the table tests' check of a validation error: none when none is wanted,
// else one that contains what is wanted, on one line.
package errcheck

import (
	"strings"
	"testing"
)

// Check fails t unless err is nil and want empty, or err contains want and is one line.
func Check(t testing.TB, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("validate() = %v, want no error", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("validate() = %v, want %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}
