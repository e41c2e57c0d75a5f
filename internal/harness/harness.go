// Package harness is the end-to-end harness: a real Kratix platform on this machine, without
// Docker. It starts two control planes (the platform, with kube-controller-manager, and a
// Destination), the unmodified Kratix manager, the pipeline runner standing in for the
// platform's kubelet, a git state store and the sync loop standing in for the Destination's
// GitOps agent, the example apps standing in for the Destination's nodes, and the real health
// agent. It must run inside a sandbox (package sandbox).
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/kratix-turnstile/turnstile/internal/harness/apps"
	"github.com/kratix-turnstile/turnstile/internal/harness/gitsync"
	"github.com/kratix-turnstile/turnstile/internal/harness/kratix"
	"github.com/kratix-turnstile/turnstile/internal/harness/podrunner"
	"github.com/kratix-turnstile/turnstile/internal/harness/sandbox"
	"github.com/kratix-turnstile/turnstile/pkg/image"
	"github.com/kratix-turnstile/turnstile/pkg/program"
	"github.com/kratix-turnstile/turnstile/test/controlplane"
	"github.com/kratix-turnstile/turnstile/test/testbin"
)

// DestinationName is the harness's one Destination.
const DestinationName = "worker-1"

// ImageTag is the tag the harness builds Turnstile's images with.
const ImageTag = "v0.0.0-harness"

// Options configure Start.
type Options struct {
	// Dir holds everything the harness writes: logs, images, state store. Default: a new
	// directory under TMPDIR (the sandbox's tmpfs), removed by Stop. A Dir given is kept, for
	// reading the logs afterwards.
	Dir string
	// Progress gets a line per step of starting up.
	Progress io.Writer
	// Kratix is the Kratix to run; "" is kratix.Current.
	Kratix kratix.Version
}

// Harness is a running platform and Destination.
type Harness struct {
	Dir         string
	Platform    *controlplane.ControlPlane
	Destination *controlplane.ControlPlane
	// Client and Dynamic are admin clients of the platform.
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Kubeconfig is the platform's admin kubeconfig file.
	Kubeconfig string
	Runner     *podrunner.Runner
	Apps       *apps.Apps
	// ImageRepo and ImageTag name the images the example Promise is rendered with.
	ImageRepo, ImageTag string
	// Kratix is the Kratix running.
	Kratix kratix.Version

	module  string
	manager *kratix.Manager
	agent   *controlplane.Process
	// ctx ends at Stop, for the loops the harness runs.
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	progress io.Writer
	stopOnce sync.Once
	keep     bool
}

