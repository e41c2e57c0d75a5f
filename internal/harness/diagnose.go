package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Diagnose writes where the platform stands, for reading after a failed spec: every request's
// status.turnstile and the last lines each container of every request's latest pipeline runs
// wrote (kubectl turnstile status gives the turnstile's side). The sandbox, and its logs, go when
// the suite ends.
func (h *Harness) Diagnose(ctx context.Context, w io.Writer) {
	fmt.Fprintln(w, "harness: where the platform stands")
	for _, api := range []schema.GroupVersionResource{WebApps, SecondWebApps} {
		list, err := h.Dynamic.Resource(api).Namespace("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			fmt.Fprintf(w, "  %s: %v\n", api.Resource, err)
			continue
		}
		for _, u := range list.Items {
			fmt.Fprintf(w, "  %s/%s: %s: %s\n", api.Resource, u.GetName(), standing(&u), Message(&u))
		}
	}
	// The latest run of each pipeline for each request (the Promise's and the runner specs' pods aside).
	latest := map[string]int{}
	runs := h.Runner.Runs()
	for i, r := range runs {
		if req := r.Labels["kratix.io/resource-name"]; req != "" {
			latest[r.Labels["kratix.io/promise-name"]+"/"+req+"/"+r.Labels["kratix.io/pipeline-name"]] = i
		}
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := runs[latest[k]]
		state := "running"
		if !r.Ended.IsZero() {
			state = "ended " + r.Ended.Format("15:04:05")
		}
		fmt.Fprintf(w, "  pod %s (%s, started %s, %s)\n", r.Name, k, r.Started.Format("15:04:05"), state)
		logs, _ := filepath.Glob(filepath.Join(h.Runner.PodDir(r.Namespace, r.Name), "*.log"))
		for _, path := range logs {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			for _, line := range lines[max(0, len(lines)-5):] {
				fmt.Fprintf(w, "    %s| %s\n", strings.TrimSuffix(filepath.Base(path), ".log"), line)
			}
		}
	}
}
