// Package agent is turnstile-agent, the health agent that runs in a Destination. It watches
// HealthDefinitions with an informer, runs their built-in checks in-process on their schedules
// (no pod per check), and writes HealthRecords to the platform cluster, only when a state
// changes or a heartbeat is due. Kratix then aggregates the records into each request's
// status.healthStatus.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/event"
	"github.com/kratix-turnstile/turnstile/pkg/health"
)

// Config configures the agent.
type Config struct {
	// Destination reads HealthDefinitions, and the objects kube checks look at. Required.
	Destination dynamic.Interface
	// Discovery resolves the kinds kube checks name. Required.
	Discovery discovery.DiscoveryInterface
	// Events records Events on HealthDefinitions in the Destination. Required.
	Events corev1client.EventsGetter
	// Platform writes HealthRecords in the platform cluster. Required.
	Platform dynamic.Interface
	// Namespace limits the agent to HealthDefinitions in one namespace; "" watches all.
	Namespace string
	// Heartbeat is how often a record is rewritten when its state has not changed, so its
	// lastRun shows the checks still run. Default 1 minute.
	Heartbeat time.Duration
	// MaxConcurrent bounds the rounds of checks running at once. Default 64.
	MaxConcurrent int
	Metrics       *Metrics
	Logger        *slog.Logger
	Clock         clock.WithTicker
}

// Agent runs HealthDefinitions' checks and reports HealthRecords.
type Agent struct {
	cfg    Config
	runner *checks.Runner
	events event.Recorder
	slots  chan struct{}
	synced atomic.Bool

	mu    sync.Mutex
	loops map[types.UID]*loop
}

// New validates the configuration and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Destination == nil || cfg.Discovery == nil || cfg.Events == nil || cfg.Platform == nil {
		return nil, errors.New("agent: the destination, discovery, events and platform clients are all required")
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Minute
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.Heartbeat < time.Second || cfg.MaxConcurrent < 1 {
		return nil, fmt.Errorf("agent: heartbeat must be at least 1s and max concurrent at least 1, got %s and %d", cfg.Heartbeat, cfg.MaxConcurrent)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cfg.Discovery))
	return &Agent{
		cfg:    cfg,
		runner: &checks.Runner{Kube: cfg.Destination, Mapper: mapper, Clock: cfg.Clock},
		events: event.Recorder{Events: cfg.Events, Component: "turnstile-agent"},
		slots:  make(chan struct{}, cfg.MaxConcurrent),
		loops:  map[types.UID]*loop{},
	}, nil
}

// Ready reports whether the agent has read every HealthDefinition once.
func (a *Agent) Ready() bool { return a.synced.Load() }

// Run watches HealthDefinitions and runs their checks until ctx ends, then stops every loop.
func (a *Agent) Run(ctx context.Context) error {
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(a.cfg.Destination, 0, a.cfg.Namespace, nil)
	inf := factory.ForResource(health.HealthDefinitions).Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.upsert(ctx, obj) },
		UpdateFunc: func(_, obj any) { a.upsert(ctx, obj) },
		DeleteFunc: func(obj any) { a.remove(ctx, obj) },
	})
	if err != nil {
		return fmt.Errorf("watching HealthDefinitions: %w", err)
	}
	go inf.RunWithContext(ctx)
	select {
	case <-inf.HasSyncedChecker().Done():
		a.synced.Store(true)
		a.cfg.Logger.Info("watching HealthDefinitions", "namespace", orAll(a.cfg.Namespace))
	case <-ctx.Done():
	}
	<-ctx.Done()
	a.stopAll()
	return nil
}

func orAll(ns string) string {
	if ns == "" {
		return "(all)"
	}
	return ns
}

func (a *Agent) upsert(ctx context.Context, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	def, err := health.FromUnstructured[health.HealthDefinition](u)
	if err != nil {
		a.cfg.Logger.Error("reading a HealthDefinition", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.loops[def.UID]; ok {
		if l.generation == def.Generation && l.stamp == stampOf(def) {
			return // a change to other metadata or to status: the checks stay as they are
		}
		l.stop()
		delete(a.loops, def.UID)
	}
	l, err := a.newLoop(ctx, def)
	if err != nil {
		reason := "InvalidHealthDefinition"
		if errors.Is(err, errUnsupported) {
			reason = "Unsupported"
		}
		a.warn(ctx, def, reason, err.Error())
		a.cfg.Metrics.Definitions.Set(float64(len(a.loops)))
		return
	}
	a.loops[def.UID] = l
	a.cfg.Metrics.Definitions.Set(float64(len(a.loops)))
}

func (a *Agent) remove(ctx context.Context, obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	a.mu.Lock()
	if l, ok := a.loops[u.GetUID()]; ok {
		l.stop()
		delete(a.loops, u.GetUID())
	}
	a.cfg.Metrics.Definitions.Set(float64(len(a.loops)))
	a.mu.Unlock()
	a.cfg.Logger.Info("stopped checking", "definition", u.GetNamespace()+"/"+u.GetName())
}

func (a *Agent) stopAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, l := range a.loops {
		l.stop()
		delete(a.loops, uid)
	}
}
