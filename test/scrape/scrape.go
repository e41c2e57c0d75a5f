// Package scrape reads a Prometheus metrics endpoint as Prometheus does, for specs to assert on.
package scrape

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Get scrapes url.
func Get(url string) (Families, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	fams, err := Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing the metrics of %s: %w", url, err)
	}
	return fams, nil
}

// Parse reads metrics in Prometheus's text format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Labels is a series' labels, by name.
func Labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// Value is the value of the first series of name whose labels include labels ("k=v" each): a
// gauge's or a counter's value, or with a _count or _sum suffix a histogram's count or sum. It
// is -1 when there is no such series.
func (f Families) Value(name string, labels ...string) float64 {
	fam, field := f[name], ""
	for _, suffix := range []string{"_count", "_sum"} {
		if fam == nil && strings.HasSuffix(name, suffix) {
			fam, field = f[strings.TrimSuffix(name, suffix)], suffix
		}
	}
	if fam == nil {
		return -1
	}
	for _, m := range fam.GetMetric() {
		if !has(m, labels) {
			continue
		}
		switch {
		case field == "_count" && m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case field == "_sum" && m.GetHistogram() != nil:
			return m.GetHistogram().GetSampleSum()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func has(m *dto.Metric, labels []string) bool {
	got := Labels(m)
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		if got[k] != v {
			return false
		}
	}
	return true
}
