package kube

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/clock"
)

// script answers each attempt in turn, and records the bodies it was sent.
type script struct {
	answers []func() (*http.Response, error)
	bodies  []string
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	body := ""
	if req.Body != nil {
		b, _ := io.ReadAll(req.Body)
		body = string(b)
	}
	s.bodies = append(s.bodies, body)
	n := len(s.bodies) - 1
	if n >= len(s.answers) {
		n = len(s.answers) - 1
	}
	return s.answers[n]()
}

func status(code int, header ...string) func() (*http.Response, error) {
	return func() (*http.Response, error) {
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(""))}, nil
	}
}

func refused() (*http.Response, error) { return nil, syscall.ECONNREFUSED }

func TestRetryTransport(t *testing.T) {
	cases := []struct {
		name     string
		answers  []func() (*http.Response, error)
		budget   time.Duration
		attempts int
		code     int
		err      bool
	}{
		{"answered at once", []func() (*http.Response, error){status(200)}, time.Second, 1, 200, false},
		{"refused, then answered", []func() (*http.Response, error){refused, refused, status(200)}, time.Second, 3, 200, false},
		{"unavailable, then answered", []func() (*http.Response, error){status(503), status(504), status(201)}, time.Second, 3, 201, false},
		{"unavailable with Retry-After: client-go's to handle", []func() (*http.Response, error){status(503, "Retry-After", "1"), status(200)}, time.Second, 1, 503, false},
		{"a conflict is an answer", []func() (*http.Response, error){status(409), status(200)}, time.Second, 1, 409, false},
		{"an internal error is an answer", []func() (*http.Response, error){status(500), status(200)}, time.Second, 1, 500, false},
		{"refused past the budget", []func() (*http.Response, error){refused}, 20 * time.Millisecond, 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &script{answers: c.answers}
			rt := &retryTransport{next: s, budget: c.budget, first: time.Millisecond, most: 4 * time.Millisecond, clock: clock.RealClock{}}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, "https://apiserver/leases/x", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if c.attempts > 0 && len(s.bodies) != c.attempts {
				t.Errorf("attempts = %d, want %d", len(s.bodies), c.attempts)
			}
			if c.err && len(s.bodies) < 2 {
				t.Errorf("attempts = %d, want it to have retried within the budget", len(s.bodies))
			}
			for i, b := range s.bodies {
				if b != `{"a":1}` {
					t.Errorf("attempt %d sent body %q, want the whole body again", i, b)
				}
			}
			if resp != nil && resp.StatusCode != c.code {
				t.Errorf("status = %d, want %d", resp.StatusCode, c.code)
			}
		})
	}
}

func TestRetryTransportStopsWithTheContext(t *testing.T) {
	s := &script{answers: []func() (*http.Response, error){refused}}
	rt := &retryTransport{next: s, budget: time.Hour, first: 5 * time.Millisecond, most: 5 * time.Millisecond, clock: clock.RealClock{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://apiserver/", nil)
	if _, err := rt.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want the context's end", err)
	}
}
