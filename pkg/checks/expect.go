package checks

import (
	"fmt"
	"strconv"
	"strings"
)

// expectation is a parsed success expression: "result <op> <number>".
type expectation struct {
	op    string
	value float64
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"}

func parseExpect(s string) (expectation, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "result")
	if !ok {
		return expectation{}, fmt.Errorf(`want "result <op> <number>", e.g. "result < 0.01"`)
	}
	rest = strings.TrimSpace(rest)
	for _, op := range ops {
		if num, ok := strings.CutPrefix(rest, op); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil {
				return expectation{}, fmt.Errorf("%q is not a number", strings.TrimSpace(num))
			}
			return expectation{op: op, value: v}, nil
		}
	}
	return expectation{}, fmt.Errorf("want one of %s after result", strings.Join(ops, " "))
}

func (e expectation) holds(v float64) bool {
	switch e.op {
	case "<":
		return v < e.value
	case "<=":
		return v <= e.value
	case ">":
		return v > e.value
	case ">=":
		return v >= e.value
	case "==":
		return v == e.value
	default:
		return v != e.value
	}
}