// Start starts the harness; Stop stops it. On error, what was started is stopped.
func Start(ctx context.Context, o Options) (*Harness, error) {
	if !sandbox.Inside() {
		return nil, errors.New("the harness runs inside a sandbox: call it from sandbox.Run")
	}
	version, err := kratix.ParseVersion(string(o.Kratix))
	if err != nil {
		return nil, err
	}
	h := &Harness{Dir: o.Dir, keep: o.Dir != "", progress: o.Progress, ImageRepo: image.DefaultRepository, ImageTag: ImageTag,
		Kratix: version}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if h.progress == nil {
		h.progress = io.Discard
	}
	if err := h.start(ctx); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

func (h *Harness) start(ctx context.Context) error {
	var err error
	if h.Dir == "" {
		if h.Dir, err = os.MkdirTemp("", "harness-"); err != nil {
			return fmt.Errorf("creating the harness's directory: %w", err)
		}
	}
	if h.module, err = controlplane.ModuleDir(""); err != nil {
		return err
	}
	assets, err := controlplane.AssetsDir()
	if err != nil {
		return err
	}
	kratixDir, err := h.Kratix.Dir(assets)
	if err != nil {
		return err
	}
	kratixCRDs, err := h.Kratix.CRDs(assets)
	if err != nil {
		return err
	}
	// Built images are kept beside the control plane, in the machine's cache.
	images, agentBin, err := h.build(ctx, kratixDir, filepath.Join(filepath.Dir(assets), "images"))
	if err != nil {
		return err
	}
	if err := h.during("starting the platform and the Destination", func() error { return h.startClusters(kratixCRDs) }); err != nil {
		return err
	}
	if err := h.during("starting kratix-manager", func() error { return h.startKratix(ctx, kratixDir) }); err != nil {
		return err
	}
	h.Runner = &podrunner.Runner{Client: h.Client, APIServer: h.Platform.Host(), CA: h.Platform.ServingCA(),
		Images: images, Dir: filepath.Join(h.Dir, "pods"), Log: h.logFile("pods.log")}
	h.Apps = &apps.Apps{Client: h.Destination.Client(), HostsFile: sandbox.HostsFile()}
	h.goRun(func(ctx context.Context) { _ = h.Runner.Run(ctx) })
	h.goRun(func(ctx context.Context) { _ = h.Apps.Run(ctx) })
	if err := h.startSync(ctx); err != nil {
		return err
	}
	if err := h.startAgent(agentBin); err != nil {
		return err
	}
	if h.keep {
		h.step("ready: logs in %s", h.Dir)
	} else {
		h.step("ready (its logs are in the sandbox and go with it)")
	}
	return nil
}

// build builds the pipeline images (kept in cacheDir between runs) and the health agent;
// kratixDir has Kratix's pipeline adapter.
func (h *Harness) build(ctx context.Context, kratixDir, cacheDir string) (map[string]podrunner.Image, string, error) {
	started := time.Now()
	images, err := buildImages(ctx, h.module, kratixDir, filepath.Join(h.Dir, "images"), cacheDir, h.ImageRepo, h.ImageTag, h.during, h.step)
	if err != nil {
		return nil, "", err
	}
	bin := filepath.Join(h.Dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, "", err
	}
	var agent string
	if err := h.during("building turnstile-agent", func() (err error) {
		agent, err = testbin.Build(bin, "github.com/kratix-turnstile/turnstile/cmd/turnstile-agent")
		return err
	}); err != nil {
		return nil, "", err
	}
	h.step("built the stage and webapp-configure images and the health agent in %s", since(started))
	return images, agent, nil
}

func (h *Harness) startClusters(kratixCRDs controlplane.CRDSet) error {
	started := time.Now()
	var err error
	h.Platform, err = controlplane.Start(controlplane.WithCRDs(kratixCRDs, controlplane.TurnstileCRDs),
		controlplane.WithControllerManager())
	if err != nil {
		return fmt.Errorf("starting the platform's control plane: %w", err)
	}
	h.Destination, err = controlplane.Start(controlplane.WithCRDs(controlplane.TurnstileCRDs))
	if err != nil {
		return fmt.Errorf("starting the Destination's control plane: %w", err)
	}
	cfg := rest.CopyConfig(h.Platform.Config)
	cfg.QPS, cfg.Burst = 100, 200
	h.Client = kubernetes.NewForConfigOrDie(cfg)
	h.Dynamic = dynamic.NewForConfigOrDie(cfg)
	if h.Kubeconfig, err = h.Platform.KubeconfigFile(h.Dir); err != nil {
		return err
	}
	h.step("started the platform (etcd, kube-apiserver, kube-controller-manager) and the Destination in %s", since(started))
	return nil
}

func (h *Harness) startKratix(ctx context.Context, dir string) error {
	started := time.Now()
	var err error
	h.manager, err = kratix.StartManager(ctx, h.Client, kratix.ManagerOptions{
		Binary: filepath.Join(dir, "kratix-manager"), Kubeconfig: h.Kubeconfig,
		AdapterImage: AdapterImage, Dir: filepath.Join(h.Dir, "kratix"), StateStores: h.stateStores(),
	})
	if err != nil {
		return err
	}
	h.step("started kratix-manager (%s) in %s", h.Kratix.Describe(), since(started))
	return nil
}

// startSync creates the Destination and its state store, and syncs it to the Destination's
// cluster as a GitOps agent would.
func (h *Harness) startSync(ctx context.Context) error {
	dest, err := kratix.CreateDestination(ctx, h.Client, h.Dynamic, DestinationName, h.stateStores()[0])
	if err != nil {
		return err
	}
	disco := discovery.NewDiscoveryClientForConfigOrDie(h.Destination.Config)
	syncer := &gitsync.Syncer{Repo: dest.Repo, Path: dest.Name, Client: dynamic.NewForConfigOrDie(h.Destination.Config),
		Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))}
	log := h.logFile("sync.log")
	h.goRun(func(ctx context.Context) {
		syncer.Run(ctx, 250*time.Millisecond, func(res gitsync.Result, err error) {
			if err != nil {
				fmt.Fprintf(log, "%s sync: %v\n", time.Now().Format("15:04:05.000"), err)
				return
			}
			fmt.Fprintf(log, "%s sync %.8s: applied %d, pruned %d\n", time.Now().Format("15:04:05.000"), res.Commit, res.Applied, res.Pruned)
		})
	})
	h.step("created Destination %s on a git state store (a bare repository)", dest.Name)
	return nil
}

