package checks

import (
	"strings"
	"testing"
	"time"
)

const fullDocument = `apiVersion: turnstile.kratix.io/v1alpha1
kind: Checks
version: v2
checks:
  - name: web
    http: {url: "https://web.example.com/healthz", expectStatus: [200, 204], bodyContains: ok, jsonPath: "{.status}", equals: up}
    timeout: 2s
    failureThreshold: 2
  - name: db
    tcp: {address: "db.example.com:5432"}
    onFailure: degraded
  - name: rollout
    kube: {apiVersion: apps/v1, kind: Deployment, namespace: web, name: web, minReadySeconds: 30}
  - name: cert
    kube: {apiVersion: cert-manager.io/v1, kind: Certificate, namespace: web, name: tls, condition: Ready}
  - name: errors
    prometheus: {url: "http://prometheus:9090", query: "sum(rate(errors[5m]))", expect: "result < 0.01", minSamples: 2}
`

func TestParseFillsDefaults(t *testing.T) {
	doc, err := Parse([]byte(fullDocument))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Version != "v2" || len(doc.Checks) != 5 {
		t.Fatalf("doc = %+v", doc)
	}
	web, db, cert := doc.Checks[0], doc.Checks[1], doc.Checks[3]
	if web.Timeout.Duration != 2*time.Second || web.FailureThreshold != 2 || web.SuccessThreshold != 1 || web.OnFailure != "unhealthy" {
		t.Errorf("web = %+v", web)
	}
	if db.Timeout.Duration != 5*time.Second || db.FailureThreshold != 3 || db.OnFailure != "degraded" {
		t.Errorf("db = %+v", db)
	}
	if cert.Kube.Status != "True" {
		t.Errorf("cert condition status defaulted to %q", cert.Kube.Status)
	}
}

func TestParseNamesWhatIsWrong(t *testing.T) {
	head := "apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks:\n"
	tests := []struct{ name, doc, want string }{
		{"not YAML", "checks: [", "reading the checks document"},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", "want apiVersion turnstile.kratix.io/v1alpha1 and kind Checks"},
		{"no checks", head, "no checks"},
		{"unknown field", head + "  - name: a\n    tcp: {address: x:1}\n    retries: 3\n", `unknown field "retries"`},
		{"unknown check type", head + "  - name: a\n    grpc: {address: x:1}\n", `unknown field "grpc"`},
		{"no type", head + "  - name: a\n", `check "a": want exactly one of http, tcp, kube or prometheus, got 0`},
		{"two types", head + "  - name: a\n    tcp: {address: x:1}\n    http: {url: http://x}\n", "got 2"},
		{"no name", head + "  - tcp: {address: x:1}\n", "checks[0]: name is required"},
		{"twice", head + "  - {name: a, tcp: {address: x:1}}\n  - {name: a, tcp: {address: x:2}}\n", `check "a": the name is used twice`},
		{"bad URL", head + "  - {name: a, http: {url: \"ftp://x\"}}\n", `check "a": http.url "ftp://x"`},
		{"relative URL", head + "  - {name: a, http: {url: /healthz}}\n", `http.url "/healthz"`},
		{"bad status", head + "  - {name: a, http: {url: \"http://x\", expectStatus: [700]}}\n", "http.expectStatus 700"},
		{"bad JSONPath", head + "  - {name: a, http: {url: \"http://x\", jsonPath: \"{.status\"}}\n", `http.jsonPath "{.status"`},
		{"bad CA", head + "  - {name: a, http: {url: \"https://x\", caBundle: nope}}\n", "http.caBundle: no PEM certificate"},
		{"bad address", head + "  - {name: a, tcp: {address: x}}\n", `tcp.address "x": want host:port`},
		{"bad port", head + "  - {name: a, tcp: {address: \"x:99999\"}}\n", `tcp.address "x:99999"`},
		{"bad duration", head + "  - {name: a, tcp: {address: \"x:1\"}, timeout: soon}\n", `invalid duration "soon"`},
		{"bad onFailure", head + "  - {name: a, tcp: {address: \"x:1\"}, onFailure: fatal}\n", `onFailure "fatal"`},
		{"kube without name", head + "  - {name: a, kube: {apiVersion: v1, kind: Pod}}\n", "kube needs apiVersion, kind and name"},
		{"kube kind without readiness", head + "  - {name: a, kube: {apiVersion: v1, kind: Service, name: s}}\n", "a Service has no built-in readiness"},
		{"bad expect", head + "  - {name: a, prometheus: {url: \"http://p\", query: up, expect: \"up > 1\"}}\n", `prometheus.expect "up > 1"`},
		{"bad number", head + "  - {name: a, prometheus: {url: \"http://p\", query: up, expect: \"result < lots\"}}\n", `"lots" is not a number`},
		{"no query", head + "  - {name: a, prometheus: {url: \"http://p\", expect: \"result > 0\"}}\n", "prometheus.query is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse() error = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

// FuzzParse: the parser never panics, and whatever it accepts survives a round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fullDocument))
	f.Add([]byte("apiVersion: turnstile.kratix.io/v1alpha1\nkind: Checks\nchecks: [{name: a, tcp: {address: \"x:1\"}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			return
		}
		out, err := doc.Marshal()
		if err != nil {
			t.Fatalf("marshalling an accepted document: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("an accepted document does not parse again: %v\n%s", err, out)
		}
	})
}

func TestExpect(t *testing.T) {
	tests := []struct {
		expr string
		v    float64
		want bool
	}{
		{"result < 0.01", 0.001, true}, {"result < 0.01", 0.01, false}, {"result <= 0.01", 0.01, true},
		{"result > 5", 6, true}, {"result >= 5", 5, true}, {"result == 1", 1, true}, {"result != 1", 1, false},
		{"  result<1e-3 ", 0.0001, true},
	}
	for _, tt := range tests {
		e, err := parseExpect(tt.expr)
		if err != nil {
			t.Fatalf("parseExpect(%q): %v", tt.expr, err)
		}
		if got := e.holds(tt.v); got != tt.want {
			t.Errorf("%q with %g = %v, want %v", tt.expr, tt.v, got, tt.want)
		}
	}
}
