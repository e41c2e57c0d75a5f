package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// AssetsEnv names the directory holding etcd, kube-apiserver and kube-controller-manager.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// ControlPlane is a running etcd and kube-apiserver, plus kube-controller-manager when asked for.
type ControlPlane struct {
	// Config authenticates as a cluster admin (group system:masters).
	Config *rest.Config
	// Kubeconfig is Config as a kubeconfig file's contents, for child processes.
	Kubeconfig []byte

	env     *envtest.Environment
	kcm     *Process
	scratch string
}

type options struct {
	crds              []CRDSet
	controllerManager bool
	apiServerArgs     map[string]string
}

// Option configures Start.
type Option func(*options)

// WithCRDs installs these CRD sets and waits for them to be Established before Start returns.
func WithCRDs(sets ...CRDSet) Option {
	return func(o *options) { o.crds = append(o.crds, sets...) }
}

// WithControllerManager also runs kube-controller-manager, so namespaces get their default
// ServiceAccount, owned objects are garbage-collected and Jobs create Pods.
func WithControllerManager() Option {
	return func(o *options) { o.controllerManager = true }
}

// WithAPIServerArg sets one kube-apiserver flag (name without dashes).
func WithAPIServerArg(name, value string) Option {
	return func(o *options) { o.apiServerArgs[name] = value }
}

// AssetsDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS.
func AssetsDir() (string, error) {
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		return "", fmt.Errorf("%s is not set: run the tests with 'make test', or point it at the output of 'hack/provision-control-plane.sh --print-dir'", AssetsEnv)
	}
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("finding %s in %s=%s: %w (run 'make control-plane')", bin, AssetsEnv, dir, err)
		}
	}
	return dir, nil
}

// Start starts etcd and kube-apiserver on loopback, with RBAC authorization.
func Start(opts ...Option) (*ControlPlane, error) {
	o := options{apiServerArgs: map[string]string{
		// Without a default route (inside `unshare -n`) the apiserver cannot pick an address
		// itself, and a loopback advertise address needs the endpoint reconciler off.
		"advertise-address":        "127.0.0.1",
		"endpoint-reconciler-type": "none",
		"authorization-mode":       "RBAC",
	}}
	for _, opt := range opts {
		opt(&o)
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	// envtest logs through controller-runtime, which otherwise complains, with a stack trace,
	// that no logger was set.
	ctrllog.SetLogger(logr.Discard())
	scratch, err := os.MkdirTemp("", "turnstile-controlplane-")
	if err != nil {
		return nil, fmt.Errorf("creating control-plane scratch dir: %w", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	guarded := filepath.Join(scratch, "bin")
	if err := os.Mkdir(guarded, 0o755); err != nil {
		_ = os.RemoveAll(scratch)
		return nil, fmt.Errorf("creating the control plane's bin dir: %w", err)
	}
	// etcd's data in the scratch dir too: whatever happens to this process, removing the one
	// removes everything.
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(scratch, "etcd"),
		Path: killedWithUs(filepath.Join(assets, "etcd"), guarded)}
	api.Path = killedWithUs(filepath.Join(assets, "kube-apiserver"), guarded)
	// A certificate directory of our own outlives a stop of the apiserver, so that a restart
	// keeps its serving certificate and ServiceAccount signing key: clients and tokens issued
	// before the restart still work after it, as on a real cluster.
	api.CertDir = filepath.Join(scratch, "kube-apiserver")
	if err := os.Mkdir(api.CertDir, 0o700); err != nil {
		_ = os.RemoveAll(scratch)
		return nil, fmt.Errorf("creating the apiserver's certificate dir: %w", err)
	}
	for name, value := range o.apiServerArgs {
		api.Configure().Set(name, value)
	}
	cp := &ControlPlane{env: env, scratch: scratch}
	started := time.Now()
	cfg, err := env.Start()
	if err != nil {
		cp.Stop() //nolint:errcheck // the start error is the one that matters
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	fmt.Fprintf(os.Stderr, "control plane: kube-apiserver %s ready in %s\n", api.SecureServing.URL("https", "/"), time.Since(started).Round(time.Millisecond))
	cp.Config = cfg
	cp.Kubeconfig = env.KubeConfig

	if err := installCRDs(cfg, o.crds); err != nil {
		cp.Stop() //nolint:errcheck // the install error is the one that matters
		return nil, err
	}
	if o.controllerManager {
		if err := cp.startControllerManager(assets); err != nil {
			cp.Stop() //nolint:errcheck // the start error is the one that matters
			return nil, err
		}
	}
	return cp, nil
}

// Stop stops every process Start started and removes their files. It is safe to call twice.
func (c *ControlPlane) Stop() error {
	var errs []error
	if c.kcm != nil {
		errs = append(errs, c.kcm.Stop(10*time.Second))
		c.kcm = nil
	}
	if c.env != nil {
		errs = append(errs, c.env.Stop())
		c.env = nil
	}
	if c.scratch != "" {
		errs = append(errs, os.RemoveAll(c.scratch))
		c.scratch = ""
	}
	return errors.Join(errs...)
}

// RestartAPIServer kills kube-apiserver, as a crash or a node loss would (a graceful stop waits
// for the stages' open requests and is the gentler case), leaves it down for down, and starts it
// again on the same address with the same certificates; etcd keeps the data. It returns once
// the apiserver is healthy again.
func (c *ControlPlane) RestartAPIServer(down time.Duration) error {
	api := c.env.ControlPlane.GetAPIServer()
	pid, err := processWith("--cert-dir=" + api.CertDir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	_ = api.Stop() // reaps it; the kill is the stop, so its complaint is expected
	time.Sleep(down)
	if err := api.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	return nil
}

// processWith is the pid of the one process whose command line holds mark as one argument.
func processWith(mark string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("finding the process with %s: %w", mark, err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), mark) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process with %s is running", mark)
}

// Client is a typed admin client.
func (c *ControlPlane) Client() kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(c.Config)
}

// Host is the apiserver's URL.
func (c *ControlPlane) Host() string { return c.Config.Host }

// KubeconfigFile writes the admin kubeconfig into dir and returns its path.
func (c *ControlPlane) KubeconfigFile(dir string) (string, error) {
	return writeFile(dir, "admin.kubeconfig", c.Kubeconfig)
}

// ServingCA is the PEM of the CA that signed the apiserver's serving certificate.
func (c *ControlPlane) ServingCA() []byte {
	return c.Config.CAData
}

func writeFile(dir, name string, data []byte) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// serviceAccountUser is the user name Kubernetes gives a ServiceAccount's tokens.
func serviceAccountUser(namespace, name string) string {
	return strings.Join([]string{"system", "serviceaccount", namespace, name}, ":")
}
