package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
	"github.com/kratix-turnstile/turnstile/pkg/bindings"
	"github.com/kratix-turnstile/turnstile/pkg/event"
	"github.com/kratix-turnstile/turnstile/pkg/pipeline"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	promisereport "github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/version"
)

// DirsEnv overrides /kratix, the root of the input, output and metadata directories; for
// running a stage outside a pod.
const DirsEnv = "TURNSTILE_KRATIX_DIR"

// run is what a stage knows once it has read its flags, environment and input.
type run struct {
	out     printer
	env     pipeline.Env
	pipe    *pipeline.Pipeline
	object  *pipeline.Object
	request turnstile.Request
	config  *rest.Config
	dynamic dynamic.Interface
	turn    *turnstile.Turnstile
	// fleet is the Promise's requests, once listed in this run.
	fleet  []unstructured.Unstructured
	events eventer
	// clock is the source of time for every decision a stage makes, and the turnstile's.
	clock clock.WithTicker
}

// setup reads the flags (and their TURNSTILE_* variables), the environment and object.yaml,
// and builds the clients, and the turnstile when f is set. Bad input fails here, before anything
// is written.
func setup(flags *pflag.FlagSet, out io.Writer, stageName string, f *stageflags.Slot, validate func() error, defaultWave *int) (*run, error) {
	if err := stageflags.ApplyEnv(flags, os.Getenv); err != nil {
		return nil, err
	}
	if err := validate(); err != nil {
		return nil, err
	}
	r := &run{out: printer{w: out, stage: stageName}, clock: clock.RealClock{}}
	var err error
	if r.env, err = pipeline.ResourceEnv(os.Getenv); err != nil {
		return nil, err
	}
	root := os.Getenv(DirsEnv)
	if root == "" {
		root = "/kratix"
	}
	r.pipe = pipeline.New(pipeline.DirsUnder(root))
	if r.object, err = r.pipe.ReadObject(r.env); err != nil {
		return nil, err
	}
	// Every stage ends by merging into status.yaml: one it could not merge into would fail it
	// after it took a slot, still holding it.
	if err := r.pipe.CheckStatus(); err != nil {
		return nil, err
	}
	if r.request, err = requestOf(r.env, r.object, *defaultWave); err != nil {
		return nil, err
	}
	cfg, err := restConfig(stageName)
	if err != nil {
		return nil, err
	}
	r.config = cfg
	// Only the clients the stages use: the whole clientset would link every API group in.
	coordination, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	if r.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	r.events = eventer{recorder: event.Recorder{Events: core, Component: "turnstile-" + stageName}, request: r.request, out: r.out}
	if f == nil {
		return r, nil
	}
	r.turn, err = turnstile.New(turnstile.Config{
		Leases: coordination, Holders: turnstile.DynamicHolders{Client: r.dynamic},
		Namespace: f.Namespace, Promise: r.env.Promise, Slots: f.Slots.Default(), LeaseDuration: f.LeaseDuration, Clock: r.clock,
		Owner: r.promiseOwner(),
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// promiseOwner is the Promise as the owner of the turnstile's Leases, or nil when it cannot be
// read: the Leases then outlive it, which costs a clean start if it is created again, not the
// upgrade under way, so the stage says so and goes on.
func (r *run) promiseOwner() *metav1.OwnerReference {
	if r.env.Action == "delete" {
		return nil // it only takes its request out, and has no need to read the Promise
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiclient.TransientBudget)
	defer cancel()
	p, err := r.dynamic.Resource(promisesGVR).Get(ctx, r.env.Promise, metav1.GetOptions{})
	if err != nil {
		r.out.printf("the turnstile's Leases will outlive Promise %s: %s", r.env.Promise, program.OneLine(explain(err).Error()))
		return nil
	}
	// Not a controller reference, and not blocking the Promise's deletion: clusters that enforce
	// owner-reference permissions would ask for rights on the Promise's finalizers for that.
	return &metav1.OwnerReference{APIVersion: promisesGVR.GroupVersion().String(), Kind: "Promise", Name: p.GetName(), UID: p.GetUID()}
}

// restConfig is the pod's in-cluster config, or $KUBECONFIG when run outside a cluster.
func restConfig(stageName string) (*rest.Config, error) {
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the cluster config (in-cluster, or $KUBECONFIG): %w", err)
	}
	// Many requests of a Promise run these stages at once; the default 5 QPS would queue them.
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "turnstile-" + stageName + "/" + version.Version
	// A stage that waits minutes for a slot outlives an apiserver restart; it must not fail the
	// request's workflow for it.
	apiclient.RideOutOutages(cfg, apiclient.TransientBudget)
	return cfg, nil
}

func requestOf(env pipeline.Env, obj *pipeline.Object, defaultWave int) (turnstile.Request, error) {
	req := turnstile.Request{
		GroupVersionResource: schema.GroupVersionResource{Group: env.Group, Version: env.Version, Resource: env.Plural},
		Kind:                 env.Kind, Namespace: env.Namespace, Name: env.Name, UID: obj.UID, Wave: defaultWave,
	}
	wave, ok, err := turnstile.WaveOf(obj.GetLabels(), obj.GetAnnotations())
	if err != nil {
		return req, fmt.Errorf("%w on %s", err, req.Key())
	}
	if ok {
		req.Wave = wave
	}
	return req, nil
}

var promisesGVR = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "promises"}

// targetVersion names the rollout: the flag; else the version the request's ResourceBinding pins
// it to, in Kratix releases that have them (so that moving bindings back rolls back through the
// turnstile); else the Promise's version label; else a hash of the Promise's spec, so that any
// change to the Promise starts a new rollout.
func (r *run) targetVersion(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if v, ok, err := bindings.Version(ctx, r.dynamic, r.env.Promise, r.request.Namespace, r.request.Name); err != nil {
		return "", fmt.Errorf("finding the target version (or set %s): %w", stageflags.EnvName("target-version"), err)
	} else if ok {
		return v, nil
	}
	p, err := r.dynamic.Resource(promisesGVR).Get(ctx, r.env.Promise, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("finding the target version from Promise %s (or set %s): %w", r.env.Promise, stageflags.EnvName("target-version"), err)
	}
	return promisereport.Version(p)
}

// explain adds what to do to errors whose cause the operator must fix.
func explain(err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%w (grant it in the pipeline's spec.rbac.permissions; workflows/ lists what each stage needs)", err)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %w", err)
	}
	return err
}
