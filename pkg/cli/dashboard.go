package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/pkg/observer"
	"github.com/kratix-turnstile/turnstile/pkg/version"
)

type dashboardFlags struct {
	address string
	port    int
}

func newDashboardCommand(e *env) *cobra.Command {
	f := &dashboardFlags{}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a live web page and Prometheus metrics of every rollout (read-only)",
		Long: `dashboard watches every Promise's rollout with your kubeconfig and serves, until Ctrl-C:
  /         a live page: each rollout's progress, waves, slots and holders, the queue in order,
            each request's phase and health, the pause reason, and a timeline
  /metrics  Prometheus metrics (turnstile_*)
  /api/rollouts  the same as JSON
It reads Promises, their requests (in -n's namespace only, when given) and the Leases in the
slot namespace, and writes nothing.
In a cluster, config/observer runs the same thing as a Deployment.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDashboard(cmd.Context(), e, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.address, "address", "127.0.0.1", "address to listen on (0.0.0.0 to serve beyond this machine)")
	cmd.Flags().IntVar(&f.port, "port", 3100, "port to listen on; 0 picks a free one")
	return cmd
}

func runDashboard(ctx context.Context, e *env, f *dashboardFlags, out, errOut io.Writer) error {
	if f.port < 0 || f.port > 65535 {
		return fmt.Errorf("--port must be between 0 and 65535, got %d", f.port)
	}
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-turnstile-dashboard/" + version.Version
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(f.address, strconv.Itoa(f.port)))
	if err != nil {
		return fmt.Errorf("listening for the dashboard: %w", err)
	}
	obs := observer.New(observer.Config{Dynamic: dyn, SlotNamespace: e.slotNamespace, Namespace: e.requestNamespace(), Slots: e.slots.Default(), Clock: clock.RealClock{}, Log: errOut})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := obs.Run(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	fmt.Fprintf(out, "Turnstile dashboard: http://%s/ (metrics at /metrics); Ctrl-C stops it\n", ln.Addr())
	return obs.Serve(ctx, ln)
}
