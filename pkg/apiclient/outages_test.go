package apiclient

import (
	"context"
	"crypto/x509"
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

func reset() (*http.Response, error) { return nil, syscall.ECONNRESET }

func badCA() (*http.Response, error) { return nil, x509.UnknownAuthorityError{} }

func TestRetryTransport(t *testing.T) {
	type answers = []func() (*http.Response, error)
	cases := []struct {
		name     string
		method   string
		answers  answers
		budget   time.Duration
		attempts int
		code     int
		err      bool
	}{
		{"answered at once", "PUT", answers{status(200)}, time.Minute, 1, 200, false},
		{"a write refused, then answered", "PUT", answers{refused, refused, status(200)}, time.Minute, 3, 200, false},
		{"a write while the apiserver is not serving", "PUT", answers{status(503), status(201)}, time.Minute, 2, 201, false},
		{"a write whose connection was reset may have landed: not resent", "PUT", answers{reset, status(200)}, time.Minute, 1, 0, true},
		{"a write past a gateway's timeout may have landed: not resent", "PUT", answers{status(504), status(200)}, time.Minute, 1, 504, false},
		{"a read is resent whatever happened", "GET", answers{reset, status(502), status(504), status(200)}, time.Minute, 4, 200, false},
		{"with Retry-After: client-go's to handle", "GET", answers{status(503, "Retry-After", "1"), status(200)}, time.Minute, 1, 503, false},
		{"a conflict is an answer", "PUT", answers{status(409), status(200)}, time.Minute, 1, 409, false},
		{"an internal error is an answer", "GET", answers{status(500), status(200)}, time.Minute, 1, 500, false},
		{"a wrong CA does not get better", "GET", answers{badCA, status(200)}, time.Minute, 1, 0, true},
		{"no budget: no resend", "PUT", answers{refused, status(200)}, 0, 1, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &script{answers: c.answers}
			rt := &retryTransport{next: s, budget: c.budget, first: time.Millisecond, most: 4 * time.Millisecond, clock: clock.RealClock{}}
			req, err := http.NewRequestWithContext(context.Background(), c.method, "https://apiserver/leases/x", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := rt.RoundTrip(req)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if len(s.bodies) != c.attempts {
				t.Errorf("attempts = %d, want %d", len(s.bodies), c.attempts)
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
