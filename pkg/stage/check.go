package stage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
)

type checkFlags struct {
	source     checkSource
	target     string
	interval   time.Duration
	wait       time.Duration
	minHealthy time.Duration
}

func newCheckCommand() *command {
	f := &checkFlags{}
	cmd := newCommand("check", "Run the request's health checks from the platform and write its HealthRecord (no agent)",
		`check is the agentless way to report health: it runs the checks itself, from a platform-side
pipeline, and writes the request's HealthRecord directly, as Kratix's "Surfacing health
information" guide describes. It runs a round every --interval until the request has been healthy
without a break for --min-healthy, or --wait runs out, writing the record whenever its state or
counts change: a healthy round does not end it, so the record covers the whole soak. Check
thresholds span runs: the checks' counts are kept in the record. Records are stamped with the
Promise, the request's uid and the target version, so await counts them for this upgrade only.
Put it just before await in the await pipeline.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runCheck(ctx, cmd, out, f) }
	fs := cmd.flags
	f.source.register(fs)
	fs.StringVar(&f.target, "target-version", "", "the version being rolled out, stamped into the record (default: from the Promise)")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "time between rounds of checks")
	fs.DurationVar(&f.wait, "wait", time.Minute, "stop after this long even if not healthy (the record says why); 0 checks until healthy")
	fs.DurationVar(&f.minHealthy, "min-healthy", 30*time.Second, "keep checking until healthy without a break this long (reset by any other round)")
	return cmd
}

func (f *checkFlags) validate() error {
	if f.wait < 0 {
		return fmt.Errorf("--wait must not be negative, got %s", f.wait)
	}
	if err := stageflags.DurationIn("wait", f.wait, 0, stageflags.MaxWait); err != nil {
		return err
	}
	if err := stageflags.DurationIn("interval", f.interval, stageflags.MinCheckInterval, stageflags.MaxCheckInterval); err != nil {
		return err
	}
	if f.minHealthy > stageflags.MaxMinHealthy { // the lower end is validateSoak's
		return fmt.Errorf("--min-healthy must be at most %s, got %s", stageflags.FmtDuration(stageflags.MaxMinHealthy), f.minHealthy)
	}
	return f.source.validateFlags()
}

// validateFlags checks the flags that build a single check, naming the flag rather than the
// field of the document they become. A document (--checks, --checks-file) is checked when read.
func (c *checkSource) validateFlags() error {
	if c.httpURL == "" && c.tcpAddress == "" {
		return nil
	}
	// A value with ${variables} is checked once they are filled in, as a field of the document
	// it becomes: ${name}.${namespace} is no host name yet.
	if c.httpURL != "" && !strings.Contains(c.httpURL, "${") {
		if err := checks.CheckURL(c.httpURL); err != nil {
			return fmt.Errorf("--http-url %w", err)
		}
	}
	if c.tcpAddress != "" && !strings.Contains(c.tcpAddress, "${") {
		if err := checks.CheckAddress(c.tcpAddress); err != nil {
			return fmt.Errorf("--tcp-address %w", err)
		}
	}
	for _, code := range c.expectStatus {
		if code < 100 || code > 599 {
			return fmt.Errorf("--expect-status %d: not an HTTP status code (100 to 599)", code)
		}
	}
	timeout, err := time.ParseDuration(c.timeout)
	if err != nil {
		return fmt.Errorf("--timeout %q: want a duration like 2s", c.timeout)
	}
	if err := stageflags.DurationIn("timeout", timeout, checks.MinTimeout, checks.MaxTimeout); err != nil {
		return err
	}
	return stageflags.IntIn("failure-threshold", c.failureThreshold, 1, checks.MaxThreshold)
}

// validateSoak checks that the soak fits in a run: a run that ends first would leave a record
// nobody updates for await to soak on.
func (f *checkFlags) validateSoak() error {
	switch {
	case f.minHealthy <= 0:
		return fmt.Errorf("--min-healthy must be positive, got %s: a single healthy round proves little", f.minHealthy)
	case f.wait > 0 && f.minHealthy >= f.wait:
		return fmt.Errorf("--min-healthy (%s) must be shorter than --wait (%s): the soak must fit in the run", f.minHealthy, f.wait)
	}
	return nil
}

func runCheck(ctx context.Context, cmd *command, out io.Writer, f *checkFlags) error {
	noWave := 0
	validate := func() error {
		if err := f.validate(); err != nil {
			return err
		}
		return f.validateSoak()
	}
	r, err := setup(cmd.flags, out, "check", nil, validate, &noWave)
	if err != nil {
		return err
	}
	if r.env.Action == "delete" || r.env.DryRun {
		r.out.printf("nothing to check for %s", r.request)
		return nil
	}
	doc, version, err := f.source.document(ctx, r, f.target)
	if err != nil {
		return err
	}
	disco, err := discovery.NewDiscoveryClientForConfig(r.config)
	if err != nil {
		return fmt.Errorf("creating a discovery client: %w", err)
	}
	runner := &checks.Runner{Kube: r.dynamic, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)), Clock: r.clock}
	records := r.dynamic.Resource(health.HealthRecords).Namespace(r.request.Namespace)
	name := health.DefinitionName(r.env.Promise, r.request.Namespace, r.request.Name)
	deadline := r.clock.Now().Add(f.wait)
	var written *health.HealthRecord
	if u, err := records.Get(ctx, name, metav1.GetOptions{}); err == nil {
		if written, err = health.FromUnstructured[health.HealthRecord](u); err != nil {
			return err
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading HealthRecord %s/%s: %w", r.request.Namespace, name, err)
	}
	stamp := health.Stamp{Promise: r.env.Promise, RequestUID: string(r.request.UID), Definition: r.request.Namespace + "/" + name, Version: version}
	prev := probeStates(written)
	if written != nil && (detail(written, health.RequestUIDKey) != stamp.RequestUID || detail(written, health.VersionKey) != version) {
		prev = nil // the counts were another request's of the same name, or another version's
	}
	soak := &health.Soak{MinHealthy: f.minHealthy}
	for {
		now := r.clock.Now()
		rep := doc.Round(ctx, runner, prev, now)
		prev = rep.ProbeStates()
		stamp.VersionProven = rep.VersionProven
		r.out.printf("%s: %s", rep.State, summary(rep))
		if outdated(written, rep, stamp) {
			if written, err = r.writeRecord(ctx, rep, stamp, written); err != nil {
				return err
			}
		}
		v := soak.Observe(now, health.Observation{Good: health.Good(rep.State), Bad: health.Bad(rep.State), Summary: rep.State})
		if v.Passed {
			r.out.printf("%s", v.Message)
			return nil
		}
		if health.Bad(rep.State) {
			// The record says so: await, next in the pipeline, judges it. Checking on would
			// only hold await back.
			r.out.printf("%s: leaving the verdict to await", rep.State)
			return nil
		}
		if f.wait > 0 && !r.clock.Now().Add(f.interval).Before(deadline) {
			r.out.printf("stopping after %s: %s", f.wait, v.Message)
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-r.clock.After(f.interval):
		}
	}
}

// writeRecord writes a round's result as the request's HealthRecord.
func (r *run) writeRecord(ctx context.Context, rep checks.Report, stamp health.Stamp, prev *health.HealthRecord) (*health.HealthRecord, error) {
	ref := health.ResourceRef{Name: r.request.Name, Namespace: r.request.Namespace, Generation: r.object.Generation}
	details := stamp.Apply(map[string]any{"checks": rep.Checks})
	return health.WriteRecord(ctx, health.Records(r.dynamic, ref.Namespace), health.NewRecord(r.env.Promise, ref, rep.State, r.clock.Now().Unix(), details), prev)
}

// outdated reports whether the record as written no longer says what the round found: its
// state, the checks' counts (which the next run needs), or its stamp.
func outdated(rec *health.HealthRecord, rep checks.Report, stamp health.Stamp) bool {
	if rec == nil || rec.Data.State != rep.State || changedCounts(rec, rep) {
		return true
	}
	return detail(rec, health.PromiseKey) != stamp.Promise || detail(rec, health.RequestUIDKey) != stamp.RequestUID ||
		detail(rec, health.VersionKey) != stamp.Version || rec.Data.Details[health.VersionProvenKey] != stamp.VersionProven
}

// detail is a string the record's details hold under key, or "".
func detail(rec *health.HealthRecord, key string) string {
	s, _ := rec.Data.Details[key].(string)
	return s
}

// probeStates reads the checks' states an earlier run kept in the record.
func probeStates(rec *health.HealthRecord) map[string]checks.ProbeState {
	out := map[string]checks.ProbeState{}
	if rec == nil {
		return out
	}
	raw, err := json.Marshal(rec.Data.Details["checks"])
	if err != nil {
		return out
	}
	var kept map[string]checks.CheckReport
	if json.Unmarshal(raw, &kept) == nil {
		for name, c := range kept {
			out[name] = c.ProbeState
		}
	}
	return out
}

// changedCounts reports whether a check's counts moved, which the next run needs to see.
func changedCounts(rec *health.HealthRecord, rep checks.Report) bool {
	kept := probeStates(rec)
	for name, c := range rep.Checks {
		if kept[name] != c.ProbeState {
			return true
		}
	}
	return false
}

func summary(rep checks.Report) string {
	names := make([]string, 0, len(rep.Checks))
	for name := range rep.Checks {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, name := range names {
		c := rep.Checks[name]
		part := fmt.Sprintf("%s %s (%dms)", name, c.State, c.LatencyMs)
		if c.Error != "" {
			part += ": " + c.Error
		}
		if c.Failures > 0 && c.State != checks.StateUnhealthy && c.State != checks.StateDegraded {
			part += fmt.Sprintf(" (%d failure(s) in a row, below the threshold)", c.Failures)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, "; ")
}
