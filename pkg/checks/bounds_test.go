package checks

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const docHead = "apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n"

// manyChecks is a document of n TCP checks.
func manyChecks(n int) string {
	var b strings.Builder
	b.WriteString(docHead)
	for i := range n {
		fmt.Fprintf(&b, "  - {name: c%d, tcp: {address: \"x:1\"}}\n", i)
	}
	return b.String()
}

func TestParseRejectsOutOfRange(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"too many checks", manyChecks(MaxChecks + 1), "checks document: 101 checks, want at most 100"},
		{"too big", docHead + "  - {name: a, tcp: {address: \"x:1\"}}\n#" + strings.Repeat("x", MaxDocumentBytes), "bytes, want at most 262144"},
		{"long name", docHead + "  - {name: " + strings.Repeat("n", 64) + ", tcp: {address: \"x:1\"}}\n", "checks[0]: name: 64 characters, want at most 63"},
		{"short timeout", docHead + "  - {name: a, tcp: {address: \"x:1\"}, timeout: 50ms}\n", `check "a": timeout 50ms: want between 100ms and 5m`},
		{"negative timeout", docHead + "  - {name: a, tcp: {address: \"x:1\"}, timeout: -1s}\n", `check "a": timeout -1s: want between 100ms and 5m`},
		{"long timeout", docHead + "  - {name: a, tcp: {address: \"x:1\"}, timeout: 6m}\n", `check "a": timeout 6m0s: want between 100ms and 5m`},
		{"negative successThreshold", docHead + "  - {name: a, tcp: {address: \"x:1\"}, successThreshold: -1}\n", `check "a": successThreshold -1: want between 1 and 100`},
		{"huge failureThreshold", docHead + "  - {name: a, tcp: {address: \"x:1\"}, failureThreshold: 1000}\n", `check "a": failureThreshold 1000: want between 1 and 100`},
		{"overflowing failureThreshold", docHead + "  - {name: a, tcp: {address: \"x:1\"}, failureThreshold: 99999999999999999999}\n", "failureThreshold"},
		{"http port 0", docHead + "  - {name: a, http: {url: \"http://x:0/\"}}\n", `check "a": http.url "http://x:0/": port 0, want 1 to 65535`},
		{"http port 99999", docHead + "  - {name: a, http: {url: \"https://x:99999/healthz\"}}\n", `http.url "https://x:99999/healthz": port 99999, want 1 to 65535`},
		{"http without a host", docHead + "  - {name: a, http: {url: \"http://:80/\"}}\n", `http.url "http://:80/": want an absolute http or https URL`},
		{"prometheus port 0", docHead + "  - {name: a, prometheus: {url: \"http://p:0\", query: up, expect: \"result > 0\"}}\n", `check "a": prometheus.url "http://p:0": port 0, want 1 to 65535`},
		{"tcp port 0", docHead + "  - {name: a, tcp: {address: \"x:0\"}}\n", `check "a": tcp.address "x:0": port 0, want 1 to 65535`},
		{"tcp named port", docHead + "  - {name: a, tcp: {address: \"x:http\"}}\n", `tcp.address "x:http": port http, want 1 to 65535`},
		{"negative minReadySeconds", docHead + "  - {name: a, kube: {apiVersion: apps/v1, kind: Deployment, name: w, minReadySeconds: -1}}\n", `check "a": kube.minReadySeconds -1: want between 0 and 3600`},
		{"long minReadySeconds", docHead + "  - {name: a, kube: {apiVersion: apps/v1, kind: Deployment, name: w, minReadySeconds: 86400}}\n", `kube.minReadySeconds 86400: want between 0 and 3600`},
		{"negative minSamples", docHead + "  - {name: a, prometheus: {url: \"http://p\", query: up, expect: \"result > 0\", minSamples: -1}}\n", `check "a": prometheus.minSamples -1: want between 1 and 1000`},
		{"huge minSamples", docHead + "  - {name: a, prometheus: {url: \"http://p\", query: up, expect: \"result > 0\", minSamples: 1001}}\n", `prometheus.minSamples 1001: want between 1 and 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") || len(err.Error()) > 300 {
				t.Errorf("error is not one short line: %q", err)
			}
		})
	}
}

func TestParseAcceptsTheEdges(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"the most checks", manyChecks(MaxChecks)},
		{"the longest name", docHead + "  - {name: " + strings.Repeat("n", MaxNameLength) + ", tcp: {address: \"x:1\"}}\n"},
		{"the shortest and longest timeouts", docHead + "  - {name: a, tcp: {address: \"x:1\"}, timeout: 100ms}\n  - {name: b, tcp: {address: \"x:1\"}, timeout: 5m}\n"},
		{"the highest thresholds", docHead + "  - {name: a, tcp: {address: \"x:65535\"}, successThreshold: 100, failureThreshold: 100}\n"},
		{"ports at the edges", docHead + "  - {name: a, http: {url: \"http://x:1/\"}}\n  - {name: b, http: {url: \"https://x:65535/\"}}\n  - {name: c, http: {url: \"https://x/\"}}\n"},
		{"the longest soak", docHead + "  - {name: a, kube: {apiVersion: apps/v1, kind: Deployment, name: w, minReadySeconds: 3600}}\n"},
		{"the most samples", docHead + "  - {name: a, prometheus: {url: \"http://p:9090\", query: up, expect: \"result > 0\", minSamples: 1000}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.doc)); err != nil {
				t.Fatalf("Parse() = %v", err)
			}
		})
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct{ schedule, want string }{
		{"@every 1s", ""},
		{"@every 30s", ""},
		{"@every 24h", ""},
		{"@hourly", ""},
		{"@daily", ""},
		{"*/5 * * * *", ""},
		{"0 3 * * *", ""},
		{"0 3 1-31 * 1", ""}, // day of month or day of week: every day
		{"CRON_TZ=UTC @every 5s", ""},
		{"@every -5s", `schedule "@every -5s": runs every -5s, want between 1s and 24h`},
		{"@every 0s", `schedule "@every 0s": runs every 0s, want between 1s and 24h`},
		{"@every 500ms", "runs every 500ms, want between 1s and 24h"},
		{"@every 25h", "runs every 25h, want between 1s and 24h"},
		{"@every 1500ms", `schedule "@every 1500ms": want whole seconds (cron would run it every 1s)`},
		{"@weekly", `schedule "@weekly": runs less often than daily`},
		{"@monthly", "runs less often than daily"},
		{"0 0 * * 1-5", "runs less often than daily"},
		{"0 0 1 * *", "runs less often than daily"},
		{"0 0 * 1-6 *", "runs less often than daily"},
		{"0 0 1-15 * 1-5", "runs less often than daily"},
		{"TZ=UTC", `schedule "TZ=UTC": want a schedule after the time zone`},
		{"CRON_TZ=Europe/Paris", "want a schedule after the time zone"},
		{"*/5 * *", `schedule "*/5 * *"`},
		{"@every soon", `schedule "@every soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.schedule, func(t *testing.T) {
			_, err := ParseSchedule(tt.schedule)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseSchedule() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSchedule() error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestClipResult(t *testing.T) {
	long := strings.Repeat("é", MaxErrorLength) // two bytes a rune: the cut must not split one
	values := make([]float64, 10000)
	res := clipResult(Result{Err: long, Observed: map[string]any{"jsonPath": long, "values": values, "samples": int64(10000)}})
	if len(res.Err) > MaxErrorLength || !utf8.ValidString(res.Err) || !strings.HasSuffix(res.Err, "…") {
		t.Errorf("error clipped to %d bytes, valid %v", len(res.Err), utf8.ValidString(res.Err))
	}
	if s := res.Observed["jsonPath"].(string); len(s) > MaxObservedLength || !utf8.ValidString(s) {
		t.Errorf("observed string clipped to %d bytes", len(s))
	}
	if v := res.Observed["values"].([]float64); len(v) != MaxObservedSamples {
		t.Errorf("%d observed samples kept, want %d", len(v), MaxObservedSamples)
	}
	if res.Observed["samples"] != int64(10000) {
		t.Errorf("the sample count changed: %v", res.Observed["samples"])
	}
	if short := clipResult(Result{Err: "refused"}); short.Err != "refused" {
		t.Errorf("a short error changed: %q", short.Err)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute: "5m", 24 * time.Hour: "24h", 10 * time.Second: "10s", 100 * time.Millisecond: "100ms",
		90 * time.Minute: "1h30m", time.Hour + 10*time.Second: "1h0m10s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
