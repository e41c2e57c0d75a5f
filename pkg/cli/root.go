// Package cli is kubectl-turnstile, the operator's plugin: where a Promise's rollout stands
// (status, dashboard), and the levers to steer it (pause, resume, approve, skip, abort, rollback).
// It reads and writes only the request objects and the Leases in the slot namespace, and stays
// free of kratix-go and controller-runtime.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/stageflags"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
	"github.com/kratix-turnstile/turnstile/pkg/version"
)

// exitError ends the plugin with a code, as status does: 1 paused or failed, 2 timed out.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main runs kubectl-turnstile and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, stdout, stderr, clock.RealClock{})
}

// Run is Main with the clock that dates the status table injected.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, clk clock.PassiveClock) int {
	root := NewRoot(stdout, stderr, clk)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		if exit.msg != "" {
			fmt.Fprintln(stderr, exit.msg)
		}
		return exit.code
	}
	return program.Exit(stderr, "error", err)
}

// env is what every command shares: how to reach the cluster, and where the slots are.
type env struct {
	flags         *genericclioptions.ConfigFlags
	slotNamespace string
	slots         stageflags.Count
	clock         clock.PassiveClock
}

// NewRoot builds the plugin's command tree. It honours --kubeconfig, --context and -n the way
// kubectl does; clk dates the status table (injectable for tests).
func NewRoot(stdout, stderr io.Writer, clk clock.PassiveClock) *cobra.Command {
	e := &env{flags: genericclioptions.NewConfigFlags(true), clock: clk, slots: stageflags.Count{N: 1}}
	root := &cobra.Command{
		Use:           "kubectl-turnstile",
		Short:         "See and steer Turnstile's progressive upgrades of Kratix resource requests",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	e.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&e.slotNamespace, "slot-namespace", turnstile.DefaultNamespace, "namespace of the turnstile's Leases")
	root.PersistentFlags().Var(&e.slots, "slots", "the Promise's slots, as its acquire stage sets them (a number, or a share such as 10%); a rollout's record says how many it has")
	root.AddCommand(newStatusCommand(e), newPauseCommand(e), newResumeCommand(e), newAbortCommand(e),
		newApproveCommand(e), newSkipCommand(e), newRollbackCommand(e), newDashboardCommand(e), newWindowCommand(e), newWrapCommand(e), newPlanCommand(e))
	return root
}

// clients are the narrow clients the commands use.
type clients struct {
	dynamic dynamic.Interface
	leases  coordinationv1client.LeasesGetter
	events  corev1client.EventsGetter
	auth    authenticationv1client.SelfSubjectReviewsGetter
}

func (e *env) clients() (*clients, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-turnstile/" + version.Version
	c := &clients{}
	if c.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, err
	}
	coordination, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	auth, err := authenticationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c.leases, c.events, c.auth = coordination, core, auth
	return c, nil
}

func (e *env) turnstile(c *clients, promise string) (*turnstile.Turnstile, error) {
	return turnstile.New(turnstile.Config{Leases: c.leases, Namespace: e.slotNamespace, Promise: promise, Slots: e.slots.Default()})
}

// requestNamespace is -n, or "" for all namespaces when -n was not given.
func (e *env) requestNamespace() string {
	if e.flags.Namespace == nil {
		return ""
	}
	return *e.flags.Namespace
}

var promisesGVR = schema.GroupVersionResource{Group: "platform.kratix.io", Version: "v1alpha1", Resource: "promises"}

// requestsOf finds the API of a Promise's resource requests, from the CRD in its spec.api, and the
// version the Promise declares (its kratix.io/promise-version label), "" if none.
func requestsOf(ctx context.Context, c *clients, promise string) (schema.GroupVersionResource, string, error) {
	p, err := c.dynamic.Resource(promisesGVR).Get(ctx, promise, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return schema.GroupVersionResource{}, "", fmt.Errorf("unknown Promise %q (kubectl get promises lists them)", promise)
	}
	if err != nil {
		return schema.GroupVersionResource{}, "", fmt.Errorf("reading Promise %s: %w", promise, err)
	}
	return report.API(p)
}

// operator names who is at the keyboard, for the record: the user the apiserver sees.
func operator(ctx context.Context, c *clients) string {
	r, err := c.auth.SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || r.Status.UserInfo.Username == "" {
		return "unknown user"
	}
	return r.Status.UserInfo.Username
}
