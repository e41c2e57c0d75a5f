package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Bad flags get one line and exit 2 before anything starts.
func TestMainRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fleet", "-1"}, "--fleet must be 0 or more"},
		{[]string{"--fleet", "5", "--fleet-slots", "0"}, "--fleet-slots 1 or more"},
		{[]string{"--kratix", "2019"}, "--kratix"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := Main(context.Background(), tc.args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
			if got := stderr.String(); !strings.Contains(got, tc.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("stderr = %q, want one line with %q", got, tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing: nothing started", stdout.String())
			}
		})
	}
}
