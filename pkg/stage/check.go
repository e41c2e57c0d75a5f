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
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

type checkFlags struct {
	source   checkSource
	target   string
	interval time.Duration
	wait     time.Duration
}

func newCheckCommand() *command {
	f := &checkFlags{}
	cmd := newCommand("check", "Run the request's health checks from the platform and write its HealthRecord (no agent)",
		`check is the agentless way to report health: it runs the checks itself, from a platform-side
pipeline, and writes the request's HealthRecord directly, as Kratix's "Surfacing health
information" guide describes. It runs a round every --interval until the request is healthy or
--wait runs out, writing the record whenever its state changes. Check thresholds span runs: the
checks' counts are kept in the record. Put it just before await in the await pipeline.`)
	cmd.run = func(ctx context.Context, out io.Writer) error { return runCheck(ctx, cmd, out, f) }
	fs := cmd.flags
	f.source.register(fs)
	fs.StringVar(&f.target, "target-version", "", "the version being rolled out, stamped into the record (default: from the Promise)")
	fs.DurationVar(&f.interval, "interval", 10*time.Second, "time between rounds of checks")
	fs.DurationVar(&f.wait, "wait", time.Minute, "stop after this long even if not healthy (the record says why)")
	return cmd
}

func (f *checkFlags) validate() error {
	switch {
	case f.interval <= 0:
		return fmt.Errorf("--interval must be positive, got %s", f.interval)
	case f.wait < 0:
		return fmt.Errorf("--wait must not be negative, got %s", f.wait)
	}
	return nil
}

func runCheck(ctx context.Context, cmd *command, out io.Writer, f *checkFlags) error {
	noWave := 0
	r, err := setup(cmd.flags, out, "check", nil, f.validate, &noWave)
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
	runner := &checks.Runner{Kube: r.dynamic, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco)), Clock: clock.RealClock{}}
	records := r.dynamic.Resource(health.HealthRecords).Namespace(r.request.Namespace)
	name := health.DefinitionName(r.env.Promise, r.request.Namespace, r.request.Name)
	deadline := time.Now().Add(f.wait)
	var written *health.HealthRecord
	if u, err := records.Get(ctx, name, metav1.GetOptions{}); err == nil {
		if written, err = health.FromUnstructured[health.HealthRecord](u); err != nil {
			return err
		}
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading HealthRecord %s/%s: %w", r.request.Namespace, name, err)
	}
	prev := probeStates(written)
	if written != nil && fmt.Sprint(written.Data.Details[health.VersionKey]) != version {
		prev = nil // the checks' counts were for another version: this one starts afresh
	}
	for {
		rep := doc.Round(ctx, runner, prev, time.Now())
		prev = rep.ProbeStates()
		r.out.printf("%s: %s", rep.State, summary(rep))
		if written == nil || written.Data.State != rep.State || changedCounts(written, rep) {
			if written, err = r.writeRecord(ctx, rep, version, written); err != nil {
				return err
			}
		}
		if health.Good(rep.State) || !time.Now().Add(f.interval).Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(f.interval):
		}
	}
}

// writeRecord writes a round's result as the request's HealthRecord.
func (r *run) writeRecord(ctx context.Context, rep checks.Report, version string, prev *health.HealthRecord) (*health.HealthRecord, error) {
	ref := health.ResourceRef{Name: r.request.Name, Namespace: r.request.Namespace, Generation: r.object.Generation}
	details := map[string]any{health.VersionKey: version, "checks": rep.Checks}
	return health.WriteRecord(ctx, r.dynamic, health.NewRecord(r.env.Promise, ref, rep.State, time.Now().Unix(), details), prev)
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
