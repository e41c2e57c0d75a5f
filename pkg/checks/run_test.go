package checks

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// run runs one check. Only a test about time gives it a timeout: the others get all the time a
// check may have, so that a loaded machine (loading the system CAs, say) does not turn their
// outcome into a timeout.
func run(t *testing.T, c Check) Result {
	t.Helper()
	if c.Timeout.Duration == 0 {
		c.Timeout = Duration{MaxTimeout}
	}
	doc := Document{APIVersion: APIVersion, Kind: Kind, Checks: []Check{c}}
	if err := doc.validate(); err != nil {
		t.Fatal(err)
	}
	return (&Runner{}).Run(context.Background(), doc.Checks[0])
}

func TestHTTPCheck(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			fmt.Fprint(w, `{"status":"up","version":"v2"}`)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/auth":
			if r.Header.Get("Authorization") != "Bearer t" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}
	}))
	defer server.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer tls.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tls.Certificate().Raw}))

	tests := []struct {
		name    string
		http    HTTP
		timeout time.Duration
		pass    bool
		errHas  string
	}{
		{"2xx passes", HTTP{URL: server.URL + "/ok"}, 0, true, ""},
		{"5xx fails", HTTP{URL: server.URL + "/down"}, 0, false, "answered 503"},
		{"an expected status passes", HTTP{URL: server.URL + "/nocontent", ExpectStatus: []int{204}}, 0, true, ""},
		{"an unexpected status fails", HTTP{URL: server.URL + "/ok", ExpectStatus: []int{204}}, 0, false, "answered 200"},
		{"a body substring", HTTP{URL: server.URL + "/ok", BodyContains: `"up"`}, 0, true, ""},
		{"a missing body substring", HTTP{URL: server.URL + "/ok", BodyContains: "down"}, 0, false, `does not contain "down"`},
		{"a JSONPath value", HTTP{URL: server.URL + "/ok", JSONPath: "{.version}", Equals: "v2"}, 0, true, ""},
		{"a wrong JSONPath value", HTTP{URL: server.URL + "/ok", JSONPath: "{.version}", Equals: "v3"}, 0, false, `{.version} is "v2", want "v3"`},
		{"a missing JSONPath", HTTP{URL: server.URL + "/ok", JSONPath: "{.nope}"}, 0, false, "want \"anything non-empty\""},
		{"headers are sent", HTTP{URL: server.URL + "/auth", Headers: map[string]string{"Authorization": "Bearer t"}}, 0, true, ""},
		{"a redirect is not health", HTTP{URL: server.URL + "/moved"}, 0, false, "answered 302"},
		{"too slow", HTTP{URL: server.URL + "/slow"}, 100 * time.Millisecond, false, "timed out after 100ms"},
		{"TLS with its CA", HTTP{URL: tls.URL, CABundle: ca}, 0, true, ""},
		{"TLS without it", HTTP{URL: tls.URL}, 0, false, "certificate"},
		{"nothing listening", HTTP{URL: "http://127.0.0.1:1/"}, 0, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.http
			res := run(t, Check{Name: "web", HTTP: &h, Timeout: Duration{tt.timeout}})
			if res.Pass != tt.pass || !strings.Contains(res.Err, tt.errHas) {
				t.Fatalf("pass=%v err=%q, want pass=%v err containing %q", res.Pass, res.Err, tt.pass, tt.errHas)
			}
			if res.Latency <= 0 {
				t.Error("no latency measured")
			}
		})
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if res := run(t, Check{Name: "db", TCP: &TCP{Address: addr}}); !res.Pass {
		t.Errorf("open port: %+v", res)
	}
	l.Close()
	if res := run(t, Check{Name: "db", TCP: &TCP{Address: addr}}); res.Pass || !strings.Contains(res.Err, "refused") {
		t.Errorf("closed port: %+v", res)
	}
}

