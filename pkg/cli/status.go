package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kratix-turnstile/turnstile/pkg/report"
	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

type statusFlags struct {
	watch     bool
	timeout   time.Duration
	heartbeat time.Duration
	output    string
}

func newStatusCommand(e *env) *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status [PROMISE]",
		Short: "Show where a Promise's rollout stands; -w follows it until it ends",
		Long: `status shows a Promise's rollout: each request's wave, phase, slot, health and message, and
how many are upgraded, failed and waiting. With -w it follows the rollout live, through watches,
until it is done, halts, or --timeout passes. The exit code follows kubectl argo rollouts
status: 0 done (or, without -w, progressing), 1 paused, aborted or failed, 2 timed out.
Without PROMISE it picks the one Promise that has a rollout.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), e, f, args, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&f.watch, "watch", "w", false, "follow the rollout until it is done or halts")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 0, "with -w: give up after this long (exit code 2); 0 waits for ever")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat", 0, "with -w, when the output is not a terminal: after this long without a change, print where the rollout stands anyway (e.g. 1m in CI logs); 0 never")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "table or json")
	return cmd
}

func runStatus(ctx context.Context, e *env, f *statusFlags, args []string, out io.Writer) error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("--output %q: want table or json", f.output)
	}
	if f.timeout < 0 {
		return fmt.Errorf("--timeout must not be negative (0 waits for ever), got %s", f.timeout)
	}
	if f.heartbeat < 0 {
		return fmt.Errorf("--heartbeat must not be negative (0 never), got %s", f.heartbeat)
	}
	c, err := e.clients()
	if err != nil {
		return err
	}
	promise := ""
	if len(args) == 1 {
		promise = args[0]
	} else if promise, err = onlyRollout(ctx, c, e.slotNamespace); err != nil {
		return err
	}
	gvr, declared, err := requestsOf(ctx, c, promise)
	if err != nil {
		return err
	}
	ts, err := e.turnstile(c, promise)
	if err != nil {
		return err
	}
	if f.watch && f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	show := newDisplay(out, f.output, f.watch, f.heartbeat)
	for {
		rep, rv, err := e.report(ctx, c, ts, promise, gvr, declared)
		if err != nil {
			return err
		}
		show(rep, e.clock.Now())
		switch rep.Outcome() {
		case report.Done:
			return nil
		case report.Halted:
			return &exitError{code: 1}
		}
		if !f.watch {
			return nil
		}
		// While nothing changes, the same report is shown again twice a second: its ages move on.
		again := func() { show(rep, e.clock.Now()) }
		if err := e.waitForChange(ctx, c, promise, gvr, rv, again); err != nil {
			if ctx.Err() != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("timed out after %s: the rollout of %s is still progressing", f.timeout, promise)}
			}
			return err
		}
	}
}

// report reads the rollout once, and the resource versions to watch from.
func (e *env) report(ctx context.Context, c *clients, ts *turnstile.Turnstile, promise string, gvr schema.GroupVersionResource, declared string) (report.Report, [2]string, error) {
	list, err := c.dynamic.Resource(gvr).Namespace(e.requestNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return report.Report{}, [2]string{}, fmt.Errorf("listing the requests of %s: %w", promise, err)
	}
	leases, err := c.leases.Leases(e.slotNamespace).List(ctx, metav1.ListOptions{LabelSelector: turnstile.Selector(promise).String()})
	if err != nil {
		return report.Report{}, [2]string{}, fmt.Errorf("reading the turnstile of %s: %w", promise, err)
	}
	ptrs := make([]*coordinationv1.Lease, len(leases.Items))
	for i := range leases.Items {
		ptrs[i] = &leases.Items[i]
	}
	view := turnstile.NewView(promise, e.slots.Default(), ptrs)
	return report.Build(promise, report.WithDeclared(view, declared), list.Items, e.slots.Default(), e.clock.Now()), [2]string{list.GetResourceVersion(), leases.ResourceVersion}, nil
}

// waitForChange blocks until a request of the Promise or a Lease of its turnstile changes,
// calling tick twice a second meanwhile.
func (e *env) waitForChange(ctx context.Context, c *clients, promise string, gvr schema.GroupVersionResource, rv [2]string, tick func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	requests, err := c.dynamic.Resource(gvr).Namespace(e.requestNamespace()).Watch(ctx, metav1.ListOptions{ResourceVersion: rv[0]})
	if err != nil {
		return fmt.Errorf("watching requests: %w", err)
	}
	defer requests.Stop()
	leases, err := c.leases.Leases(e.slotNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: rv[1], LabelSelector: turnstile.Selector(promise).String()})
	if err != nil {
		return fmt.Errorf("watching the turnstile: %w", err)
	}
	defer leases.Stop()
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-requests.ResultChan():
			return nil
		case <-leases.ResultChan():
			return nil
		case <-ticker.C:
			tick()
		}
	}
}

// onlyRollout is the one Promise with a rollout in the slot namespace.
func onlyRollout(ctx context.Context, c *clients, slotNS string) (string, error) {
	list, err := c.leases.Leases(slotNS).List(ctx, metav1.ListOptions{LabelSelector: turnstile.LabelRole + "=" + turnstile.RoleRollout})
	if err != nil {
		return "", fmt.Errorf("finding rollouts in %s: %w", slotNS, err)
	}
	var names []string
	for _, l := range list.Items {
		names = append(names, l.Labels[turnstile.LabelPromise])
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no rollout in %s: name a Promise", slotNS)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("%d Promises have rollouts (%s): name one", len(names), strings.Join(names, ", "))
}
