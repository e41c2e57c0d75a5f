package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// maxBody bounds how much of a response is read: health endpoints answer briefly.
const maxBody = 1 << 20

func (r *Runner) runHTTP(ctx context.Context, h *HTTP) Result {
	client, err := r.client(h.CABundle)
	if err != nil {
		return failed("http.caBundle: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return failed("building the request: %v", err)
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return failed("GET %s: %v", h.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return failed("reading the response of %s: %v", h.URL, err)
	}
	res := Result{Observed: map[string]any{"status": int64(resp.StatusCode)}}
	if !statusOK(h.ExpectStatus, resp.StatusCode) {
		res.Err = fmt.Sprintf("GET %s answered %d", h.URL, resp.StatusCode)
		return res
	}
	if h.BodyContains != "" && !bytes.Contains(body, []byte(h.BodyContains)) {
		res.Err = fmt.Sprintf("the body of %s does not contain %q", h.URL, h.BodyContains)
		return res
	}
	if h.JSONPath != "" {
		got, err := evalJSONPath(h.JSONPath, body)
		if err != nil {
			res.Err = fmt.Sprintf("the body of %s: %v", h.URL, err)
			return res
		}
		res.Observed["jsonPath"] = got
		if (h.Equals == "" && got == "") || (h.Equals != "" && got != h.Equals) {
			res.Err = fmt.Sprintf("%s is %q, want %q", h.JSONPath, got, orNonEmpty(h.Equals))
			return res
		}
	}
	res.Pass = true
	return res
}

func statusOK(expect []int, code int) bool {
	if len(expect) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(expect, code)
}

func evalJSONPath(expr string, body []byte) (string, error) {
	var data any
	if err := json.Unmarshal(body, &data); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	jp := jsonpath.New("check").AllowMissingKeys(true)
	if err := jp.Parse(expr); err != nil {
		return "", err
	}
	var out strings.Builder
	if err := jp.Execute(&out, data); err != nil {
		return "", err
	}
	return out.String(), nil
}

func orNonEmpty(s string) string {
	if s == "" {
		return "anything non-empty"
	}
	return s
}
