package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// promResponse is the part of Prometheus's /api/v1/query answer that a check reads.
type promResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

func (r *Runner) runPrometheus(ctx context.Context, p *Prometheus) Result {
	expect, err := parseExpect(p.Expect)
	if err != nil {
		return failed("prometheus.expect: %v", err)
	}
	client, err := r.client("")
	if err != nil {
		return failed("%v", err)
	}
	u := strings.TrimSuffix(p.URL, "/") + "/api/v1/query?query=" + url.QueryEscape(p.Query)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return failed("building the query: %v", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return failed("querying %s: %v", p.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return failed("reading the answer of %s: %v", p.URL, err)
	}
	var pr promResponse
	if err := json.Unmarshal(body, &pr); err != nil || pr.Status != "success" {
		return failed("querying %s: answered %d %s", p.URL, resp.StatusCode, strings.TrimSpace(pr.Error))
	}
	values, err := samples(pr)
	if err != nil {
		return failed("reading the answer of %s: %v", p.URL, err)
	}
	res := Result{Observed: map[string]any{"samples": int64(len(values)), "values": values}}
	if len(values) < p.MinSamples {
		// No data is not good news: the query may match nothing because nothing is running.
		res.Unknown = true
		res.Err = fmt.Sprintf("%d sample(s), want at least %d", len(values), p.MinSamples)
		return res
	}
	for _, v := range values {
		if !expect.holds(v) {
			res.Err = fmt.Sprintf("a sample is %g: want %s", v, p.Expect)
			return res
		}
	}
	res.Pass = true
	return res
}

// samples reads the values of a vector or scalar result.
func samples(pr promResponse) ([]float64, error) {
	parse := func(pair []any) (float64, error) {
		if len(pair) != 2 {
			return 0, fmt.Errorf("a sample is not [time, value]")
		}
		s, _ := pair[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch pr.Data.ResultType {
	case "scalar":
		var pair []any
		if err := json.Unmarshal(pr.Data.Result, &pair); err != nil {
			return nil, err
		}
		v, err := parse(pair)
		return []float64{v}, err
	case "vector":
		var series []struct {
			Value []any `json:"value"`
		}
		if err := json.Unmarshal(pr.Data.Result, &series); err != nil {
			return nil, err
		}
		var out []float64
		for _, s := range series {
			v, err := parse(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("result type %q: want an instant vector or scalar", pr.Data.ResultType)
}
