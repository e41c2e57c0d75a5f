package checks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestVersionProven(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":"up","version":"v2"}`)
	}))
	defer server.Close()
	url := server.URL + "/"
	tests := []struct {
		name    string
		version string
		http    HTTP
		pass    bool
		proven  bool
	}{
		{"a JSONPath equal to ${version}, answered", "v2", HTTP{URL: url, JSONPath: "{.version}", Equals: VersionVar}, true, true},
		{"a JSONPath equal to the substituted version", "v2", HTTP{URL: url, JSONPath: "{.version}", Equals: "v2"}, true, true},
		{"the old version answers", "v3", HTTP{URL: url, JSONPath: "{.version}", Equals: VersionVar}, false, false},
		{"a body containing the version proves nothing: v1.2.10 contains v1.2.1", "v2", HTTP{URL: url, BodyContains: VersionVar}, true, false},
		{"no version assertion: healthy, not proven", "v2", HTTP{URL: url}, true, false},
		{"another JSONPath expectation is no version assertion", "v2", HTTP{URL: url, JSONPath: "{.status}", Equals: "up"}, true, false},
		{"no version: ${version} is not taken as anything non-empty", "", HTTP{URL: url, JSONPath: "{.version}", Equals: VersionVar}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.http
			doc := Document{APIVersion: APIVersion, Kind: Kind, Version: tt.version,
				Checks: []Check{{Name: "web", HTTP: &h, FailureThreshold: 1}}}
			if err := doc.validate(); err != nil {
				t.Fatal(err)
			}
			rep := doc.Round(context.Background(), &Runner{}, nil, time.Now())
			if c := rep.Checks["web"]; c.Pass != tt.pass || rep.VersionProven != tt.proven {
				t.Fatalf("pass=%v proven=%v (%s), want pass=%v proven=%v", c.Pass, rep.VersionProven, c.Error, tt.pass, tt.proven)
			}
			if h.Equals != tt.http.Equals || h.BodyContains != tt.http.BodyContains {
				t.Errorf("the document's check was changed: %+v", h)
			}
		})
	}
}

func TestVersionProvenNeedsEveryAssertion(t *testing.T) {
	checks := []Check{
		{Name: "a", HTTP: &HTTP{URL: "http://a", JSONPath: "{.v}", Equals: "v2"}},
		{Name: "b", Kube: &Kube{Field: "{.metadata.labels.version}", Equals: VersionVar}},
		{Name: "c", TCP: &TCP{Address: "c:1"}},
	}
	tests := []struct {
		name    string
		results []Result
		want    bool
	}{
		{"all assertions pass", []Result{{Pass: true}, {Pass: true}, {}}, true},
		{"one assertion fails", []Result{{Pass: true}, {}, {Pass: true}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionProven(checks, tt.results, "v2"); got != tt.want {
				t.Errorf("versionProven() = %v, want %v", got, tt.want)
			}
		})
	}
	if versionProven(checks[2:], []Result{{Pass: true}}, "v2") {
		t.Error("a document without a version assertion proved the version")
	}
}

func TestKubeField(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "web", "labels": map[string]any{"version": "v2"}},
	}}
	tests := []struct {
		name   string
		kube   Kube
		ready  bool
		pass   bool
		errHas string
	}{
		{"the field has the version", Kube{Field: "{.metadata.labels.version}", Equals: "v2"}, true, true, ""},
		{"the field has another version", Kube{Field: "{.metadata.labels.version}", Equals: "v3"}, true, false, `want "v3"`},
		{"a missing field", Kube{Field: "{.metadata.labels.nope}"}, true, false, "anything non-empty"},
		{"not ready: the field does not make it pass", Kube{Field: "{.metadata.labels.version}", Equals: "v2"}, false, false, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.kube
			res := Result{Pass: tt.ready}
			if !tt.ready {
				res.Err = "not ready"
			}
			res = fieldEquals(&k, obj, res)
			if res.Pass != tt.pass || !strings.Contains(res.Err, tt.errHas) {
				t.Fatalf("pass=%v err=%q, want pass=%v err containing %q", res.Pass, res.Err, tt.pass, tt.errHas)
			}
		})
	}
}

func TestKubeFieldValidation(t *testing.T) {
	base := Kube{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	tests := []struct {
		name   string
		change func(*Kube)
		want   string
	}{
		{"a field and a version", func(k *Kube) { k.Field, k.Equals = "{.metadata.labels.version}", VersionVar }, ""},
		{"equals without a field", func(k *Kube) { k.Equals = "v2" }, "needs kube.field"},
		{"a bad JSONPath", func(k *Kube) { k.Field = "{.metadata[" }, "kube.field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := base
			tt.change(&k)
			err := k.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
