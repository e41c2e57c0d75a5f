package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"k8s.io/client-go/kubernetes"

	promtext "github.com/kratix-turnstile/turnstile/test/scrape"
)

// metrics are the apiserver's counters of interest, by series: name and labels.
type metrics map[string]series

type series struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeAPIServer reads the apiserver's /metrics: its requests and the watch events it sent.
func scrapeAPIServer(ctx context.Context, client kubernetes.Interface) (metrics, error) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the apiserver's metrics: %w", err)
	}
	fams, err := promtext.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the apiserver's metrics: %w", err)
	}
	out := metrics{}
	for _, name := range []string{"apiserver_request_total", "apiserver_watch_events_total"} {
		for _, m := range fams[name].GetMetric() {
			sr := series{name: name, labels: promtext.Labels(m), value: m.GetCounter().GetValue()}
			out[name+fmt.Sprint(sr.labels)] = sr // fmt prints a map's keys sorted: one key per series
		}
	}
	return out, nil
}

// minus is what the counters grew by since before.
func (m metrics) minus(before metrics) metrics {
	out := metrics{}
	for k, s := range m {
		s.value -= before[k].value
		out[k] = s
	}
	return out
}

// requests counts the API requests of a verb on a resource and subresource that succeeded: a
// create that lost a race (409) wrote nothing.
func (m metrics) requests(verb, resource, subresource string) float64 {
	var n float64
	for _, s := range m {
		if s.name == "apiserver_request_total" && s.labels["verb"] == verb && s.labels["resource"] == resource &&
			s.labels["subresource"] == subresource && strings.HasPrefix(s.labels["code"], "2") {
			n += s.value
		}
	}
	return n
}

// watchEvents counts the watch events sent about a resource ("" for every resource).
func (m metrics) watchEvents(resource string) float64 {
	var n float64
	for _, s := range m {
		if s.name == "apiserver_watch_events_total" && (resource == "" || s.labels["resource"] == resource) {
			n += s.value
		}
	}
	return n
}

// summary lists the requests by verb and resource, most first.
func (m metrics) summary() string {
	counts := map[string]float64{}
	for _, s := range m {
		if s.name == "apiserver_request_total" && s.value > 0 {
			k := s.labels["verb"] + " " + s.labels["resource"]
			if s.labels["subresource"] != "" {
				k += "/" + s.labels["subresource"]
			}
			counts[k] += s.value
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}
