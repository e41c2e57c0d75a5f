// Package podrunner stands in for the kubelet in the end-to-end harness: it runs the Pods that
// kube-controller-manager's Job controller creates for Kratix's pipeline Jobs. Each pod's init
// containers run in order, then its main containers, each as a local process in a private mount
// namespace holding the pod's volumes at their mount paths and a real pod-bound ServiceAccount
// token, chrooted into its image's filesystem. Images map to filesystems on disk: Turnstile's
// own images unpacked from what turnstile-image builds, and Kratix's pipeline adapter to its
// work-creator binary. The runner writes the pods' status, so the Job controller and Kratix
// proceed as they would on a node.
package podrunner

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// KratixPods selects the pods of Kratix's pipeline Jobs.
const KratixPods = "app.kubernetes.io/managed-by=Kratix"

// Image is what the runner knows of an image: its filesystem and its config.
type Image struct {
	// Root is the image's filesystem, which containers see read-only.
	Root string
	// Binds are host files shown in the image, e.g. a binary at its path in the real image.
	Binds      []Mount
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	UID, GID   int
}

// Runner runs pipeline pods.
type Runner struct {
	Client kubernetes.Interface
	// APIServer is the apiserver's URL and CA, which pods reach as the in-cluster config.
	APIServer string
	CA        []byte
	// Images maps image references, as pods name them, to images.
	Images map[string]Image
	// Dir holds each pod's volumes, token and per-container logs.
	Dir string
	// Log gets one line per container run and per pod result.
	Log io.Writer

	mu      sync.Mutex
	running map[types.UID]context.CancelFunc
	runs    []Run
	wg      sync.WaitGroup
}

// Run is one pod the runner ran: when it started and when its last container ended (zero while
// it runs). What a test counts: how often a pipeline ran, how long its pods stayed alive.
type Run struct {
	Namespace, Name string
	Labels          map[string]string
	Started, Ended  time.Time
}

// Runs are the pods run so far, in the order they started.
func (r *Runner) Runs() []Run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Run(nil), r.runs...)
}

// Run runs pods until ctx ends, then stops the containers still running and waits for them.
func (r *Runner) Run(ctx context.Context) error {
	if _, _, err := r.serviceHostPort(); err != nil {
		return err
	}
	r.running = map[types.UID]context.CancelFunc{}
	factory := informers.NewSharedInformerFactoryWithOptions(r.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = KratixPods }))
	pods := factory.Core().V1().Pods().Informer()
	_, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(ctx, obj) },
		UpdateFunc: func(_, obj any) { r.observe(ctx, obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				r.stop(pod.UID)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching pipeline pods: %w", err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	r.wg.Wait()
	return nil
}

// observe starts a pending pod once, and stops a pod that is being deleted (a suspended Job's).
func (r *Runner) observe(ctx context.Context, obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		r.stop(pod.UID)
		return
	}
	if pod.Status.Phase != corev1.PodPending && pod.Status.Phase != "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.running[pod.UID]; seen || ctx.Err() != nil {
		return
	}
	podCtx, cancel := context.WithCancel(ctx)
	r.running[pod.UID] = cancel
	r.runs = append(r.runs, Run{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, Started: time.Now()})
	run := len(r.runs) - 1
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		r.runPod(podCtx, pod.DeepCopy())
		r.mu.Lock()
		r.runs[run].Ended = time.Now()
		r.mu.Unlock()
	}()
}

// stop ends a pod's containers. The pod stays known, so it is never started again.
func (r *Runner) stop(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cancel, ok := r.running[uid]; ok {
		cancel()
	}
}

// PodDir is where a pod's files are; its containers' logs are <container>.log in it.
func (r *Runner) PodDir(namespace, name string) string {
	return filepath.Join(r.Dir, namespace+"_"+name)
}

// ContainerLog reads a container's log.
func (r *Runner) ContainerLog(namespace, pod, container string) (string, error) {
	data, err := os.ReadFile(filepath.Join(r.PodDir(namespace, pod), container+".log"))
	return string(data), err
}

func (r *Runner) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
	}
}

// serviceHostPort is KUBERNETES_SERVICE_HOST and _PORT for the apiserver.
func (r *Runner) serviceHostPort() (string, string, error) {
	u, err := url.Parse(r.APIServer)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("reading the apiserver URL %q: want https://host:port", r.APIServer)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", "", fmt.Errorf("reading the apiserver URL %q: %w", r.APIServer, err)
	}
	return host, port, nil
}
