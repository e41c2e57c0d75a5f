package harness

import (
	"sort"
	"time"
)

// PodStats sum up the pods of one of the example Promise's pipelines that started after a
// moment: what it costs a platform to have requests wait.
type PodStats struct {
	// Runs is how many times the pipeline ran, per request.
	Runs map[string]int
	// Peak is the most of its pods alive at once; Longest the longest one pod lived.
	Peak    int
	Longest time.Duration
}

// PipelineStats reads the pod runner's record of a pipeline's pods started since then.
func (h *Harness) PipelineStats(pipeline string, since time.Time) PodStats {
	st := PodStats{Runs: map[string]int{}}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	now := time.Now()
	for _, r := range h.Runner.Runs() {
		if r.Labels["kratix.io/pipeline-name"] != pipeline || r.Started.Before(since) {
			continue
		}
		st.Runs[r.Labels["kratix.io/resource-name"]]++
		ended := r.Ended
		if ended.IsZero() {
			ended = now
		}
		st.Longest = max(st.Longest, ended.Sub(r.Started))
		edges = append(edges, edge{r.Started, 1}, edge{ended, -1})
	}
	// Ends before starts at the same instant: a pod that ended as another began was not beside it.
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	alive := 0
	for _, e := range edges {
		alive += e.delta
		st.Peak = max(st.Peak, alive)
	}
	return st
}
