// Package checks holds Turnstile's built-in health checks and the small versioned document that
// declares them, carried in a HealthDefinition's spec.input:
//
//	apiVersion: turnstile.kratix.io/v1alpha1
//	kind: Checks
//	version: v2                 # the rollout's target version, stamped into every record
//	checks:
//	  - name: web
//	    http: {url: "https://web.example.com/healthz", expectStatus: [200], bodyContains: ok}
//	    timeout: 2s
//	    failureThreshold: 3
//	  - name: db
//	    tcp: {address: "db.example.com:5432"}
//	  - name: served-version     # a version assertion: the new version itself answers
//	    http: {url: "https://web.example.com/version", jsonPath: "{.version}", equals: "${version}"}
//	  - name: rollout
//	    kube: {apiVersion: apps/v1, kind: Deployment, namespace: web, name: web}
//	    minReadySeconds: 30
//	  - name: errors
//	    prometheus: {url: "http://prometheus:9090", query: "sum(rate(errors[5m]))", expect: "result < 0.01"}
//
// A good check tests what the service's users get (a readiness that reflects real service, not
// an open port), and no deep dependency that would fail every service at once.
package checks

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"
)

// APIVersion and Kind identify a Checks document.
const (
	APIVersion = "turnstile.kratix.io/v1alpha1"
	Kind       = "Checks"
)

// Document is a Checks document.
type Document struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Version is the rollout's target version; records carry it in details.version.
	Version string  `json:"version,omitempty"`
	Checks  []Check `json:"checks"`
}

// Check is one named check: exactly one of HTTP, TCP, Kube or Prometheus, and its thresholds.
type Check struct {
	Name       string      `json:"name"`
	HTTP       *HTTP       `json:"http,omitempty"`
	TCP        *TCP        `json:"tcp,omitempty"`
	Kube       *Kube       `json:"kube,omitempty"`
	Prometheus *Prometheus `json:"prometheus,omitempty"`
	// Timeout bounds one run of the check. Default 5s.
	Timeout Duration `json:"timeout,omitempty"`
	// SuccessThreshold is how many passes in a row make a failing check healthy again. Default 1.
	SuccessThreshold int `json:"successThreshold,omitempty"`
	// FailureThreshold is how many failures in a row make a passing check fail. Default 3.
	FailureThreshold int `json:"failureThreshold,omitempty"`
	// OnFailure is the state a failed check reports: unhealthy (default) or degraded.
	OnFailure string `json:"onFailure,omitempty"`
}

