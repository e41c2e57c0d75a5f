package app

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		name    string
		config  Config
		path    string
		code    int
		bodyHas string
	}{
		{"healthy", Config{Version: "v2", Healthy: true}, "/healthz", 200, `{"status":"ok","version":"v2"}`},
		{"broken", Config{Version: "v2", Healthy: false}, "/healthz", 500, "v2 is broken"},
		{"the page", Config{Version: "v1", Message: "hello", Healthy: true}, "/", 200, "hello (v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Handler(tt.config).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.bodyHas) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.code, tt.bodyHas)
			}
		})
	}
}
