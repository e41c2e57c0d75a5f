package observer

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/kratix-turnstile/turnstile/pkg/turnstile"
)

//go:embed web
var assets embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"age": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return duration.HumanDuration(now.Sub(t))
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"clock":   func(t time.Time) string { return t.Local().Format("15:04:05") },
	"lower":   strings.ToLower,
	// kind is a state's first word, for its style: "Paused: why" is paused.
	"kind": func(state string) string {
		word, _, _ := strings.Cut(state, ":")
		return strings.ToLower(word)
	},
	"percent": func(n, of int) int {
		if of == 0 {
			return 0
		}
		return n * 100 / of
	},
}).ParseFS(assets, "web/*.tmpl"))

// page is what the templates show: every rollout with its timeline, newest moment first.
type page struct {
	At       time.Time
	Hold     turnstile.Hold
	Rollouts []rolloutPage
}

type rolloutPage struct {
	Rollout
	Timeline []Moment
}

func pageOf(s Snapshot) page {
	p := page{At: s.At, Hold: s.Hold}
	for _, r := range s.Rollouts {
		moments := s.Timeline[r.Promise]
		newest := make([]Moment, 0, len(moments))
		for i := len(moments) - 1; i >= 0; i-- {
			newest = append(newest, moments[i])
		}
		p.Rollouts = append(p.Rollouts, rolloutPage{Rollout: r, Timeline: newest})
	}
	return p
}

// Handler serves the dashboard: the page (whole, readable without JavaScript), its live
// updates as server-sent events, the pictures as JSON, and the metrics.
func (o *Observer) Handler() http.Handler {
	static, _ := fs.Sub(assets, "web")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pages.ExecuteTemplate(w, "page", pageOf(o.Snapshot())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /events", o.events)
	mux.HandleFunc("GET /api/rollouts", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(o.Snapshot())
	})
	mux.Handle("GET /metrics", o.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}

// heartbeat keeps an idle event stream open through proxies that close quiet connections.
const heartbeat = 15 * time.Second

// events streams the rollouts section of the page, rendered anew on every change: the page
// swaps it in, so the page and its updates come from one template.
func (o *Observer) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()
	snaps, stop := o.Subscribe()
	defer stop()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		case s := <-snaps:
			var b bytes.Buffer
			if err := pages.ExecuteTemplate(&b, "rollouts", pageOf(s)); err != nil {
				return
			}
			fmt.Fprint(w, "event: rollouts\n")
			// An event's data ends at a line break of any kind: a stray carriage return in a
			// message would cut the fragment short.
			html := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(b.String())
			for _, line := range strings.Split(strings.TrimRight(html, "\n"), "\n") {
				fmt.Fprintf(w, "data: %s\n", line)
			}
			fmt.Fprint(w, "\n")
		}
		flusher.Flush()
	}
}

// Serve serves Handler on ln until ctx ends.
func (o *Observer) Serve(ctx context.Context, ln net.Listener) error {
	// Event streams end with ctx: Shutdown alone would wait for them.
	srv := &http.Server{Handler: o.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		shut, done := context.WithTimeout(context.Background(), 2*time.Second)
		defer done()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the dashboard: %w", err)
	}
	return nil
}
