// Package apps stands in for the Destination's nodes in the end-to-end harness: for every
// Deployment of the example webapp Promise applied to the Destination's cluster, it serves the
// demo app in-process, on a loopback address of its own at port 80, and maps the app's Service
// name to that address in the sandbox's /etc/hosts. The health agent then checks
// http://<name>.<namespace>.svc.cluster.local/healthz as it would in a cluster.
package apps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	demoapp "github.com/kratix-turnstile/turnstile/examples/webapp/app"
)

// Selector picks the example Promise's Deployments.
const Selector = "app.kubernetes.io/part-of=webapp"

// App is one running app.
type App struct {
	Namespace, Name string
	Address         string
	Config          demoapp.Config
	// Healed is set when the demo fixed the app in place, overriding its config's health.
	Healed bool
}

// Host returns the app's in-cluster host name.
func (a App) Host() string { return a.Name + "." + a.Namespace + ".svc.cluster.local" }

// Apps serves the apps of one Destination.
type Apps struct {
	Client kubernetes.Interface
	// HostsFile is rewritten in place with every app's address.
	HostsFile string

	mu     sync.Mutex
	apps   map[string]*running
	nextIP int
}

type running struct {
	app      App
	server   *http.Server
	listener net.Listener
}

// Run serves the apps until ctx ends.
func (a *Apps) Run(ctx context.Context) error {
	a.mu.Lock()
	a.apps, a.nextIP = map[string]*running{}, 1
	a.mu.Unlock()
	factory := informers.NewSharedInformerFactoryWithOptions(a.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Selector }))
	deployments := factory.Apps().V1().Deployments().Informer()
	_, err := deployments.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.deploy(obj) },
		UpdateFunc: func(_, obj any) { a.deploy(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if d, ok := obj.(*appsv1.Deployment); ok {
				a.remove(d.Namespace + "/" + d.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watching the Destination's Deployments: %w", err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	a.mu.Lock()
	defer a.mu.Unlock()
	for key := range a.apps {
		a.stopLocked(key)
	}
	return nil
}

// List is the running apps, by namespace and name.
func (a *Apps) List() []App {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []App
	for _, r := range a.apps {
		out = append(out, r.app)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out
}

// Heal fixes a running app in place: its /healthz answers ok until its Deployment changes.
func (a *Apps) Heal(namespace, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.apps[namespace+"/"+name]
	if !ok {
		return fmt.Errorf("no app %s/%s is running", namespace, name)
	}
	app := r.app
	app.Healed = true
	return a.serveLocked(app)
}

// deploy starts, or restarts with its new config, the app of a Deployment.
func (a *Apps) deploy(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.DeletionTimestamp != nil {
		return
	}
	cfg := configOf(d)
	key := d.Namespace + "/" + d.Name
	a.mu.Lock()
	defer a.mu.Unlock()
	app := App{Namespace: d.Namespace, Name: d.Name, Config: cfg}
	if r, ok := a.apps[key]; ok {
		if r.app.Config == cfg {
			return
		}
		app.Address = r.app.Address
	} else {
		app.Address = fmt.Sprintf("127.0.1.%d", a.nextIP)
		a.nextIP++
	}
	if err := a.serveLocked(app); err != nil {
		fmt.Fprintf(os.Stderr, "apps: %v\n", err)
	}
}

// serveLocked (re)starts app's server and rewrites the hosts file.
func (a *Apps) serveLocked(app App) error {
	key := app.Namespace + "/" + app.Name
	a.stopLocked(key)
	lis, err := net.Listen("tcp", net.JoinHostPort(app.Address, "80"))
	if err != nil {
		return fmt.Errorf("serving %s: %w", key, err)
	}
	cfg := app.Config
	if app.Healed {
		cfg.Healthy = true
	}
	srv := &http.Server{Handler: demoapp.Handler(cfg), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "apps: serving %s: %v\n", key, err)
		}
	}()
	a.apps[key] = &running{app: app, server: srv, listener: lis}
	return a.writeHostsLocked()
}

func (a *Apps) remove(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopLocked(key)
	delete(a.apps, key)
	if err := a.writeHostsLocked(); err != nil {
		fmt.Fprintf(os.Stderr, "apps: %v\n", err)
	}
}

func (a *Apps) stopLocked(key string) {
	if r, ok := a.apps[key]; ok && r.server != nil {
		_ = r.server.Close()
		// Close only closes the listeners Serve has begun on: one its goroutine has not reached
		// yet stays bound, and the restart's Listen on the same address would fail.
		_ = r.listener.Close()
		r.server, r.listener = nil, nil
	}
}

// writeHostsLocked rewrites the hosts file in place: it is a bind mount, which a rename would
// leave pointing at the old file.
func (a *Apps) writeHostsLocked() error {
	if a.HostsFile == "" {
		return nil
	}
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n::1 localhost\n")
	for _, r := range a.apps {
		fmt.Fprintf(&b, "%s %s\n", r.app.Address, r.app.Host())
	}
	if err := os.WriteFile(a.HostsFile, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", a.HostsFile, err)
	}
	return nil
}

// configOf reads the app's settings from its Deployment, as the container would see its env.
func configOf(d *appsv1.Deployment) demoapp.Config {
	cfg := demoapp.Config{Healthy: true}
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			switch e.Name {
			case "APP_VERSION":
				cfg.Version = e.Value
			case "APP_MESSAGE":
				cfg.Message = e.Value
			case "APP_HEALTHY":
				cfg.Healthy = e.Value != "false"
			}
		}
	}
	return cfg
}
