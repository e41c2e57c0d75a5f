package stage

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kratix-turnstile/turnstile/test/errcheck"
)

func TestCheckFlagsValidate(t *testing.T) {
	ok := checkFlags{interval: 10 * time.Second, wait: time.Minute, minHealthy: 30 * time.Second,
		source: checkSource{httpURL: "http://web:8080/healthz", timeout: "5s", failureThreshold: 3}}
	tests := []struct {
		name   string
		change func(*checkFlags)
		want   string
	}{
		{"valid", func(*checkFlags) {}, ""},
		{"a document leaves the check flags alone", func(f *checkFlags) { f.source = checkSource{inline: "x", timeout: "soon"} }, ""},
		{"the edges", func(f *checkFlags) {
			f.interval, f.wait, f.source.timeout, f.source.failureThreshold = time.Hour, 24*time.Hour, "5m", 100
		}, ""},
		{"no interval", func(f *checkFlags) { f.interval = 0 }, "--interval must be at least 1s, got 0s"},
		{"hot loop", func(f *checkFlags) { f.interval = time.Millisecond }, "--interval must be at least 1s, got 1ms"},
		{"rare interval", func(f *checkFlags) { f.interval = 2 * time.Hour }, "--interval must be at most 1h, got 2h0m0s"},
		{"negative wait", func(f *checkFlags) { f.wait = -time.Second }, "--wait must not be negative"},
		{"long wait", func(f *checkFlags) { f.wait = 48 * time.Hour }, "--wait must be at most 24h"},
		{"day-long soak", func(f *checkFlags) { f.wait, f.minHealthy = 0, 25*time.Hour }, "--min-healthy must be at most 24h, got 25h0m0s"},
		{"http port 0", func(f *checkFlags) { f.source.httpURL = "http://web:0/" }, `--http-url "http://web:0/": port 0, want 1 to 65535`},
		{"http port 99999", func(f *checkFlags) { f.source.httpURL = "http://web:99999/" }, `--http-url "http://web:99999/": port 99999, want 1 to 65535`},
		{"relative URL", func(f *checkFlags) { f.source.httpURL = "/healthz" }, `--http-url "/healthz": want an absolute http or https URL`},
		{"tcp port 0", func(f *checkFlags) { f.source = checkSource{tcpAddress: "db:0", timeout: "5s", failureThreshold: 3} }, `--tcp-address "db:0": port 0, want 1 to 65535`},
		{"bad status", func(f *checkFlags) { f.source.expectStatus = []int{99} }, "--expect-status 99: not an HTTP status code"},
		{"bad timeout", func(f *checkFlags) { f.source.timeout = "soon" }, `--timeout "soon": want a duration like 2s`},
		{"short timeout", func(f *checkFlags) { f.source.timeout = "10ms" }, "--timeout must be at least 100ms, got 10ms"},
		{"long timeout", func(f *checkFlags) { f.source.timeout = "1h" }, "--timeout must be at most 5m, got 1h0m0s"},
		{"no failures allowed", func(f *checkFlags) { f.source.failureThreshold = 0 }, "--failure-threshold must be at least 1, got 0"},
		{"endless failures", func(f *checkFlags) { f.source.failureThreshold = 101 }, "--failure-threshold must be at most 100, got 101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.change(&f)
			errcheck.Check(t, f.validate(), tt.want)
		})
	}
}

// TestMainRejectsOutOfRange runs the binary's entry point: a value out of range is one line
// naming the flag, exit 1, before anything is read or written.
func TestMainRejectsOutOfRange(t *testing.T) {
	t.Setenv(DirsEnv, t.TempDir()) // nothing to read there: validation must come first
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"acquire", "--lease-duration=1193047h"}, "turnstile acquire: --lease-duration must be at most 24h, got 1193047h0m0s"},
		{[]string{"acquire", "--lease-duration=3s"}, "turnstile acquire: --lease-duration must be at least 15s, got 3s"},
		{[]string{"acquire", "--slots=5000"}, `turnstile acquire: invalid argument "5000" for "--slots" flag: want a number of requests from 1 to 1000`},
		{[]string{"acquire", "--default-wave=-1"}, "turnstile acquire: --default-wave must be at least 0, got -1"},
		{[]string{"acquire", "--default-wave=100000"}, "turnstile acquire: --default-wave must be at most 1000, got 100000"},
		{[]string{"acquire", "--require-approval-waves=1,2000"}, "turnstile acquire: --require-approval-waves must list waves from 0 to 1000, got 2000"},
		{[]string{"acquire", "--allow-window=0 2 * * 1-5 for 4h in Mars/Olympus"}, `turnstile acquire: --allow-window: window "0 2 * * 1-5 for 4h in Mars/Olympus": time zone "Mars/Olympus"`},
		{[]string{"acquire", "--deny-window=61 * * * * for 1h"}, `turnstile acquire: --deny-window: window "61 * * * * for 1h": cron`},
		{[]string{"acquire", "--wave-soak=200h"}, "turnstile acquire: --wave-soak must be at most 168h"},
		{[]string{"acquire", "--not-before=tomorrow"}, `turnstile acquire: --not-before "tomorrow": want an RFC 3339 time`},
		{[]string{"await", "--max-failed-ratio=NaN"}, "turnstile await: --max-failed-ratio must be a share between 0 and 1, got NaN"},
		{[]string{"await", "--progress-deadline=10000h"}, "turnstile await: --progress-deadline must be at most 168h"},
		{[]string{"check", "--interval=0s"}, "turnstile check: --interval must be at least 1s, got 0s"},
		{[]string{"check", "--http-url=http://web:99999/"}, `turnstile check: --http-url "http://web:99999/": port 99999, want 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, &stdout, &stderr)
			if code != 1 || !strings.HasPrefix(stderr.String(), tt.want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr.String(), tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q: nothing should have run", stdout.String())
			}
		})
	}
}
