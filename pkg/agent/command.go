package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kratix-turnstile/turnstile/pkg/apiclient"
	"github.com/kratix-turnstile/turnstile/pkg/checks"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/pkg/version"
)

// Main runs turnstile-agent and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return program.Exit(stderr, "turnstile-agent", run(ctx, args, stdout, stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("turnstile-agent", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		kubeconfig         = fs.String("kubeconfig", "", "kubeconfig of the Destination (default: in-cluster)")
		platformKubeconfig = fs.String("platform-kubeconfig", "", "kubeconfig of the platform cluster, where HealthRecords go (required)")
		namespace          = fs.String("namespace", "", "watch HealthDefinitions in this namespace only (default: all)")
		heartbeat          = fs.Duration("heartbeat", time.Minute, "rewrite an unchanged record this often, so its lastRun stays fresh")
		maxConcurrent      = fs.Int("max-concurrent", 64, "rounds of checks running at once, at most")
		listen             = fs.String("listen", ":8080", "address of /healthz, /readyz and /metrics")
		showVersion        = fs.Bool("version", false, "print the version and exit")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion || fs.Arg(0) == "version" {
		fmt.Fprintln(stdout, version.Version)
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := validateFlags(*heartbeat, *maxConcurrent, *listen); err != nil {
		return err
	}
	if *platformKubeconfig == "" {
		return errors.New("--platform-kubeconfig is required: records are written to the platform cluster")
	}
	destCfg, err := loadConfig(*kubeconfig, "the Destination")
	if err != nil {
		return err
	}
	platformCfg, err := loadConfig(*platformKubeconfig, "the platform")
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := Config{Namespace: *namespace, Heartbeat: *heartbeat, MaxConcurrent: *maxConcurrent, Metrics: NewMetrics(reg), Logger: logger}
	if cfg.Destination, err = dynamic.NewForConfig(destCfg); err != nil {
		return fmt.Errorf("creating the Destination client: %w", err)
	}
	if cfg.Discovery, err = discovery.NewDiscoveryClientForConfig(destCfg); err != nil {
		return fmt.Errorf("creating the Destination client: %w", err)
	}
	if cfg.Events, err = corev1client.NewForConfig(destCfg); err != nil {
		return fmt.Errorf("creating the Destination client: %w", err)
	}
	if cfg.Platform, err = dynamic.NewForConfig(platformCfg); err != nil {
		return fmt.Errorf("creating the platform client: %w", err)
	}
	a, err := New(cfg)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	server := &http.Server{Handler: a.handler(reg), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(lis) }()
	logger.Info("turnstile-agent started", "version", version.Version, "listen", lis.Addr().String())
	err = a.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdown)
	logger.Info("turnstile-agent stopped")
	return err
}

// Bounds of the agent's flags.
const (
	// minHeartbeat: every definition rewrites its record once a heartbeat; at a thousand
	// definitions, 10s is already a hundred writes a second to the platform.
	minHeartbeat = 10 * time.Second
	// maxHeartbeat: a record unchanged for longer than this looks like an agent that died.
	maxHeartbeat = time.Hour
	// maxConcurrentRounds bounds --max-concurrent: each round runs all its checks at once.
	maxConcurrentRounds = 1000
)

// validateFlags checks the agent's numbers before it connects anywhere.
func validateFlags(heartbeat time.Duration, maxConcurrent int, listen string) error {
	switch {
	case heartbeat < minHeartbeat || heartbeat > maxHeartbeat:
		return fmt.Errorf("--heartbeat must be between %s and %s, got %s", checks.FormatDuration(minHeartbeat), checks.FormatDuration(maxHeartbeat), heartbeat)
	case maxConcurrent < 1 || maxConcurrent > maxConcurrentRounds:
		return fmt.Errorf("--max-concurrent must be between 1 and %d, got %d", maxConcurrentRounds, maxConcurrent)
	}
	// Port 0 picks a free port, which tests use.
	_, port, err := net.SplitHostPort(listen)
	if n, convErr := strconv.Atoi(port); err != nil || convErr != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--listen %q: want [host]:port, the port from 0 to 65535", listen)
	}
	return nil
}

func loadConfig(path, what string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig of %s: %w", what, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	apiclient.RideOutOutages(cfg, apiclient.TransientBudget)
	cfg.UserAgent = "turnstile-agent/" + version.Version
	return cfg, nil
}

// handler serves /healthz (the process is up), /readyz (the HealthDefinitions are read) and
// /metrics. Neither probe checks the agent's dependencies: a platform outage must not restart it.
func (a *Agent) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "HealthDefinitions not read yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
