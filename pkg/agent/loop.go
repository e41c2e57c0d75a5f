package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

// loop runs one HealthDefinition's checks on its schedule.
type loop struct {
	generation int64
	// stamp is what the loop stamps its records with, from the definition's annotations: a
	// request re-created under the same name changes them without a new generation.
	stamp  [2]string
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *loop) stop() {
	l.cancel()
	<-l.done
}

// errUnsupported marks definitions the agent cannot run by design, as opposed to broken ones.
var errUnsupported = errors.New("unsupported")

// newLoop checks a definition and starts running it; an error says why it cannot be run.
func (a *Agent) newLoop(ctx context.Context, def *health.HealthDefinition) (*loop, error) {
	if def.Spec.Workflow != nil {
		return nil, fmt.Errorf("%w: container checks (spec.workflow) are not run by turnstile-agent yet; declare built-in checks in spec.input", errUnsupported)
	}
	if def.Spec.ResourceRef == nil {
		return nil, fmt.Errorf("spec.resourceRef is required: a record must name the request it reports on")
	}
	sched, err := checks.ParseSchedule(def.Spec.Schedule)
	if err != nil {
		return nil, fmt.Errorf("spec.schedule: %w", err)
	}
	doc, err := checks.Parse([]byte(def.Spec.Input))
	if err != nil {
		return nil, fmt.Errorf("spec.input: %w", err)
	}
	if doc.Version == "" {
		doc.Version = def.Annotations[health.VersionAnnotation]
	}
	if def.Annotations[health.RequestUIDAnnotation] == "" {
		// Still run: the records show in the request's status, but an upgrade's await cannot
		// tell them from another request's, so they never count for it.
		a.cfg.Logger.Warn("the definition names no request uid: its records will not count for an upgrade",
			"definition", def.Namespace+"/"+def.Name, "annotation", health.RequestUIDAnnotation)
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &loop{generation: def.Generation, stamp: stampOf(def), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		a.run(ctx, def, doc, sched)
	}()
	a.cfg.Logger.Info("checking", "definition", def.Namespace+"/"+def.Name, "checks", len(doc.Checks), "schedule", def.Spec.Schedule, "version", doc.Version)
	return l, nil
}

// run runs a round at once, then on the schedule, and writes the record when the state changes
// or the heartbeat is due.
func (a *Agent) run(ctx context.Context, def *health.HealthDefinition, doc *checks.Document, sched cron.Schedule) {
	var (
		prev       map[string]checks.ProbeState
		lastState  string
		lastProven bool
		lastWrite  time.Time
		written    *health.HealthRecord
	)
	// Each definition's heartbeat is a little early or late, so that definitions created together
	// do not all rewrite their records in the same second.
	heartbeat := a.cfg.Heartbeat - time.Duration(rand.Int64N(int64(a.cfg.Heartbeat/10)+1))
	log := a.cfg.Logger.With("definition", def.Namespace+"/"+def.Name)
	next := a.cfg.Clock.Now()
	for {
		if wait := next.Sub(a.cfg.Clock.Now()); wait > 0 {
			t := a.cfg.Clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		select {
		case a.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		now := a.cfg.Clock.Now()
		rep := doc.Round(ctx, a.runner, prev, now)
		<-a.slots
		if ctx.Err() != nil {
			return
		}
		a.observe(doc, rep)
		prev = rep.ProbeStates()
		reason := ""
		switch {
		case rep.State != lastState || rep.VersionProven != lastProven:
			reason = "change"
		case now.Sub(lastWrite) >= heartbeat:
			reason = "heartbeat"
		}
		if reason != "" {
			rec := health.NewRecord(def.Spec.PromiseRef.Name, *def.Spec.ResourceRef, rep.State, now.Unix(), stamp(def, doc, rep))
			if w, err := health.WriteRecord(ctx, health.Records(a.cfg.Platform, rec.Namespace), rec, written); err != nil {
				a.cfg.Metrics.WriteErrors.Inc()
				log.Error("writing the record", "err", err)
			} else {
				a.cfg.Metrics.RecordsWritten.WithLabelValues(reason).Inc()
				if rep.State != lastState {
					log.Info("state", "state", rep.State, "was", orUnknown(lastState))
				}
				lastState, lastProven, lastWrite, written = rep.State, rep.VersionProven, now, w
			}
		}
		next = sched.Next(now)
	}
}

// stamp is a round's record details, stamped so that await counts the record for this request's
// upgrade and no other.
func stamp(def *health.HealthDefinition, doc *checks.Document, rep checks.Report) map[string]any {
	return health.Stamp{
		Promise:       def.Spec.PromiseRef.Name,
		RequestUID:    def.Annotations[health.RequestUIDAnnotation],
		Definition:    def.Namespace + "/" + def.Name,
		Version:       doc.Version,
		VersionProven: rep.VersionProven,
	}.Apply(map[string]any{"checks": rep.Checks})
}

func orUnknown(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (a *Agent) observe(doc *checks.Document, rep checks.Report) {
	for _, c := range doc.Checks {
		r := rep.Checks[c.Name]
		result := "pass"
		switch {
		case r.Unknown:
			result = "unknown"
		case !r.Pass:
			result = "fail"
		}
		kind := checkType(c)
		a.cfg.Metrics.ChecksRun.WithLabelValues(kind, result).Inc()
		a.cfg.Metrics.CheckDuration.WithLabelValues(kind).Observe(float64(r.LatencyMs) / 1000)
	}
}

func checkType(c checks.Check) string {
	switch {
	case c.HTTP != nil:
		return "http"
	case c.TCP != nil:
		return "tcp"
	case c.Kube != nil:
		return "kube"
	}
	return "prometheus"
}

func (a *Agent) warn(ctx context.Context, def *health.HealthDefinition, reason, message string) {
	a.cfg.Logger.Warn("cannot check", "definition", def.Namespace+"/"+def.Name, "reason", reason, "err", message)
	ref := corev1.ObjectReference{APIVersion: health.GroupVersion.String(), Kind: "HealthDefinition",
		Namespace: def.Namespace, Name: def.Name, UID: def.UID}
	if err := a.events.Record(ctx, ref, corev1.EventTypeWarning, reason, message); err != nil {
		a.cfg.Logger.Warn("recording an event", "err", err)
	}
}

// stampOf is what of a definition's annotations goes into its records' stamps.
func stampOf(def *health.HealthDefinition) [2]string {
	return [2]string{def.Annotations[health.RequestUIDAnnotation], def.Annotations[health.VersionAnnotation]}
}