// HTTP passes when a GET answers with an expected status (and body).
type HTTP struct {
	URL string `json:"url"`
	// ExpectStatus lists the passing status codes. Default: any 2xx.
	ExpectStatus []int             `json:"expectStatus,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	// BodyContains, when set, must appear in the body.
	BodyContains string `json:"bodyContains,omitempty"`
	// JSONPath, when set, is evaluated on the JSON body (Kubernetes JSONPath, e.g. {.status});
	// it must yield Equals, or anything non-empty when Equals is unset. Equals (or BodyContains)
	// of ${version} makes the check a version assertion: passing it proves the new version
	// answered, which the record says in details.versionProven.
	JSONPath string `json:"jsonPath,omitempty"`
	Equals   string `json:"equals,omitempty"`
	// CABundle is PEM certificates to trust for HTTPS, instead of the system's.
	CABundle string `json:"caBundle,omitempty"`
}

// TCP passes when a connection opens.
type TCP struct {
	Address string `json:"address"`
}

// Kube passes when an object in the Destination is ready: a Deployment, StatefulSet or DaemonSet
// fully rolled out at its current generation, or any object with Condition at Status.
type Kube struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Condition and Status (default "True") make any kind checkable by a status condition.
	Condition string `json:"condition,omitempty"`
	Status    string `json:"status,omitempty"`
	// MinReadySeconds is how long it must have been ready before it passes.
	MinReadySeconds int `json:"minReadySeconds,omitempty"`
	// Field, when set, is a JSONPath on the object (e.g. {.metadata.labels.version}) that must
	// yield Equals, or anything non-empty when Equals is unset. Equals of ${version} makes the
	// check a version assertion.
	Field  string `json:"field,omitempty"`
	Equals string `json:"equals,omitempty"`
}

// Prometheus passes when an instant query's every sample satisfies Expect, e.g. "result < 0.01".
// Fewer than MinSamples samples (default 1) is unknown, never healthy.
type Prometheus struct {
	URL        string `json:"url"`
	Query      string `json:"query"`
	Expect     string `json:"expect"`
	MinSamples int    `json:"minSamples,omitempty"`
}

// Duration is a time.Duration written as "5s".
type Duration struct{ time.Duration }

// UnmarshalJSON reads "5s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Parse reads and validates a Checks document, filling in defaults. Errors name the check and
// the field at fault.
func Parse(data []byte) (*Document, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("checks document: %d bytes, want at most %d", len(data), MaxDocumentBytes)
	}
	var doc Document
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("reading the checks document: %w", err)
	}
	if err := doc.validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// Marshal writes the document as YAML.
func (d *Document) Marshal() ([]byte, error) { return yaml.Marshal(d) }

func (d *Document) validate() error {
	if d.APIVersion != APIVersion || d.Kind != Kind {
		return fmt.Errorf("checks document: want apiVersion %s and kind %s, got %q and %q", APIVersion, Kind, d.APIVersion, d.Kind)
	}
	if len(d.Checks) == 0 {
		return errors.New("checks document: no checks")
	}
	if len(d.Checks) > MaxChecks {
		return fmt.Errorf("checks document: %d checks, want at most %d (one record holds them all)", len(d.Checks), MaxChecks)
	}
	seen := map[string]bool{}
	for i := range d.Checks {
		c := &d.Checks[i]
		where := fmt.Sprintf("checks[%d]", i)
		if c.Name != "" && len(c.Name) <= MaxNameLength {
			where = fmt.Sprintf("check %q", c.Name)
		}
		if err := c.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("%s: the name is used twice", where)
		}
		seen[c.Name] = true
	}
	return nil
}

func (c *Check) validate() error {
	if c.Name == "" {
		return errors.New("name is required")
	}
	if len(c.Name) > MaxNameLength {
		return fmt.Errorf("name: %d characters, want at most %d", len(c.Name), MaxNameLength)
	}
	kinds := 0
	for _, set := range []bool{c.HTTP != nil, c.TCP != nil, c.Kube != nil, c.Prometheus != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return fmt.Errorf("want exactly one of http, tcp, kube or prometheus, got %d", kinds)
	}
	if c.Timeout.Duration == 0 {
		c.Timeout.Duration = DefaultTimeout
	}
	if c.SuccessThreshold == 0 {
		c.SuccessThreshold = 1
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 3
	}
	if c.OnFailure == "" {
		c.OnFailure = "unhealthy"
	}
	if c.Timeout.Duration < MinTimeout || c.Timeout.Duration > MaxTimeout {
		return fmt.Errorf("timeout %s: want between %s and %s", c.Timeout, FormatDuration(MinTimeout), FormatDuration(MaxTimeout))
	}
	if err := inRange("successThreshold", c.SuccessThreshold, 1, MaxThreshold); err != nil {
		return err
	}
	if err := inRange("failureThreshold", c.FailureThreshold, 1, MaxThreshold); err != nil {
		return err
	}
	if c.OnFailure != "unhealthy" && c.OnFailure != "degraded" {
		return fmt.Errorf("onFailure %q: want unhealthy or degraded", c.OnFailure)
	}
	switch {
	case c.HTTP != nil:
		return c.HTTP.validate()
	case c.TCP != nil:
		if err := CheckAddress(c.TCP.Address); err != nil {
			return fmt.Errorf("tcp.address %w", err)
		}
	case c.Kube != nil:
		return c.Kube.validate()
	case c.Prometheus != nil:
		return c.Prometheus.validate()
	}
	return nil
}

func (h *HTTP) validate() error {
	if err := CheckURL(h.URL); err != nil {
		return fmt.Errorf("http.url %w", err)
	}
	for _, code := range h.ExpectStatus {
		if code < 100 || code > 599 {
			return fmt.Errorf("http.expectStatus %d: not an HTTP status code", code)
		}
	}
	if h.JSONPath != "" {
		if err := jsonpath.New("check").Parse(h.JSONPath); err != nil {
			return fmt.Errorf("http.jsonPath %q: %w", h.JSONPath, err)
		}
	}
	if h.CABundle != "" {
		if _, err := certPool(h.CABundle); err != nil {
			return fmt.Errorf("http.caBundle: %w", err)
		}
	}
	return nil
}

func (k *Kube) validate() error {
	switch {
	case k.APIVersion == "" || k.Kind == "" || k.Name == "":
		return errors.New("kube needs apiVersion, kind and name")
	case k.MinReadySeconds < 0 || k.MinReadySeconds > MaxMinReadySeconds:
		return inRange("kube.minReadySeconds", k.MinReadySeconds, 0, MaxMinReadySeconds)
	case k.Condition == "" && !rolloutKinds[k.Kind]:
		return fmt.Errorf("kube: a %s has no built-in readiness: name a condition (e.g. condition: Ready)", k.Kind)
	}
	if k.Condition != "" && k.Status == "" {
		k.Status = "True"
	}
	return k.validateField()
}

func (p *Prometheus) validate() error {
	if err := CheckURL(p.URL); err != nil {
		return fmt.Errorf("prometheus.url %w", err)
	}
	if strings.TrimSpace(p.Query) == "" {
		return errors.New("prometheus.query is required")
	}
	if _, err := parseExpect(p.Expect); err != nil {
		return fmt.Errorf("prometheus.expect %q: %w", p.Expect, err)
	}
	if p.MinSamples == 0 {
		p.MinSamples = 1
	}
	return inRange("prometheus.minSamples", p.MinSamples, 1, MaxMinSamples)
}
