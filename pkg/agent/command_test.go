package agent

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestMainRejectsOutOfRange: a flag out of range is one line naming it, exit 1, before the agent
// reads a kubeconfig or listens.
func TestMainRejectsOutOfRange(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--heartbeat=0s"}, "turnstile-agent: --heartbeat must be between 10s and 1h, got 0s"},
		{[]string{"--heartbeat=-1m"}, "turnstile-agent: --heartbeat must be between 10s and 1h, got -1m0s"},
		{[]string{"--heartbeat=1s"}, "turnstile-agent: --heartbeat must be between 10s and 1h, got 1s"},
		{[]string{"--heartbeat=2h"}, "turnstile-agent: --heartbeat must be between 10s and 1h, got 2h0m0s"},
		{[]string{"--max-concurrent=0"}, "turnstile-agent: --max-concurrent must be between 1 and 1000, got 0"},
		{[]string{"--max-concurrent=-5"}, "turnstile-agent: --max-concurrent must be between 1 and 1000, got -5"},
		{[]string{"--max-concurrent=100000"}, "turnstile-agent: --max-concurrent must be between 1 and 1000, got 100000"},
		{[]string{"--listen=:99999"}, `turnstile-agent: --listen ":99999": want [host]:port, the port from 0 to 65535`},
		{[]string{"--listen=8080"}, `turnstile-agent: --listen "8080": want [host]:port`},
		{[]string{"--listen=:http"}, `turnstile-agent: --listen ":http": want [host]:port`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"--platform-kubeconfig=/nonexistent"}, tt.args...)
			code := Main(context.Background(), args, &stdout, &stderr)
			if code != 1 || !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr.String(), tt.want)
			}
		})
	}
}

func TestValidateFlagsAcceptsTheEdges(t *testing.T) {
	for _, tt := range []struct {
		heartbeat     string
		maxConcurrent int
		listen        string
	}{
		{"10s", 1, ":8080"}, {"1h", 1000, "127.0.0.1:0"}, {"1m", 64, "[::1]:65535"},
	} {
		d, _ := time.ParseDuration(tt.heartbeat)
		if err := validateFlags(d, tt.maxConcurrent, tt.listen); err != nil {
			t.Errorf("validateFlags(%s, %d, %s) = %v", tt.heartbeat, tt.maxConcurrent, tt.listen, err)
		}
	}
}