func TestPrometheusCheck(t *testing.T) {
	answers := map[string]string{
		"good":    `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.001"]},{"metric":{},"value":[1,"0.002"]}]}}`,
		"bad":     `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.001"]},{"metric":{},"value":[1,"0.5"]}]}}`,
		"empty":   `{"status":"success","data":{"resultType":"vector","result":[]}}`,
		"scalar":  `{"status":"success","data":{"resultType":"scalar","result":[1,"0.003"]}}`,
		"invalid": `{"status":"error","errorType":"bad_data","error":"parse error"}`,
		"matrix":  `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
	}
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body, ok := answers[r.URL.Query().Get("query")]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
		}
		fmt.Fprint(w, body)
	}))
	defer server.Close()
	tests := []struct {
		query      string
		minSamples int
		pass, unk  bool
		errHas     string
	}{
		{"good", 0, true, false, ""},
		{"bad", 0, false, false, "a sample is 0.5"},
		{"empty", 0, false, true, "0 sample(s), want at least 1"},
		{"good", 3, false, true, "2 sample(s), want at least 3"},
		{"scalar", 0, true, false, ""},
		{"invalid", 0, false, false, "parse error"},
		{"matrix", 0, false, false, `result type "matrix"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.query, tt.minSamples), func(t *testing.T) {
			res := run(t, Check{Name: "errors", Prometheus: &Prometheus{URL: server.URL, Query: tt.query, Expect: "result < 0.01", MinSamples: tt.minSamples}})
			if res.Pass != tt.pass || res.Unknown != tt.unk || !strings.Contains(res.Err, tt.errHas) {
				t.Fatalf("%+v, want pass=%v unknown=%v err containing %q", res, tt.pass, tt.unk, tt.errHas)
			}
		})
	}
}

func object(kind string, fields map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": kind, "metadata": map[string]any{"name": "web", "generation": int64(3)}}}
	for k, v := range fields {
		u.Object[k] = v
	}
	return u
}

func TestReady(t *testing.T) {
	deploy := &Kube{Kind: "Deployment", Name: "web"}
	tests := []struct {
		name   string
		kube   *Kube
		obj    *unstructured.Unstructured
		pass   bool
		errHas string
	}{
		{"rolled out", deploy, object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2)}}), true, ""},
		{"not observed yet", deploy, object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(2), "replicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(2)}}), false, "has not seen generation 3"},
		{"half updated", deploy, object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(2), "updatedReplicas": int64(1), "availableReplicas": int64(2)}}), false, "1 of 2 replicas updated"},
		{"old pods linger", deploy, object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(3), "updatedReplicas": int64(2), "availableReplicas": int64(2)}}), false, "old replica(s) are still terminating"},
		{"not available", deploy, object("Deployment", map[string]any{"spec": map[string]any{"replicas": int64(2)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(2), "updatedReplicas": int64(2), "availableReplicas": int64(1)}}), false, "1 of 2 replicas available"},
		{"a statefulset counts ready replicas", &Kube{Kind: "StatefulSet"}, object("StatefulSet", map[string]any{"spec": map[string]any{"replicas": int64(1)},
			"status": map[string]any{"observedGeneration": int64(3), "replicas": int64(1), "updatedReplicas": int64(1), "readyReplicas": int64(1)}}), true, ""},
		{"a daemonset", &Kube{Kind: "DaemonSet"}, object("DaemonSet", map[string]any{
			"status": map[string]any{"observedGeneration": int64(3), "desiredNumberScheduled": int64(3), "updatedNumberScheduled": int64(3), "numberAvailable": int64(2)}}), false, "2 of 3 replicas available"},
		{"a condition", &Kube{Kind: "Certificate", Condition: "Ready", Status: "True"}, object("Certificate", map[string]any{
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}}), true, ""},
		{"a false condition", &Kube{Kind: "Certificate", Condition: "Ready", Status: "True"}, object("Certificate", map[string]any{
			"status": map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "False", "message": "pending issuance"}}}}), false, "condition Ready is False, want True: pending issuance"},
		{"no condition yet", &Kube{Kind: "Certificate", Name: "web", Condition: "Ready", Status: "True"}, object("Certificate", nil), false, "has no Ready condition yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Ready(tt.kube, tt.obj)
			if res.Pass != tt.pass || !strings.Contains(res.Err, tt.errHas) {
				t.Fatalf("%+v, want pass=%v err containing %q", res, tt.pass, tt.errHas)
			}
		})
	}
}
