package kube

import (
	"errors"
	"io"
	"net/http"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// TransientBudget is how long a request keeps being retried while the apiserver cannot be
// reached or answers that it is unavailable: long enough to ride out an apiserver restart or an
// etcd leader election, short enough that a dead cluster is reported while someone still watches.
const TransientBudget = 90 * time.Second

// RideOutOutages makes every request of clients built from cfg ride out a restarting apiserver:
// a request that got no answer (connection refused or reset, a TLS handshake that timed out) or
// a 502, 503 or 504 without Retry-After is sent again, backing off from 200ms to 5s, for up to
// budget, or until the request's context ends.
//
// Resending is safe for every verb Turnstile uses: a request that got no answer either never
// reached the apiserver or is resent as the same compare-and-swap (an Update with the
// resourceVersion it read, a Create of a fixed name, a Delete with a uid precondition), which
// then fails with Conflict, AlreadyExists or NotFound, outcomes every caller already handles by
// reading afresh. client-go itself resends only GETs, and only on a reset connection.
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
		if !transient(resp, err) || req.Context().Err() != nil || t.clock.Now().Add(backoff).After(deadline) {
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

// transient reports whether an answer says the apiserver could not serve the request for now.
func transient(resp *http.Response, err error) bool {
	if err != nil {
		return true // no answer at all: refused, reset, or a handshake that timed out
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		// With Retry-After, client-go waits and resends by itself.
		return resp.Header.Get("Retry-After") == ""
	}
	return false
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
