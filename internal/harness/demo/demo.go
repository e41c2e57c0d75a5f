// Package demo is `make demo`: the progressive-rollout story on a real Kratix platform on this
// machine (internal/harness), told in the terminal. Five requests of the example webapp Promise are
// installed at v1; the Promise is upgraded to v2; Turnstile lets the requests through one at a
// time, as the operator plugin's `status -w` view shows; chat's v2 comes up unhealthy, so the
// rollout pauses on it, with the reason in its status; the demo heals chat's app and the
// rollout completes. A summary gives the order, the time per request and the pause.
package demo

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/clock"

	"github.com/kratix-turnstile/turnstile/internal/harness"
	"github.com/kratix-turnstile/turnstile/internal/harness/kratix"
	"github.com/kratix-turnstile/turnstile/pkg/cli"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/test/scrape"
)

// Main runs the demo; ctx ends on Ctrl-C, and everything is stopped either way.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("turnstile-demo", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	logs := fs.String("logs", "", "keep the platform's logs (Kratix, pods, sync, agent) in this directory")
	version := fs.String("kratix", string(kratix.Current), fmt.Sprintf("the Kratix to run: %q (workflow-control: waiting requests hand back with retryAfter) or %q (the 2025 one: waiting stages block)", kratix.Current, kratix.Pinned))
	fleet := fs.Int("fleet", 0, "instead of the story: measure Turnstile's share of a rollout of this many healthy requests (make bench runs 50)")
	fleetSlots := fs.Int("fleet-slots", 1, "with --fleet: how many requests upgrade at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *fleet < 0 || *fleetSlots < 1 {
		fmt.Fprintf(stderr, "turnstile-demo: --fleet must be 0 or more and --fleet-slots 1 or more, got %d and %d\n", *fleet, *fleetSlots)
		return 2
	}
	kv, err := kratix.ParseVersion(*version)
	if err != nil {
		fmt.Fprintf(stderr, "turnstile-demo: --kratix: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "turnstile-demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	started := time.Now()
	d := &demo{out: stdout, errOut: stderr, logs: *logs, kratix: kv}
	if *fleet > 0 {
		err = d.fleet(ctx, *fleet, *fleetSlots)
	} else {
		err = d.run(ctx)
	}
	if d.h != nil {
		say(stdout, "Stopping the platform")
		_ = program.During(stdout, "demo", "stopping Kratix, the agent, the pods and the control planes", func() error {
			d.h.Stop()
			return nil
		})
		fmt.Fprintln(stdout, "stopped every process; the sandbox's mounts and files went with it")
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "turnstile-demo: interrupted")
		return 130
	case err != nil:
		return program.Exit(stderr, "turnstile-demo", err)
	}
	fmt.Fprintf(stdout, "\nThe demo took %s.\n", time.Since(started).Round(time.Second))
	return 0
}

type demo struct {
	out, errOut io.Writer
	logs        string
	kratix      kratix.Version
	h           *harness.Harness
	dashboard   string
}

// start starts the platform and the dashboard.
func (d *demo) start(ctx context.Context) error {
	say(d.out, "Starting a Kratix platform on this machine: etcd, kube-apiserver, kube-controller-manager, kratix-manager ("+d.kratix.Describe()+"), and a Destination (no Docker)")
	var err error
	if d.h, err = harness.Start(ctx, harness.Options{Progress: d.out, Dir: d.logs, Kratix: d.kratix}); err != nil {
		return err
	}
	// The dashboard, as `kubectl turnstile dashboard` serves it: the port Argo Rollouts' uses.
	if d.dashboard, err = d.h.Observe(ctx, "127.0.0.1:3100"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "watch the rollout live in a browser: %s (Prometheus metrics at %smetrics)\n", d.dashboard, d.dashboard)
	return nil
}

