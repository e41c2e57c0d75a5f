// Package apiclient is how Turnstile's binaries talk to the apiserver, beyond what client-go
// does: requests that ride out its restarts, watches of one object that outlive dropped
// connections, and numbers read from Kubernetes objects decoded from JSON or YAML (the
// apiserver's answers, or a pipeline's object.yaml).
package apiclient

import (
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// TransientBudget is how long a request keeps being retried while the apiserver cannot be
// reached or answers that it is unavailable: long enough to ride out an apiserver restart or an
// etcd leader election, short enough that a dead cluster is reported while someone still watches.
const TransientBudget = 90 * time.Second

// RideOutOutages makes every request of clients built from cfg ride out a restarting apiserver,
// backing off from 200ms to 5s, for up to budget, or until the request's context ends: a read
// that got no answer, or a 502, 503 or 504 without Retry-After, is sent again; a write only when
// it surely never arrived (the connection was refused, or a 503), so that a write that was
// applied is never replayed into a Conflict its caller would take for another writer's.
// client-go itself resends only GETs, and only on a reset connection.
func RideOutOutages(cfg *rest.Config, budget time.Duration) {
	wrap := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if wrap != nil {
			rt = wrap(rt)
		}
		return &retryTransport{next: rt, budget: budget, first: 200 * time.Millisecond, most: 5 * time.Second, clock: clock.RealClock{}}
	}
}

type retryTransport struct {
	next        http.RoundTripper
	budget      time.Duration
	first, most time.Duration // the first and the longest pause between attempts
	clock       clock.Clock
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	deadline := t.clock.Now().Add(t.budget)
	backoff := t.first
	for {
		resp, err := t.next.RoundTrip(req)
		if !resendable(req.Method, resp, err) || req.Context().Err() != nil || t.clock.Now().Add(backoff).After(deadline) {
			return resp, err
		}
		again, rerr := rewind(req)
		if rerr != nil {
			return resp, err // the body cannot be sent twice: the caller sees the first answer
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
		}
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-t.clock.After(backoff):
		}
		req, backoff = again, min(2*backoff, t.most)
	}
}

// resendable reports whether an answer says the apiserver could not serve the request for now,
// and the request may be sent again. A read may always be. A write only when it surely never
// reached the apiserver (it refused the connection, or said it is not serving): after a reset
// or a gateway's timeout it may have been applied, and its replay would come back as a lost
// race the caller would take for someone else's write.
func resendable(method string, resp *http.Response, err error) bool {
	read := method == http.MethodGet || method == http.MethodHead
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		var hostname x509.HostnameError
		if errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) {
			return false // a wrong CA or name does not get better by waiting
		}
		return read || neverSent(err)
	}
	if resp.Header.Get("Retry-After") != "" {
		return false // client-go waits and resends by itself
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return read
	}
	return false
}

// neverSent reports whether the request failed before a connection was made.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// rewind is a copy of req that can be sent again, with its body from the start.
func rewind(req *http.Request) (*http.Request, error) {
	again := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return again, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("request body cannot be replayed")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	again.Body = body
	return again, nil
}
