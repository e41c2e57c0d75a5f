// Package app is the app the example Promise deploys: an HTTP server that says which version
// it runs, and whose /healthz the demo can make fail, to show a rollout pausing on a bad upgrade.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// Config is what the app serves.
type Config struct {
	Version string // APP_VERSION
	Message string // APP_MESSAGE
	Healthy bool   // APP_HEALTHY, "false" makes /healthz answer 500
}

// Handler serves / (the message and version) and /healthz.
func Handler(c Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s (%s)\n", c.Message, c.Version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Healthy {
			http.Error(w, "unhealthy: "+c.Version+" is broken", http.StatusInternalServerError)
			return
		}
		// The version it runs, as JSON: a health check that expects it proves that the new
		// version answered, not old pods still behind the Service.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"status\":\"ok\",\"version\":%q}\n", c.Version)
	})
	return mux
}

// Main runs the app on $APP_LISTEN (default :8080) until ctx ends.
func Main(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	c := Config{Version: os.Getenv("APP_VERSION"), Message: os.Getenv("APP_MESSAGE"), Healthy: os.Getenv("APP_HEALTHY") != "false"}
	addr := os.Getenv("APP_LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "demo-app: listening on %s: %v\n", addr, err)
		return 1
	}
	server := &http.Server{Handler: Handler(c), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	fmt.Fprintf(stdout, "demo-app %s listening on %s (healthy: %v)\n", c.Version, lis.Addr(), c.Healthy)
	if err := server.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "demo-app: %v\n", err)
		return 1
	}
	return 0
}