func (d *demo) run(ctx context.Context) error {
	if err := d.start(ctx); err != nil {
		return err
	}
	h := d.h

	say(d.out, "Publishing the webapp Promise at v1, with five requests: first installs go straight through")
	if err := h.ApplyPromise(ctx, "v1"); err != nil {
		return fmt.Errorf("publishing the Promise at v1: %w", err)
	}
	if err := h.ApplyRequests(ctx); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "applied: Kratix runs the %d requests' pipelines, which build and deploy their apps\n", len(harness.Requests))
	if err := d.waitAll(ctx, "v1", harness.Requests, 500*time.Millisecond); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "all five apps serve v1 at the Destination: %s\n", d.appVersions())

	say(d.out, "Upgrading the Promise to v2: Kratix re-runs every request at once; Turnstile lets them through one at a time")
	upgrade := time.Now()
	trackCtx, stopTracking := context.WithCancel(ctx)
	defer stopTracking()
	tracker := h.Track(trackCtx, "v2")
	if err := h.ApplyPromise(ctx, "v2"); err != nil {
		return fmt.Errorf("upgrading the Promise to v2: %w", err)
	}
	code := d.status(ctx)
	if code == 1 {
		// The slot says Failed a moment before chat's status does.
		if err := program.During(d.out, "demo", "waiting for chat's status to say its upgrade failed", func() error {
			return h.WaitForRequests(ctx, time.Minute, harness.AtPhase("v2", "Failed"), "chat")
		}); err != nil {
			return fmt.Errorf("waiting for chat's status to say its upgrade failed: %w", err)
		}
		chat := d.request(ctx, "chat")
		msg, _, _ := unstructured.NestedString(chat.Object, "status", "turnstile", "message")
		say(d.out, "The rollout paused on chat, whose v2 is unhealthy. Its status says why:")
		fmt.Fprintf(d.out, "  kubectl get webapp chat -o jsonpath='{.status.turnstile.message}'\n  %s\n", msg)
		say(d.out, "Healing chat: the demo fixes its app in place; the agent reports it healthy; the rollout goes on")
		if err := h.Apps.Heal("default", "chat"); err != nil {
			return err
		}
		if err := program.During(d.out, "demo", "waiting for chat's v2 to stay healthy for its soak", func() error {
			return h.WaitForRequests(ctx, 2*time.Minute, harness.AtPhase("v2", "Upgraded"), "chat")
		}); err != nil {
			return fmt.Errorf("waiting for chat to recover: %w", err)
		}
		fmt.Fprintln(d.out, "chat is healthy again and upgraded: the next request takes the slot")
		code = d.status(ctx)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if code != 0 {
		return fmt.Errorf("the rollout did not complete (status -w exited %d)", code)
	}
	time.Sleep(300 * time.Millisecond) // a last sample for the summary
	stopTracking()
	d.summary(tracker, time.Since(upgrade))
	return nil
}

// status runs the operator plugin's `kubectl turnstile status webapp -w`, in-process.
func (d *demo) status(ctx context.Context) int {
	// Off a terminal, a quiet spell (a soak) still gets a line every few seconds.
	args := []string{"status", harness.PromiseName, "-n", "default", "-w", "--heartbeat", program.StillEvery.String()}
	fmt.Fprintf(d.out, "$ kubectl turnstile %s\n", strings.Join(args, " "))
	return cli.Run(ctx, append(args, "--kubeconfig", d.h.Kubeconfig), d.out, d.errOut, clock.RealClock{})
}

func (d *demo) summary(t *harness.Tracker, took time.Duration) {
	say(d.out, "Summary: the upgrade to v2")
	var order []string
	for i, u := range t.Upgrades() {
		order = append(order, u.Name)
		line := fmt.Sprintf("  %d. %-5s %6s", i+1, u.Name, u.Done.Sub(u.Began).Round(100*time.Millisecond))
		if u.Paused > 0 {
			line += fmt.Sprintf("   paused %s: %s", u.Paused.Round(time.Second), u.Reason)
		}
		fmt.Fprintln(d.out, line)
	}
	fmt.Fprintf(d.out, "order: %s; at most %d upgrading at once; the whole rollout took %s\n",
		strings.Join(order, " → "), t.MaxInFlight(), took.Round(time.Second))
	if first := t.First(); first == harness.Canary {
		fmt.Fprintf(d.out, "canary first: %s (wave 0) upgraded before any other request\n", first)
	} else {
		fmt.Fprintf(d.out, "canary NOT first: %s began before the canary %s\n", first, harness.Canary)
	}
	fmt.Fprintf(d.out, "the apps at the Destination: %s\n", d.appVersions())
	d.metrics()
}

// metrics prints a few of the series the dashboard's /metrics produced for the rollout.
func (d *demo) metrics() {
	m, err := scrape.Get(d.dashboard + "metrics")
	if err != nil {
		fmt.Fprintf(d.out, "could not read the dashboard's metrics: %v\n", err)
		return
	}
	p := "promise=" + harness.PromiseName
	fmt.Fprintf(d.out, "metrics from %smetrics:\n", d.dashboard)
	fmt.Fprintf(d.out, "  turnstile_requests{phase=\"Upgraded\"}      %v of %d\n", m.Value("turnstile_requests", p, "phase=Upgraded"), len(harness.Requests))
	for _, h := range []struct{ name, what string }{
		{"turnstile_slot_wait_seconds", "wait(s) for a slot"},
		{"turnstile_upgrade_duration_seconds", "upgrade(s), slot taken to released"},
		{"turnstile_unhealthy_hold_seconds", "hold(s) of a slot by an unhealthy request"},
		{"turnstile_handoff_gap_seconds", "handoff(s), release to next take"},
	} {
		n, sum := m.Value(h.name+"_count", p), m.Value(h.name+"_sum", p)
		mean := 0.0
		if n > 0 {
			mean = sum / n
		}
		fmt.Fprintf(d.out, "  %-36s %v %s, %.2fs each on average\n", h.name, n, h.what, mean)
	}
}

func (d *demo) request(ctx context.Context, name string) *unstructured.Unstructured {
	u, err := d.h.Dynamic.Resource(harness.WebApps).Namespace("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return &unstructured.Unstructured{Object: map[string]any{}}
	}
	return u
}

func (d *demo) appVersions() string {
	var parts []string
	for _, r := range harness.Requests {
		parts = append(parts, r+"="+d.h.AppVersions()[r])
	}
	return strings.Join(parts, " ")
}

func say(w io.Writer, msg string) {
	fmt.Fprintf(w, "\n\033[1m== %s\033[0m\n", msg)
}