// startAgent runs the health agent on the Destination, reporting to the platform.
func (h *Harness) startAgent(bin string) error {
	destKubeconfig, err := h.Destination.KubeconfigFile(filepath.Join(h.Dir, "bin"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--kubeconfig="+destKubeconfig, "--platform-kubeconfig="+h.Kubeconfig, "--listen=127.0.0.1:0")
	if h.agent, err = controlplane.StartProcess(cmd, filepath.Join(h.Dir, "turnstile-agent.log")); err != nil {
		return err
	}
	h.step("started turnstile-agent on the Destination")
	return nil
}

// stateStores are the Destination's state store: a bare repository, and the URL Kratix is given
// for it. Current Kratix takes only https or ssh URLs, so it gets an https URL that the
// manager's git config maps onto the repository; a real platform gives it its git server's.
func (h *Harness) stateStores() []kratix.StateStore {
	repo := filepath.Join(h.Dir, "state.git")
	store := kratix.StateStore{Repo: repo, URL: "file://" + repo}
	if h.Kratix == kratix.Current {
		store.URL = "https://state-store.turnstile.invalid/" + DestinationName + ".git"
	}
	return []kratix.StateStore{store}
}

// Stop stops everything, in reverse order, and removes the harness's directory.
func (h *Harness) Stop() {
	h.stopOnce.Do(func() {
		if h.agent != nil {
			_ = h.agent.Stop(5 * time.Second)
		}
		if h.cancel != nil {
			h.cancel()
		}
		h.wg.Wait()
		if h.manager != nil {
			h.manager.Stop()
		}
		for _, cp := range []*controlplane.ControlPlane{h.Destination, h.Platform} {
			if cp != nil {
				_ = cp.Stop()
			}
		}
		if !h.keep {
			_ = os.RemoveAll(h.Dir)
		}
	})
}

// goRun runs fn until Stop.
func (h *Harness) goRun(fn func(context.Context)) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		fn(h.ctx)
	}()
}

// logFile is a log under the harness's directory; it stays open for the harness's life.
func (h *Harness) logFile(name string) io.Writer {
	f, err := os.OpenFile(filepath.Join(h.Dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return io.Discard
	}
	return f
}

func (h *Harness) step(format string, args ...any) {
	fmt.Fprintf(h.progress, "harness: "+format+"\n", args...)
}

// during runs fn, saying what it does first and then every few seconds until it returns.
func (h *Harness) during(what string, fn func() error) error {
	return program.During(h.progress, "harness", what, fn)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }
