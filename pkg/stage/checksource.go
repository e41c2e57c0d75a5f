package stage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
)

// checkSource is where a stage gets its Checks document: a file, the document inline (handy as
// TURNSTILE_CHECKS in a pipeline's env), or a single HTTP or TCP check from flags.
type checkSource struct {
	file             string
	inline           string
	httpURL          string
	expectStatus     []int
	tcpAddress       string
	timeout          string
	failureThreshold int
}

func (c *checkSource) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.file, "checks-file", "", "a Checks document (turnstile.kratix.io/v1alpha1) to read")
	fs.StringVar(&c.inline, "checks", "", "a Checks document, inline")
	fs.StringVar(&c.httpURL, "http-url", "", "instead of a document: one HTTP GET check of this URL")
	fs.IntSliceVar(&c.expectStatus, "expect-status", nil, "with --http-url: the passing status codes (default any 2xx)")
	fs.StringVar(&c.tcpAddress, "tcp-address", "", "instead of a document: one TCP connect check of host:port")
	fs.StringVar(&c.timeout, "timeout", "5s", "with --http-url or --tcp-address: the check's timeout")
	fs.IntVar(&c.failureThreshold, "failure-threshold", 3, "with --http-url or --tcp-address: failures in a row that fail it")
}

// document names the rollout's target version and reads the document for it.
func (c *checkSource) document(ctx context.Context, r *run, target string) (*checks.Document, string, error) {
	version, err := r.targetVersion(ctx, target)
	if err != nil {
		return nil, "", err
	}
	doc, err := c.load(r, version)
	return doc, version, err
}

// load reads the document, with ${name}, ${namespace}, ${promise}, ${version}, ${generation} and
// ${spec.<path>} replaced by the request's values, then validates it.
func (c *checkSource) load(r *run, version string) (*checks.Document, error) {
	text, err := c.text()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		"name": r.request.Name, "namespace": r.request.Namespace, "promise": r.env.Promise,
		"version": version, "generation": strconv.FormatInt(r.object.Generation, 10),
	}
	var unknown []string
	expanded := os.Expand(text, func(key string) string {
		if v, ok := vars[key]; ok {
			return v
		}
		if path, ok := strings.CutPrefix(key, "spec."); ok {
			if v, err := r.object.GetValue("spec." + path); err == nil {
				return fmt.Sprint(v)
			}
		}
		unknown = append(unknown, "${"+key+"}")
		return ""
	})
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("the checks document uses %s: want ${name}, ${namespace}, ${promise}, ${version}, ${generation} or ${spec.<field of the request>}", strings.Join(unknown, ", "))
	}
	doc, err := checks.Parse([]byte(expanded))
	if err != nil {
		return nil, err
	}
	doc.Version = version
	return doc, nil
}

func (c *checkSource) text() (string, error) {
	sources := 0
	for _, set := range []bool{c.file != "", c.inline != "", c.httpURL != "" || c.tcpAddress != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		return "", errors.New("no checks: give --checks-file, --checks (TURNSTILE_CHECKS), --http-url or --tcp-address")
	case sources > 1 || (c.httpURL != "" && c.tcpAddress != ""):
		return "", errors.New("give only one of --checks-file, --checks, --http-url and --tcp-address")
	case c.file != "":
		data, err := os.ReadFile(c.file)
		if err != nil {
			return "", fmt.Errorf("reading the checks document: %w", err)
		}
		return string(data), nil
	case c.inline != "":
		return c.inline, nil
	}
	timeout, err := time.ParseDuration(c.timeout)
	if err != nil {
		return "", fmt.Errorf("--timeout %q: want a duration like 2s", c.timeout)
	}
	check := checks.Check{Name: "http", HTTP: &checks.HTTP{URL: c.httpURL, ExpectStatus: c.expectStatus}}
	if c.tcpAddress != "" {
		check = checks.Check{Name: "tcp", TCP: &checks.TCP{Address: c.tcpAddress}}
	}
	check.Timeout, check.FailureThreshold = checks.Duration{Duration: timeout}, c.failureThreshold
	doc := checks.Document{APIVersion: checks.APIVersion, Kind: checks.Kind, Checks: []checks.Check{check}}
	out, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("writing the checks document: %w", err)
	}
	return string(out), nil
}
