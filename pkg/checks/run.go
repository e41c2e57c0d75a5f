package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"
)

// Result is one run of one check.
type Result struct {
	// Pass: the check saw what it wanted. When neither Pass nor Unknown, it failed.
	Pass bool
	// Unknown: the check could not judge (too few samples, no cluster access).
	Unknown bool
	// Observed holds the values the check saw: status code, replicas, query results.
	Observed map[string]any
	Latency  time.Duration
	Err      string
}

// Mapper resolves the kind a kube check names to the resource to read, from discovery; Reset
// forgets what it found, for a kind installed since. A restmapper.DeferredDiscoveryRESTMapper is
// one.
type Mapper interface {
	RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error)
	Reset()
}

// Runner runs checks. It keeps one HTTP client per CA bundle, so connections are reused from
// run to run.
type Runner struct {
	// Kube reads objects in the Destination for kube checks; nil makes them unknown.
	Kube dynamic.Interface
	// Mapper resolves kinds to resources for kube checks.
	Mapper Mapper
	// Clock times the checks; the real clock when nil.
	Clock clock.PassiveClock

	mu      sync.Mutex
	clients map[string]*http.Client
}

// Run runs one check once, within its timeout.
func (r *Runner) Run(ctx context.Context, c Check) Result {
	clk := r.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout.Duration)
	defer cancel()
	start := clk.Now()
	var res Result
	switch {
	case c.HTTP != nil:
		res = r.runHTTP(ctx, c.HTTP)
	case c.TCP != nil:
		res = runTCP(ctx, c.TCP)
	case c.Kube != nil:
		res = r.runKube(ctx, c.Kube)
	case c.Prometheus != nil:
		res = r.runPrometheus(ctx, c.Prometheus)
	}
	res.Latency = clk.Since(start)
	if !res.Pass && ctx.Err() != nil {
		res.Err = fmt.Sprintf("timed out after %s", c.Timeout.Duration)
	}
	return clipResult(res)
}

// clipResult bounds what a run puts into the record: the service being checked, not the
// document, decides how long an error or an observed value is.
func clipResult(res Result) Result {
	res.Err = clip(res.Err, MaxErrorLength)
	for k, v := range res.Observed {
		switch v := v.(type) {
		case string:
			res.Observed[k] = clip(v, MaxObservedLength)
		case []float64:
			res.Observed[k] = v[:min(len(v), MaxObservedSamples)]
		}
	}
	return res
}

func failed(format string, args ...any) Result { return Result{Err: fmt.Sprintf(format, args...)} }

// client is the HTTP client for a CA bundle ("" for the system's roots).
func (r *Runner) client(caBundle string) (*http.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.clients[caBundle]; ok {
		return c, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 4
	if caBundle != "" {
		pool, err := certPool(caBundle)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c := &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a health endpoint that redirects is answering, not healthy
	}}
	if r.clients == nil {
		r.clients = map[string]*http.Client{}
	}
	r.clients[caBundle] = c
	return c, nil
}

func certPool(pemData string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemData)) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}
